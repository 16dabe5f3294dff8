import { deflateRawSync, inflateRawSync } from 'node:zlib';
import type { AuditQuery, AuditRow, AuditStore } from '../api';
import type { Queryable } from './driver';

/** One event as stored: a JSON array in this field order (compact, and cheap to write). */
type Packed = [string, AuditRow['category'], string, AuditRow['action'], AuditRow['outcome'], number | null, string | null, string | null, string | null, string | null, string | null];

const pack = (r: AuditRow): Packed => [r.recorded, r.category, r.interaction, r.action, r.outcome, r.status ?? null, r.clientId ?? null, r.fhirUser ?? null, r.patient ?? null, r.entity ?? null, r.detail ?? null];

function unpack(p: Packed, seq: string): AuditRow {
  const row: AuditRow = { seq, recorded: p[0], category: p[1], interaction: p[2], action: p[3], outcome: p[4] };
  const opt: [keyof AuditRow, unknown][] = [['status', p[5]], ['clientId', p[6]], ['fhirUser', p[7]], ['patient', p[8]], ['entity', p[9]], ['detail', p[10]]];
  for (const [k, v] of opt) {
    if (v !== null) {
      (row as unknown as Record<string, unknown>)[k] = v;
    }
  }
  return row;
}

/** `<batch>-<index>` -> [batch, index]; undefined when it is not one this store made. */
function position(seq: string | undefined): [number, number] | undefined {
  const m = seq === undefined ? null : /^(\d{1,18})-(\d{1,6})$/.exec(seq);
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

/** AuditStore on audit_batch (migration 006): one row per flushed batch. */
export class PgAuditStore implements AuditStore {
  constructor(private readonly q: Queryable) {}

  async append(rows: AuditRow[]): Promise<void> {
    if (rows.length === 0) {
      return;
    }
    const patients = new Set<string>();
    const clients = new Set<string>();
    let events = '';
    for (const r of rows) {
      if (r.patient) patients.add(r.patient);
      if (r.clientId) clients.add(r.clientId);
      events += (events ? '\n' : '') + JSON.stringify(pack(r));
    }
    await this.q.query(
      `INSERT INTO audit_batch (first_recorded, last_recorded, patients, clients, n, events) VALUES ($1, $2, $3::text[], $4::text[], $5, $6)`,
      // Deflated (fastest level): ~10x smaller, which halves the cost of writing the batch.
      [rows[0].recorded, rows[rows.length - 1].recorded, [...patients], [...clients], rows.length, deflateRawSync(events, { level: 1 })],
      { prepare: true },
    );
  }

  async query(q: AuditQuery): Promise<AuditRow[]> {
    const after = position(q.after) ?? [0, -1];
    const out: AuditRow[] = [];
    let fromBatch = after[0];
    let skipThrough = after[1];
    while (out.length < q.count) {
      // Batches that can hold a match (the arrays and the time range narrow them), a few at a time.
      const batches = await this.q.query<{ seq: string | number; events: Uint8Array }>(
        `SELECT seq, events FROM audit_batch
         WHERE seq >= $1 AND ($2::text IS NULL OR patients @> ARRAY[$2::text]) AND ($3::text IS NULL OR clients @> ARRAY[$3::text])
           AND ($4::timestamptz IS NULL OR last_recorded >= $4::timestamptz)
         ORDER BY seq LIMIT 8`,
        [fromBatch, q.patient ?? null, q.clientId ?? null, q.since ?? null],
      );
      if (batches.length === 0) {
        break;
      }
      for (const b of batches) {
        const seq = Number(b.seq);
        const lines = inflateRawSync(b.events).toString('utf8').split('\n');
        for (let i = seq === fromBatch ? skipThrough + 1 : 0; i < lines.length && out.length < q.count; i++) {
          const row = unpack(JSON.parse(lines[i]) as Packed, `${seq}-${i}`);
          if ((q.patient === undefined || row.patient === q.patient) && (q.clientId === undefined || row.clientId === q.clientId) && (q.since === undefined || row.recorded >= q.since)) {
            out.push(row);
          }
        }
        if (out.length >= q.count) {
          break;
        }
      }
      fromBatch = Number(batches[batches.length - 1].seq) + 1;
      skipThrough = -1;
    }
    return out;
  }
}
