/**
 * Stored projections (src/store/projections.ts): written, replaced and removed with their resource,
 * never half-applied, backfilled for resources stored before the projection existed, and equal to
 * what reading the whole resources gives.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Bundle, Task } from '@medplum/fhirtypes';
import { entriesOfMonth, TIME_ENTRY_PROJECTION, timeEntryOf } from '../../src/ccm/billing-data';
import type { RequestContext } from '../../src/fhir/types';
import { extractIndexValues } from '../../src/search/extract';
import { createRegistry } from '../../src/search/definitions';
import { createContinuum } from '../../src/server';
import { openStore, type StoreConfig } from '../../src/store/open';
import { monthsOf, projectionCode, projector } from '../../src/store/projections';
import { FHIR_JSON, freshSchema, startTestServer, type TestServer, usingPostgres } from '../support/server';

const CCM = 'http://continuum-ccm.org/fhir/CodeSystem/ccm';
const CODE = projectionCode(TIME_ENTRY_PROJECTION);

const entry = (patient: string, start: string, end: string, extra: Partial<Task> = {}): Task => ({
  resourceType: 'Task',
  status: 'completed',
  intent: 'order',
  code: { coding: [{ system: CCM, code: 'time-entry' }] },
  for: { reference: `Patient/${patient}` },
  performerType: [{ coding: [{ system: CCM, code: 'clinical-staff' }] }],
  executionPeriod: { start, end },
  ...extra,
});

describe('monthsOf', () => {
  test.each([
    ['2026-03-10T10:00:00Z', '2026-03-10T10:20:00Z', ['2026-03']],
    ['2026-03-31T23:50:00Z', '2026-04-01T00:10:00Z', ['2026-03', '2026-04']],
    ['2026-12-31T23:00:00Z', '2027-01-01T01:00:00Z', ['2026-12', '2027-01']],
    // An end before the start within a month still overlaps it (as `overlaps` has it); across months, none.
    ['2026-03-10', '2026-03-01', ['2026-03']],
    ['2026-04-10', '2026-03-01', []],
    ['2020-01-01', '2026-01-01', ['long']],
  ])('%s .. %s', (start, end, months) => {
    expect(monthsOf(start, end)).toEqual(months);
  });
});

describe('projection rows follow their resource', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
    await server.continuum.projectionsReady;
  });
  afterAll(() => server.close());

  const stored = async (month: string): Promise<unknown[] | undefined> => {
    return server.continuum.store.searchProjected({ resourceType: 'Task', filters: [], count: 100 }, CODE, [month]);
  };

  test('create, update to another month, delete', async () => {
    const created = await server.request().post('/Task').set('Content-Type', FHIR_JSON).send(entry('p1', '2026-03-10T10:00:00Z', '2026-03-10T10:20:00Z'));
    expect(created.status).toBe(201);
    const task = created.body as Task;
    expect(await stored('2026-03')).toEqual([JSON.parse(JSON.stringify(timeEntryOf(task)))]);
    expect(await stored('2026-04')).toEqual([]);

    const moved = { ...task, executionPeriod: { start: '2026-04-02T10:00:00Z', end: '2026-04-02T10:05:00Z' } };
    expect((await server.request().put(`/Task/${task.id as string}`).set('Content-Type', FHIR_JSON).send(moved)).status).toBe(200);
    expect(await stored('2026-03')).toEqual([]);
    expect(await stored('2026-04')).toMatchObject([{ id: `Task/${task.id as string}`, start: '2026-04-02T10:00:00Z' }]);

    // No longer a time entry: no row at all.
    const other = { ...moved, code: { coding: [{ system: CCM, code: 'something-else' }] } };
    expect((await server.request().put(`/Task/${task.id as string}`).set('Content-Type', FHIR_JSON).send(other)).status).toBe(200);
    expect(await stored('2026-04')).toEqual([]);

    expect((await server.request().put(`/Task/${task.id as string}`).set('Content-Type', FHIR_JSON).send(moved)).status).toBe(200);
    expect(await stored('2026-04')).toHaveLength(1);
    expect((await server.request().delete(`/Task/${task.id as string}`)).status).toBe(204);
    expect(await stored('2026-04')).toEqual([]);
  });

  test('an entry across a month end is found under both months, once each', async () => {
    const res = await server.request().post('/Task').set('Content-Type', FHIR_JSON).send(entry('p2', '2026-05-31T23:50:00Z', '2026-06-01T00:10:00Z'));
    expect(res.status).toBe(201);
    expect(await stored('2026-05')).toHaveLength(1);
    expect(await stored('2026-06')).toHaveLength(1);
    const both = await server.continuum.store.searchProjected({ resourceType: 'Task', filters: [], count: 100 }, CODE, ['2026-05', '2026-06']);
    expect(both).toHaveLength(1);
  });

  test('a failed transaction leaves no projection row', async () => {
    const bundle: Bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { resource: entry('p3', '2026-07-10T10:00:00Z', '2026-07-10T10:20:00Z'), request: { method: 'POST', url: 'Task' } },
        { resource: { resourceType: 'Patient', birthDate: 'not a date' }, request: { method: 'POST', url: 'Patient' } },
      ],
    };
    const res = await server.request().post('/').set('Content-Type', FHIR_JSON).send(bundle);
    expect(res.status).toBe(400);
    expect(await stored('2026-07')).toEqual([]);
  });

  test('through a restricted token, only the rows of resources it may see', async () => {
    for (const p of ['a1', 'b1']) {
      expect((await server.request().post('/Task').set('Content-Type', FHIR_JSON).send(entry(p, '2026-08-10T10:00:00Z', '2026-08-10T10:20:00Z'))).status).toBe(201);
    }
    const principal = { clientId: 'x', scope: 'patient/Task.rs', patient: 'a1' };
    const ctx = server.continuum.context(undefined, principal as never);
    const seen = await ctx.store.searchProjected({ resourceType: 'Task', filters: [], count: 100 }, CODE, ['2026-08']);
    expect((seen as { patient: string }[]).map((e) => e.patient)).toEqual(['a1']);
    const none = server.continuum.context(undefined, { clientId: 'x', scope: 'patient/Observation.rs', patient: 'a1' } as never);
    expect(await none.store.searchProjected({ resourceType: 'Task', filters: [], count: 100 }, CODE, ['2026-08'])).toEqual([]);
  });

  test('reading whole resources (projection not ready) gives the same entries', async () => {
    for (let i = 0; i < 5; i++) {
      const res = await server.request().post('/Task').set('Content-Type', FHIR_JSON).send(entry(`q${i % 2}`, `2026-09-0${i + 1}T10:00:00Z`, `2026-09-0${i + 1}T10:1${i}:00Z`));
      expect(res.status).toBe(201);
    }
    const ctx = server.continuum.context();
    const notReady: RequestContext = { ...ctx, store: { ...ctx.store, searchProjected: () => Promise.resolve(undefined) } };
    const fromRows = await entriesOfMonth(ctx, '2026-09');
    const fromResources = await entriesOfMonth(notReady, '2026-09');
    expect(fromRows.get('q0')).toHaveLength(3);
    expect(fromRows.get('q1')).toHaveLength(2);
    expect(JSON.parse(JSON.stringify([...fromResources]))).toEqual(JSON.parse(JSON.stringify([...fromRows])));
  });
});

describe('backfill', () => {
  let config: StoreConfig;
  let cleanup: () => Promise<void>;
  beforeEach(async () => {
    if (usingPostgres()) {
      const s = await freshSchema();
      config = { databaseUrl: s.url };
      cleanup = s.drop;
    } else {
      const dir = mkdtempSync(join(tmpdir(), 'continuum-projections-'));
      config = { dataDir: dir };
      cleanup = () => Promise.resolve(rmSync(dir, { recursive: true, force: true }));
    }
  });
  afterEach(() => cleanup());

  test('resources stored before a projection existed get their rows before it is read', async () => {
    // An earlier version of the server: same index, no projections.
    const registry = createRegistry();
    const before = await openStore(config, (r) => extractIndexValues(r, registry, {}));
    await before.transaction(async (w) => {
      await w.create({ ...entry('old', '2026-03-10T10:00:00Z', '2026-03-10T10:30:00Z'), id: 'old-entry' } as never);
    });
    expect(await before.searchProjected({ resourceType: 'Task', filters: [], count: 10 }, CODE, ['2026-03'])).toBeUndefined();
    await before.close();

    const continuum = await createContinuum({ ...config, seedConformance: false });
    try {
      await continuum.projectionsReady;
      const rows = await continuum.store.searchProjected({ resourceType: 'Task', filters: [], count: 10 }, CODE, ['2026-03']);
      expect(rows).toEqual([{ id: 'Task/old-entry', patient: 'old', start: '2026-03-10T10:00:00Z', end: '2026-03-10T10:30:00Z', kind: 'clinical-staff' }]);
    } finally {
      await continuum.close();
    }
  });
});

test('a projection that throws is left out for that resource and reported', () => {
  const errors: string[] = [];
  const project = projector(
    [
      { name: 'bad', version: 1, types: ['Task'], map: () => { throw new Error('boom'); } },
      { name: 'good', version: 2, types: ['Task'], map: (t: { id?: string }) => ({ id: t.id }), keys: () => ['a', 'b', 'a'] },
    ],
    (p, err) => errors.push(`${p.name}: ${String(err)}`),
  );
  expect(project({ resourceType: 'Task', id: 'x' } as never)).toEqual([
    { code: 'good.v2', key: 'a', data: '{"id":"x"}' },
    { code: 'good.v2', key: 'b', data: '{"id":"x"}' },
  ]);
  expect(project({ resourceType: 'Patient' } as never)).toEqual([]);
  expect(errors).toEqual(['bad: Error: boom']);
});
