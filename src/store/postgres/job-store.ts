import type { Job, JobStore, NewJob } from '../api';
import type { Queryable } from './driver';

interface Row {
  id: string | number;
  queue: Job['queue'];
  target: string;
  key: string;
  payload: unknown;
  status: Job['status'];
  attempts: number;
  max_attempts: number;
  run_after: Date | string;
  last_error: string | null;
  created_at: Date | string;
  finished_at: Date | string | null;
  resource_json?: string | null;
  previous_json?: string | null;
}

const iso = (v: Date | string): string => (v instanceof Date ? v : new Date(v)).toISOString();

function toJob(r: Row): Job {
  return {
    id: String(r.id),
    queue: r.queue,
    target: r.target,
    key: r.key,
    payload: (typeof r.payload === 'string' ? JSON.parse(r.payload) : r.payload) as Record<string, unknown>,
    status: r.status,
    attempts: r.attempts,
    maxAttempts: r.max_attempts,
    runAfter: iso(r.run_after),
    lastError: r.last_error ?? undefined,
    createdAt: iso(r.created_at),
    finishedAt: r.finished_at === null ? undefined : iso(r.finished_at),
    resourceJson: r.resource_json ?? undefined,
    previousJson: r.previous_json ?? undefined,
  };
}

const ALL_QUEUES: Job['queue'][] = ['bot', 'rest-hook', 'websocket'];

/** JobStore on the job table (migration 008). */
export class PgJobStore implements JobStore {
  constructor(private readonly q: Queryable) {}

  async enqueue(jobs: NewJob[]): Promise<number> {
    if (jobs.length === 0) {
      return 0;
    }
    // One statement for any number of jobs: the rows travel as one JSON array.
    const rows = await this.q.query<{ n: string | number }>(
      `WITH ins AS (
         INSERT INTO job (queue, target, key, payload, max_attempts, run_after, status, finished_at)
         SELECT j->>'queue', j->>'target', j->>'key', j->'payload', COALESCE((j->>'maxAttempts')::int, 5),
                COALESCE((j->>'runAfter')::timestamptz, now()), COALESCE(j->>'status', 'queued'),
                CASE WHEN j->>'status' = 'done' THEN now() END
         FROM jsonb_array_elements($1::jsonb) AS j
         ON CONFLICT (key) DO NOTHING
         RETURNING 1)
       SELECT count(*) AS n FROM ins`,
      [JSON.stringify(jobs.map((j) => ({ ...j, runAfter: j.runAfter?.toISOString() })))],
      { prepare: true },
    );
    return Number(rows[0].n);
  }

  async claim(owner: string, limit: number, leaseMs: number, queues: Job['queue'][] = ALL_QUEUES): Promise<Job[]> {
    // The versions the events name come back with the claim: one statement per batch of jobs.
    const rows = await this.q.query<Row>(
      `WITH claimed AS (
         UPDATE job SET lease_owner = $1, lease_until = now() + ($3::int * interval '1 millisecond'), attempts = attempts + 1
         WHERE id IN (
           SELECT id FROM job
           WHERE status = 'queued' AND run_after <= now() AND (lease_until IS NULL OR lease_until < now())
             AND queue = ANY($4::text[])
           ORDER BY run_after, id LIMIT $2 FOR UPDATE SKIP LOCKED)
         RETURNING *)
       SELECT c.*, cur.content AS resource_json, prev.content AS previous_json
       FROM claimed c
       LEFT JOIN resource_version cur ON c.payload ? 'versionId'
         AND cur.resource_type = split_part(c.payload->>'resource', '/', 1) AND cur.id = split_part(c.payload->>'resource', '/', 2)
         AND cur.version_id = (c.payload->>'versionId')::int
       LEFT JOIN resource_version prev ON c.payload ? 'previousVersionId'
         AND prev.resource_type = split_part(c.payload->>'resource', '/', 1) AND prev.id = split_part(c.payload->>'resource', '/', 2)
         AND prev.version_id = (c.payload->>'previousVersionId')::int
       ORDER BY c.id`,
      [owner, limit, leaseMs, queues],
      { prepare: true },
    );
    return rows.map(toJob);
  }

