import { brotliCompressSync, brotliDecompressSync, constants, inflateRawSync } from 'node:zlib';
import type { AuditQuery, AuditRow, AuditStore } from '../api';
import type { Queryable } from './driver';

/** One event as stored: a JSON array in this field order (compact, and cheap to write). */
type Packed = [string, AuditRow['category'], string, AuditRow['action'], AuditRow['outcome'], number | null, string | null, string | null, string | null, string | null, string | null];

const pack = (r: AuditRow): Packed => [r.recorded, r.category, r.interaction, r.action, r.outcome, r.status ?? null, r.clientId ?? null, r.fhirUser ?? null, r.patient ?? null, r.entity ?? null, r.detail ?? null];

// Positions in Packed that queries filter on.
const RECORDED = 0;
const CLIENT = 6;
const PATIENT = 8;

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

/**
 * How a batch's events are stored (audit_batch.format):
 * 0 (migration 006): raw-deflated text, one line per event (a Packed array); the batch's patients
 *   in `patients`.
 * 1 (migration 009): Brotli-compressed text, one line per LINE_EVENTS events (a JSON array of
 *   Packed arrays; the last line may hold fewer); the batch's patients as `patient_keys`
 *   (patientKey of each), `patients` empty. LINE_EVENTS is part of the format: event i of a batch
 *   is on line floor(i / LINE_EVENTS).
 */
const FORMAT_DEFLATE_LINES = 0;
const FORMAT_BROTLI_LINES = 1;
const LINE_EVENTS = 100;

/**
 * Brotli's fastest useful level: on audit batches it is ~2.5x faster than deflate level 1 and
 * writes ~35 % fewer bytes (its window spans the whole batch, so repeated ids cost little).
 */
