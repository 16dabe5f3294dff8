-- Audit batches in a cheaper form (src/store/postgres/audit-store.ts). Batches written before this
-- migration keep format 0 and are read as they are; nothing is rewritten.
--   format 0: events = raw-deflated lines, one JSON array per event; patients = the patient ids.
--   format 1: events = Brotli-compressed lines of 100 events each (a JSON array of those arrays);
--             patients = '{}'; patient_keys = a 32-bit hash of each patient id (patientKey()).
-- Integer keys make the batch's GIN entries smaller and cheaper to insert than the ids themselves;
-- a key shared by two patients only makes a query read a batch that it then filters out.
ALTER TABLE audit_batch ADD COLUMN IF NOT EXISTS format smallint NOT NULL DEFAULT 0;
ALTER TABLE audit_batch ADD COLUMN IF NOT EXISTS patient_keys integer[] NOT NULL DEFAULT '{}';
CREATE INDEX IF NOT EXISTS audit_batch_patient_keys ON audit_batch USING gin (patient_keys);