  async renew(owner: string, ids: string[], leaseMs: number): Promise<void> {
    if (ids.length > 0) {
      await this.q.query(
        `UPDATE job SET lease_until = now() + ($3::int * interval '1 millisecond') WHERE id = ANY($2::bigint[]) AND lease_owner = $1 AND status = 'queued'`,
        [owner, ids, leaseMs],
      );
    }
  }

  async complete(ids: string[], owner?: string): Promise<void> {
    if (ids.length > 0) {
      await this.q.query(
        `UPDATE job SET status = 'done', finished_at = now(), lease_owner = NULL, lease_until = NULL
         WHERE id = ANY($1::bigint[]) AND ($2::text IS NULL OR lease_owner = $2 OR lease_owner IS NULL)`,
        [ids, owner ?? null],
        { prepare: true },
      );
    }
  }

  async fail(id: string, error: string, retryInMs: number | undefined, owner?: string): Promise<void> {
    await this.q.query(
      `UPDATE job SET lease_owner = NULL, lease_until = NULL, last_error = $2,
         status = CASE WHEN $3::int IS NULL THEN 'dead' ELSE 'queued' END,
         finished_at = CASE WHEN $3::int IS NULL THEN now() ELSE NULL END,
         run_after = CASE WHEN $3::int IS NULL THEN run_after ELSE now() + ($3::int * interval '1 millisecond') END
       WHERE id = $1 AND ($4::text IS NULL OR lease_owner = $4 OR lease_owner IS NULL)`,
      [id, error.slice(0, 4000), retryInMs ?? null, owner ?? null],
    );
  }

  async list(query: { target?: string; status?: Job['status']; count: number }): Promise<Job[]> {
    const rows = await this.q.query<Row>(
      `SELECT * FROM job WHERE ($1::text IS NULL OR target = $1) AND ($2::text IS NULL OR status = $2)
       ORDER BY id DESC LIMIT $3`,
      [query.target ?? null, query.status ?? null, query.count],
    );
    return rows.map(toJob);
  }

  async requeue(id: string): Promise<boolean> {
    if (!/^\d{1,18}$/.test(id)) {
      return false;
    }
    const rows = await this.q.query(
      `UPDATE job SET status = 'queued', attempts = 0, run_after = now(), finished_at = NULL WHERE id = $1 AND status = 'dead' RETURNING id`,
      [id],
    );
    return rows.length > 0;
  }

  async nextDue(queues: Job['queue'][] = ALL_QUEUES): Promise<number | undefined> {
    const rows = await this.q.query<{ ms: string | number | null }>(
      `SELECT EXTRACT(EPOCH FROM (min(GREATEST(run_after, COALESCE(lease_until, run_after))) - now())) * 1000 AS ms
       FROM job WHERE status = 'queued' AND queue = ANY($1::text[])`,
      [queues],
      { prepare: true },
    );
    const ms = rows[0]?.ms;
    return ms === null || ms === undefined ? undefined : Math.max(0, Math.ceil(Number(ms)));
  }

  async events(target: string, afterId: string, limit: number): Promise<Job[]> {
    const rows = await this.q.query<Row>(`SELECT * FROM job WHERE target = $1 AND id > $2::bigint ORDER BY id LIMIT $3`, [target, /^\d{1,18}$/.test(afterId) ? afterId : '0', limit], {
      prepare: true,
    });
    return rows.map(toJob);
  }

  async purge(olderThanMs: number): Promise<number> {
    const rows = await this.q.query(
      `DELETE FROM job WHERE status = 'done' AND finished_at < now() - ($1::int * interval '1 millisecond') RETURNING 1`,
      [olderThanMs],
    );
    return rows.length;
  }
}
