import type { AuditQuery, AuditRow, AuditStore } from '../api';
import type { Queryable } from './driver';

interface Row {
  seq: string | number;
  recorded: Date | string;
  category: AuditRow['category'];
  interaction: string;
  action: AuditRow['action'];
  outcome: AuditRow['outcome'];
  status: number | null;
  client_id: string | null;
  fhir_user: string | null;
  patient: string | null;
  entity: string | null;
  detail: string | null;
}

const orUndefined = <T>(v: T | null): T | undefined => (v === null ? undefined : v);

/** AuditStore on the audit_event table (migration 006): one multi-row INSERT per batch. */
export class PgAuditStore implements AuditStore {
  constructor(private readonly q: Queryable) {}

  async append(rows: AuditRow[]): Promise<void> {
    if (rows.length === 0) {
      return;
    }
    const col = <K extends keyof AuditRow>(k: K): (AuditRow[K] | null)[] => rows.map((r) => r[k] ?? null);
    await this.q.query(
      `INSERT INTO audit_event (recorded, category, interaction, action, outcome, status, client_id, fhir_user, patient, entity, detail)
       SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[])`,
      [col('recorded'), col('category'), col('interaction'), col('action'), col('outcome'), col('status'), col('clientId'), col('fhirUser'), col('patient'), col('entity'), col('detail')],
      { prepare: true },
    );
  }

  async query(q: AuditQuery): Promise<AuditRow[]> {
    const rows = await this.q.query<Row>(
      `SELECT * FROM audit_event
       WHERE seq > $1 AND ($2::text IS NULL OR patient = $2) AND ($3::text IS NULL OR client_id = $3) AND ($4::timestamptz IS NULL OR recorded >= $4)
       ORDER BY seq LIMIT $5`,
      [q.afterSeq ?? 0, q.patient ?? null, q.clientId ?? null, q.since ?? null, q.count],
    );
    return rows.map((r) => ({
      seq: Number(r.seq),
      recorded: (r.recorded instanceof Date ? r.recorded : new Date(r.recorded)).toISOString(),
      category: r.category,
      interaction: r.interaction,
      action: r.action,
      outcome: r.outcome,
      status: orUndefined(r.status),
      clientId: orUndefined(r.client_id),
      fhirUser: orUndefined(r.fhir_user),
      patient: orUndefined(r.patient),
      entity: orUndefined(r.entity),
      detail: orUndefined(r.detail),
    }));
  }
}
