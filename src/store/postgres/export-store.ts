import type { ExportJob, ExportJobStore } from '../api';
import type { Queryable } from './driver';

interface Row {
  id: string;
  client_id: string;
  status: ExportJob['status'];
  request: string;
  params: unknown;
  transaction_time: Date | string;
  progress: string | null;
  output: unknown;
  error: string | null;
  expires_at: Date | string | null;
  created_at: Date | string;
}

const iso = (v: Date | string): string => (v instanceof Date ? v : new Date(v)).toISOString();
const json = <T>(v: unknown): T => (typeof v === 'string' ? JSON.parse(v) : v) as T;

function toJob(r: Row): ExportJob {
  return {
    id: r.id,
    clientId: r.client_id,
    status: r.status,
    request: r.request,
    params: json<ExportJob['params']>(r.params),
    transactionTime: iso(r.transaction_time),
    progress: r.progress ?? undefined,
    output: r.output === null ? undefined : json<ExportJob['output']>(r.output),
    error: r.error ?? undefined,
    expiresAt: r.expires_at === null ? undefined : iso(r.expires_at),
    createdAt: iso(r.created_at),
  };
}

const LIVE = "(expires_at IS NULL OR expires_at > now()) AND status <> 'cancelled'";

/** ExportJobStore on the export_job table (migration 007). */
export class PgExportJobStore implements ExportJobStore {
  constructor(private readonly q: Queryable) {}

  async create(job: ExportJob): Promise<void> {
    await this.q.query(
      `INSERT INTO export_job (id, client_id, status, request, params, transaction_time, progress, expires_at)
       VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8)`,
      [job.id, job.clientId, job.status, job.request, JSON.stringify(job.params), job.transactionTime, job.progress ?? null, job.expiresAt ?? null],
    );
  }

  async get(id: string): Promise<ExportJob | undefined> {
    if (!/^[0-9a-f-]{36}$/.test(id)) {
      return undefined;
    }
    const rows = await this.q.query<Row>(`SELECT * FROM export_job WHERE id = $1 AND ${LIVE}`, [id]);
    return rows[0] && toJob(rows[0]);
  }

  async update(id: string, patch: Partial<Pick<ExportJob, 'status' | 'progress' | 'output' | 'error' | 'expiresAt'>>): Promise<void> {
    await this.q.query(
      `UPDATE export_job SET
         status = COALESCE($2, status), progress = COALESCE($3, progress), output = COALESCE($4::jsonb, output),
         error = COALESCE($5, error), expires_at = COALESCE($6, expires_at), updated_at = now()
       WHERE id = $1 AND status <> 'cancelled'`,
      [id, patch.status ?? null, patch.progress ?? null, patch.output === undefined ? null : JSON.stringify(patch.output), patch.error ?? null, patch.expiresAt ?? null],
    );
  }

  async active(clientId: string): Promise<ExportJob[]> {
    const rows = await this.q.query<Row>(`SELECT * FROM export_job WHERE client_id = $1 AND status IN ('accepted', 'in-progress')`, [clientId]);
    return rows.map(toJob);
  }

  async claim(id: string, owner: string, leaseMs: number): Promise<boolean> {
    const rows = await this.q.query(
      `UPDATE export_job SET lease_owner = $2, lease_until = now() + ($3::int * interval '1 millisecond')
       WHERE id = $1 AND status IN ('accepted', 'in-progress') AND (lease_owner = $2 OR lease_until IS NULL OR lease_until < now())
       RETURNING id`,
      [id, owner, leaseMs],
    );
    return rows.length === 1;
  }

  async orphans(): Promise<ExportJob[]> {
    const rows = await this.q.query<Row>(`SELECT * FROM export_job WHERE status IN ('accepted', 'in-progress') AND (lease_until IS NULL OR lease_until < now()) ORDER BY created_at`);
    return rows.map(toJob);
  }

  async purgeExpired(): Promise<number> {
    const rows = await this.q.query(`DELETE FROM export_job WHERE (expires_at IS NOT NULL AND expires_at < now()) OR status = 'cancelled' RETURNING id`);
    return rows.length;
  }
}
