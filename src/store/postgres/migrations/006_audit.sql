-- The audit trail (src/audit): one row per interaction, token issuance or sign-in, written in
-- batches. Rows hold the facts; the AuditEvent resource is built from them when read ($audit-log).
CREATE TABLE IF NOT EXISTS audit_event (
  seq          bigserial PRIMARY KEY,
  recorded     timestamptz NOT NULL,
  category     text NOT NULL,          -- rest | login
  interaction  text NOT NULL,          -- read, search-type, create, token, ...
  action       text NOT NULL,          -- C R U D E
  outcome      text NOT NULL,          -- 0 success, 4 minor failure (refused, bad request), 8 serious failure
  status       integer,                -- HTTP status
  client_id    text,
  fhir_user    text,
  patient      text,
  entity       text,                   -- Type/id (or Type for type-level interactions)
  detail       text                    -- request line or why it failed
);
CREATE INDEX IF NOT EXISTS audit_event_patient ON audit_event (patient, seq) WHERE patient IS NOT NULL;
CREATE INDEX IF NOT EXISTS audit_event_recorded ON audit_event (recorded);