const BROTLI = { params: { [constants.BROTLI_PARAM_QUALITY]: 1, [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT } };

/**
 * A patient id's key in audit_batch.patient_keys: FNV-1a (32 bits) over its UTF-16 code units, as
 * a signed integer. Stored on disk: never change it. Two ids may share a key; queries compare the
 * events' patient ids, so that only costs reading a batch for nothing.
 */
export function patientKey(id: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) {
    h ^= id.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h | 0;
}

/** `<batch>-<index>` -> [batch, index]; undefined when it is not one this store made. */
function position(seq: string | undefined): [number, number] | undefined {
  const m = seq === undefined ? null : /^(\d{1,18})-(\d{1,6})$/.exec(seq);
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

/**
 * Where format-1 text is encoded, kept from batch to batch. Encoding a batch with one
 * JSON.stringify call instead would return a ~400 KB string made of pieces, which V8 copies into a
 * fresh large allocation before it can be encoded, and encoding it allocates another: together
 * more than compressing costs. Lines of LINE_EVENTS events stay small.
 */
let scratch = Buffer.allocUnsafe(1 << 20);

/** The batch as format-1 text (UTF-8), in the shared scratch buffer: use it before any await. */
function encodeLines(rows: AuditRow[]): Buffer {
  let used = 0;
  for (let i = 0; i < rows.length; i += LINE_EVENTS) {
    const line = JSON.stringify(rows.slice(i, i + LINE_EVENTS).map(pack));
    // A UTF-16 code unit takes at most 3 bytes in UTF-8; +1 for the newline.
    if (scratch.length - used < line.length * 3 + 1) {
      const bigger = Buffer.allocUnsafe(Math.max(scratch.length * 2, used + line.length * 3 + 1));
      scratch.copy(bigger, 0, 0, used);
      scratch = bigger;
    }
    if (used > 0) {
      scratch[used++] = 0x0a;
    }
    used += scratch.write(line, used, 'utf8');
  }
  return scratch.subarray(0, used);
}

/** A stored batch's lines, and how many events each holds. */
function decodeLines(format: number, events: Buffer): { lines: string[]; perLine: number } {
  if (format === FORMAT_BROTLI_LINES) {
    return { lines: brotliDecompressSync(events).toString('utf8').split('\n'), perLine: LINE_EVENTS };
  }
  if (format === FORMAT_DEFLATE_LINES) {
    return { lines: inflateRawSync(events).toString('utf8').split('\n'), perLine: 1 };
  }
  throw new Error(`audit batch in an unknown format (${format}): written by a newer version?`);
}

/**
 * AuditStore on audit_batch (migrations 006 and 009): one row per flushed batch.
 *
 * Writing a batch is on the server's thread (and, embedded, so is PGlite), so it is kept cheap:
 * a JSON.stringify per LINE_EVENTS events encoded into a reused buffer, Brotli at its fastest
 * level, integer patient keys for the GIN index, and the bytes sent as base64 text decoded by the
 * database (PGlite's own bytea parameter encoding converts byte by byte in JavaScript, ~20x slower
 * than all the rest of the write).
 */
export class PgAuditStore implements AuditStore {
  constructor(private readonly q: Queryable) {}

  async append(rows: AuditRow[]): Promise<void> {
    if (rows.length === 0) {
      return;
    }
    const patients = new Set<string>();
    const clients = new Set<string>();
    let first = rows[0].recorded;
    let last = first;
    for (const r of rows) {
      if (r.patient) patients.add(r.patient);
      if (r.clientId) clients.add(r.clientId);
      if (r.recorded < first) first = r.recorded;
      if (r.recorded > last) last = r.recorded;
    }
    const keys = new Set<number>();
    for (const p of patients) {
      keys.add(patientKey(p));
    }
    // Encoding and compressing without an await between them: the text is in the shared buffer.
    const events = brotliCompressSync(encodeLines(rows), BROTLI);
    await this.q.query(
      `INSERT INTO audit_batch (first_recorded, last_recorded, patients, patient_keys, clients, n, format, events)
       VALUES ($1, $2, '{}', $3::text::integer[], $4::text[], $5, ${FORMAT_BROTLI_LINES}, decode($6, 'base64'))`,
      [first, last, `{${[...keys].join(',')}}`, [...clients], rows.length, events.toString('base64')],
      { prepare: true },
    );
  }

  async query(q: AuditQuery): Promise<AuditRow[]> {
    const after = position(q.after) ?? [0, -1];
    const out: AuditRow[] = [];
    let fromBatch = after[0];
    let skipThrough = after[1];
    // A line without these (as JSON strings) holds no match and is not parsed.
    const needles = [q.patient, q.clientId].filter((s) => s !== undefined).map((s) => JSON.stringify(s));
    const matches = (p: Packed): boolean =>
      (q.patient === undefined || p[PATIENT] === q.patient) && (q.clientId === undefined || p[CLIENT] === q.clientId) && (q.since === undefined || p[RECORDED] >= q.since);
    while (out.length < q.count) {
      // Batches that can hold a match (the indexed arrays and the time range narrow them), a few at
      // a time; the events come as base64 (PGlite decodes bytea results byte by byte).
      const batches = await this.q.query<{ seq: string | number; format: number; events: string }>(
        `SELECT seq, format, encode(events, 'base64') AS events FROM audit_batch
         WHERE seq >= $1
           AND ($2::text IS NULL OR patient_keys @> ARRAY[$3::integer] OR patients @> ARRAY[$2::text])
           AND ($4::text IS NULL OR clients @> ARRAY[$4::text])
           AND ($5::timestamptz IS NULL OR last_recorded >= $5::timestamptz)
         ORDER BY seq LIMIT 8`,
        [fromBatch, q.patient ?? null, q.patient === undefined ? null : patientKey(q.patient), q.clientId ?? null, q.since ?? null],
      );
      if (batches.length === 0) {
        break;
      }
      for (const b of batches) {
        const seq = Number(b.seq);
        const start = seq === fromBatch ? skipThrough + 1 : 0;
        const { lines, perLine } = decodeLines(Number(b.format), Buffer.from(b.events, 'base64'));
        for (let l = Math.floor(start / perLine); l < lines.length && out.length < q.count; l++) {
          const line = lines[l];
          if (needles.some((n) => !line.includes(n))) {
            continue;
          }
          const events = perLine === 1 ? [JSON.parse(line) as Packed] : (JSON.parse(line) as Packed[]);
          for (let j = 0; j < events.length && out.length < q.count; j++) {
            const i = l * perLine + j;
            if (i >= start && matches(events[j])) {
              out.push(unpack(events[j], `${seq}-${i}`));
            }
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
