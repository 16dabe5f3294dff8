-- Bulk Data $export jobs (src/bulk). The files are not stored: each is the snapshot of one type as
-- of transaction_time, read from resource_current (and resource_version for resources changed
-- since) when it is downloaded. A job row is all that has to survive a restart.
CREATE TABLE IF NOT EXISTS export_job (
  id                uuid PRIMARY KEY,
  client_id         text NOT NULL,
  status            text NOT NULL,          -- accepted | in-progress | completed | failed | cancelled
  request           text NOT NULL,          -- the kick-off URL
  params            jsonb NOT NULL,         -- level, patients, types, since, typeFilters
  transaction_time  timestamptz NOT NULL,
  progress          text,
  output            jsonb,                  -- [{ type, count }]
  error             text,
  lease_owner       text,
  lease_until       timestamptz,
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now(),
  expires_at        timestamptz
);
CREATE INDEX IF NOT EXISTS export_job_client ON export_job (client_id, status);
