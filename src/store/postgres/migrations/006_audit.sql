-- The audit trail (src/audit): one row per batch of events (the writer flushes every 250 ms or
-- 2,000 events), the events as deflated NDJSON (one JSON array each, see audit-store.ts), with the
-- patients and clients they concern as indexed arrays, so that a patient's events are found by
-- batch. One insert per batch instead of one per event, and a tenth of the bytes, keep auditing a
-- few microseconds per request.
CREATE TABLE IF NOT EXISTS audit_batch (
  seq             bigserial PRIMARY KEY,
  first_recorded  timestamptz NOT NULL,
  last_recorded   timestamptz NOT NULL,
  patients        text[] NOT NULL,
  clients         text[] NOT NULL,
  n               integer NOT NULL,
  events          bytea NOT NULL
);
-- Already compressed by the writer: stored as is.
ALTER TABLE audit_batch ALTER COLUMN events SET STORAGE EXTERNAL;
CREATE INDEX IF NOT EXISTS audit_batch_patients ON audit_batch USING gin (patients);
CREATE INDEX IF NOT EXISTS audit_batch_clients ON audit_batch USING gin (clients);
CREATE INDEX IF NOT EXISTS audit_batch_last ON audit_batch (last_recorded);
