/**
 * The audit trail's store (audit_batch): what is appended reads back the same, by patient, client,
 * time and cursor, over batches in the current format (009) and batches written before it (006:
 * deflated lines, patient ids in `patients`). On embedded PGlite, or on the PostgreSQL server when
 * DATABASE_URL is set.
 */
import { deflateRawSync } from 'node:zlib';
import type { AuditQuery, AuditRow } from '../../src/store/api';
import { PgAuditStore, patientKey } from '../../src/store/postgres/audit-store';
import type { Driver } from '../../src/store/postgres/driver';
import { migratedDriver } from '../support/server';

let driver: Driver;
let drop: (() => Promise<void>) | undefined;
let store: PgAuditStore;

beforeAll(async () => {
  ({ driver, drop } = await migratedDriver());
  store = new PgAuditStore(driver);
});

afterAll(async () => {
  await driver.close();
  await drop?.();
});

beforeEach(async () => {
  await driver.exec('TRUNCATE audit_batch');
});

let clock = Date.parse('2026-03-01T00:00:00.000Z');

function row(fields: Partial<AuditRow> = {}): AuditRow {
  return { recorded: new Date(clock++).toISOString(), category: 'rest', interaction: 'read', action: 'R', outcome: '0', status: 200, ...fields };
}

/** A batch as migration 006's writer stored it (format 0). */
async function appendOldFormat(rows: AuditRow[]): Promise<void> {
  const pack = (r: AuditRow): unknown[] => [r.recorded, r.category, r.interaction, r.action, r.outcome, r.status ?? null, r.clientId ?? null, r.fhirUser ?? null, r.patient ?? null, r.entity ?? null, r.detail ?? null];
  const patients = [...new Set(rows.flatMap((r) => (r.patient ? [r.patient] : [])))];
  const clients = [...new Set(rows.flatMap((r) => (r.clientId ? [r.clientId] : [])))];
  const events = deflateRawSync(rows.map((r) => JSON.stringify(pack(r))).join('\n'), { level: 1 });
  await driver.query(
    `INSERT INTO audit_batch (first_recorded, last_recorded, patients, clients, n, events) VALUES ($1, $2, $3::text[], $4::text[], $5, decode($6, 'base64'))`,
    [rows[0].recorded, rows[rows.length - 1].recorded, patients, clients, rows.length, events.toString('base64')],
  );
}

const strip = (rows: AuditRow[]): AuditRow[] => rows.map(({ seq: _seq, ...r }) => r);

/** Every row matching `q`, page by page (`after` the last row of the page before). */
async function all(q: Omit<AuditQuery, 'count' | 'after'>, count: number): Promise<AuditRow[]> {
  const out: AuditRow[] = [];
  let after: string | undefined;
  for (;;) {
    const page = await store.query({ ...q, count, after });
    out.push(...page);
    if (page.length < count) {
      return out;
    }
    after = page[page.length - 1].seq;
  }
}

describe('PgAuditStore', () => {
  test('rows read back as they were appended, every optional field and odd text included', async () => {
    const rows = [
      row({ clientId: 'app', fhirUser: 'Practitioner/1', patient: 'p1', entity: 'Patient/p1', detail: 'GET /Patient/p1' }),
      row({ category: 'login', interaction: 'token', action: 'E', outcome: '4', status: undefined, clientId: 'app', detail: 'invalid_client: "quoted"\nsecond line \u00e9\u4e2d\ud83d\ude00' }),
      row({ category: 'bot', interaction: 'execute', outcome: '8', status: 500 }),
    ];
    await store.append(rows);
    const read = await store.query({ count: 10 });
    expect(strip(read)).toEqual(rows.map((r) => Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined))));
    expect(read.map((r) => r.seq)).toEqual([0, 1, 2].map((i) => `${(read[0].seq as string).split('-')[0]}-${i}`));
  });

  test('a large batch (several lines, a text bigger than the encoding buffer) pages without gaps or repeats', async () => {
    const rows = Array.from({ length: 2345 }, (_, i) => row({ patient: `p${i % 7}`, clientId: `c${i % 3}`, detail: `GET /Patient/p${i % 7} ${'x'.repeat(500)}` }));
    await store.append(rows.slice(0, 2000));
    await store.append(rows.slice(2000));
    expect(strip(await all({}, 137))).toEqual(rows);
    expect(strip(await all({ patient: 'p3' }, 40))).toEqual(rows.filter((r) => r.patient === 'p3'));
    expect(strip(await all({ patient: 'p3', clientId: 'c1' }, 9))).toEqual(rows.filter((r) => r.patient === 'p3' && r.clientId === 'c1'));
  });

  test('batches written before migration 009 are read with the new ones: by patient, client, time and cursor', async () => {
    const old1 = [row({ patient: 'a', clientId: 'x' }), row({ patient: 'b', clientId: 'y' }), row({ clientId: 'x' })];
    const new1 = Array.from({ length: 250 }, (_, i) => row({ patient: ['a', 'b', 'c'][i % 3], clientId: i % 2 ? 'x' : 'y' }));
    const old2 = [row({ patient: 'c', clientId: 'y' }), row({ patient: 'a', clientId: 'y' })];
    await appendOldFormat(old1);
    await store.append(new1);
    await appendOldFormat(old2);
    const every = [...old1, ...new1, ...old2];
    expect(strip(await all({}, 1000))).toEqual(every);
    expect(strip(await all({}, 7))).toEqual(every);
    expect(strip(await all({ patient: 'a' }, 1000))).toEqual(every.filter((r) => r.patient === 'a'));
    expect(strip(await all({ patient: 'a' }, 11))).toEqual(every.filter((r) => r.patient === 'a'));
    expect(strip(await all({ clientId: 'x' }, 13))).toEqual(every.filter((r) => r.clientId === 'x'));
    const since = new1[200].recorded;
    expect(strip(await all({ since }, 10))).toEqual(every.filter((r) => r.recorded >= since));
    expect(strip(await all({ patient: 'c', since }, 5))).toEqual(every.filter((r) => r.patient === 'c' && r.recorded >= since));
    expect(await store.query({ patient: 'nobody', count: 10 })).toEqual([]);
  });

  test("a batch whose keys name a patient its events do not (a hash collision) yields nothing for that patient; nor does the id elsewhere in a row", async () => {
    await store.append([row({ patient: 'someone-else', entity: 'target', detail: 'target' })]);
    // Give the batch the key of 'target', as a colliding id would.
    await driver.query(`UPDATE audit_batch SET patient_keys = patient_keys || $1::integer`, [patientKey('target')]);
    expect(await store.query({ patient: 'target', count: 10 })).toEqual([]);
    expect(await store.query({ patient: 'someone-else', count: 10 })).toHaveLength(1);
  });

  test('patientKey is 32-bit FNV-1a as a signed integer (stored on disk: must never change)', () => {
    expect(patientKey('')).toBe(0x811c9dc5 | 0);
    expect(patientKey('a')).toBe(0xe40c292c | 0);
    expect(patientKey('foobar')).toBe(0xbf9cf968 | 0);
  });
});
