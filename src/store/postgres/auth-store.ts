import type { AuthKind, AuthRecord, AuthStore } from '../api';
import type { Queryable } from './driver';

interface Row {
  id: string;
  doc: unknown;
  expires_at: Date | string | null;
  used_at: Date | string | null;
  seq: string | number;
}

const iso = (v: Date | string | null): string | undefined => (v === null ? undefined : (v instanceof Date ? v : new Date(v)).toISOString());

function toRecord<T>(row: Row): AuthRecord<T> {
  return {
    id: row.id,
    doc: (typeof row.doc === 'string' ? JSON.parse(row.doc) : row.doc) as T,
    expiresAt: iso(row.expires_at),
    usedAt: iso(row.used_at),
    seq: Number(row.seq),
  };
}

const LIVE = '(expires_at IS NULL OR expires_at > now())';
const COLUMNS = 'id, doc, expires_at, used_at, seq';

/** AuthStore on the auth_record table (migration 005). */
export class PgAuthStore implements AuthStore {
  private writes = 0;

  constructor(private readonly q: Queryable) {}

  async get<T>(kind: AuthKind, id: string): Promise<AuthRecord<T> | undefined> {
    const rows = await this.q.query<Row>(`SELECT ${COLUMNS} FROM auth_record WHERE kind = $1 AND id = $2 AND ${LIVE}`, [kind, id], { prepare: true });
    return rows[0] && toRecord<T>(rows[0]);
  }

  async put(kind: AuthKind, id: string, doc: object, expiresAt?: Date): Promise<void> {
    await this.purgeNow();
    await this.q.query(
      `INSERT INTO auth_record (kind, id, doc, expires_at) VALUES ($1, $2, $3::jsonb, $4)
       ON CONFLICT (kind, id) DO UPDATE SET doc = EXCLUDED.doc, expires_at = EXCLUDED.expires_at, used_at = NULL`,
      [kind, id, JSON.stringify(doc), expiresAt?.toISOString() ?? null],
    );
  }

  async insertOnce(kind: AuthKind, id: string, doc: object, expiresAt?: Date): Promise<boolean> {
    await this.purgeNow();
    // An expired record with the same id may be replaced; a live one may not.
    const rows = await this.q.query(
      `INSERT INTO auth_record (kind, id, doc, expires_at) VALUES ($1, $2, $3::jsonb, $4)
       ON CONFLICT (kind, id) DO UPDATE SET doc = EXCLUDED.doc, expires_at = EXCLUDED.expires_at, used_at = NULL
       WHERE auth_record.expires_at IS NOT NULL AND auth_record.expires_at <= now()
       RETURNING id`,
      [kind, id, JSON.stringify(doc), expiresAt?.toISOString() ?? null],
    );
    return rows.length === 1;
  }

  async consume<T>(kind: AuthKind, id: string): Promise<AuthRecord<T> | undefined> {
    const rows = await this.q.query<Row>(
      `UPDATE auth_record SET used_at = now() WHERE kind = $1 AND id = $2 AND used_at IS NULL AND ${LIVE} RETURNING ${COLUMNS}`,
      [kind, id],
    );
    return rows[0] && toRecord<T>(rows[0]);
  }

  async list<T>(kind: AuthKind, afterSeq?: number): Promise<AuthRecord<T>[]> {
    const rows = await this.q.query<Row>(
      `SELECT ${COLUMNS} FROM auth_record WHERE kind = $1 AND seq > $2 AND ${LIVE} ORDER BY seq`,
      [kind, afterSeq ?? 0],
    );
    return rows.map((r) => toRecord<T>(r));
  }

  async remove(kind: AuthKind, id: string): Promise<boolean> {
    const rows = await this.q.query(`DELETE FROM auth_record WHERE kind = $1 AND id = $2 RETURNING id`, [kind, id]);
    return rows.length === 1;
  }

  /** Every 200 writes, deletes records that expired more than a day ago. */
  private async purgeNow(): Promise<void> {
    if (++this.writes % 200 === 0) {
      await this.q.query(`DELETE FROM auth_record WHERE expires_at < now() - interval '1 day'`);
    }
  }
}
