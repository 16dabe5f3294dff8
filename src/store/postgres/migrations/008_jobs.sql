-- The durable job queue shared by every process on one database (src/bots): post-commit bot runs,
-- scheduled runs and Subscription deliveries. A job is inserted in the same transaction as the
-- write that caused it, so a committed write never loses its jobs and a rolled-back one has none.
-- Workers claim jobs with FOR UPDATE SKIP LOCKED and a lease: a job whose process died is claimed
-- again when the lease runs out. Finished jobs are kept (status done) for a day, so the unique
-- idempotency key also stops a second process from enqueueing the same scheduled run again.
CREATE TABLE IF NOT EXISTS job (
  id            bigserial PRIMARY KEY,
  queue         text NOT NULL,               -- bot | rest-hook | websocket
  target        text NOT NULL,               -- Library/{id} (a bot) or Subscription/{id}
  key           text NOT NULL,               -- idempotency key, unique
  payload       jsonb NOT NULL,
  status        text NOT NULL DEFAULT 'queued', -- queued | done | dead
  attempts      int NOT NULL DEFAULT 0,
  max_attempts  int NOT NULL DEFAULT 5,
  run_after     timestamptz NOT NULL DEFAULT now(),
  lease_owner   text,
  lease_until   timestamptz,
  last_error    text,
  created_at    timestamptz NOT NULL DEFAULT now(),
  finished_at   timestamptz
);
CREATE UNIQUE INDEX IF NOT EXISTS job_key ON job (key);
CREATE INDEX IF NOT EXISTS job_due ON job (run_after, id) WHERE status = 'queued';
CREATE INDEX IF NOT EXISTS job_target ON job (target, status, id);
