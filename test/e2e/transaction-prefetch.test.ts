/**
 * Transactions lock and read the resources their PUTs change in one query (StoreWriter.prefetch)
 * and queue the creates among them: the answers, versions, history and index must be exactly what
 * one-by-one writes give, and a create that another writer beats fails the whole transaction.
 */
import type { Bundle, Observation, Patient } from '@medplum/fhirtypes';
import { createContinuum } from '../../src/server';
import type { ResourceLike } from '../../src/store/api';
import { freshSchema, startTestServer, type TestServer, usingPostgres } from '../support/server';

jest.setTimeout(60_000);

const patient = (id: string, family: string): Patient => ({ resourceType: 'Patient', id, name: [{ family }] });
/** The same, as the store takes it. */
const stored = (id: string, family: string): ResourceLike => patient(id, family) as unknown as ResourceLike;

describe('transaction Bundles of PUTs (prefetched)', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer();
  });

  afterAll(async () => {
    await server.close();
  });

  test('new, existing and deleted targets get the statuses, versions and index one-by-one PUTs give', async () => {
    await server.request().put('/Patient/pf-old').send(patient('pf-old', 'Before')).expect(201);
    await server.request().put('/Patient/pf-gone').send(patient('pf-gone', 'Gone')).expect(201);
    await server.request().delete('/Patient/pf-gone').expect(204);
    const entry = [
      ...Array.from({ length: 30 }, (_, i) => ({ resource: patient(`pf-new-${i}`, `New${i}`), request: { method: 'PUT', url: `Patient/pf-new-${i}` } })),
      { resource: patient('pf-old', 'After'), request: { method: 'PUT', url: 'Patient/pf-old', ifMatch: 'W/"1"' } },
      { resource: patient('pf-gone', 'Back'), request: { method: 'PUT', url: 'Patient/pf-gone' } },
      // Reads in the same transaction see the writes before them (GETs run last).
      { request: { method: 'GET', url: 'Patient/pf-new-7' } },
      { request: { method: 'GET', url: 'Patient?family=After' } },
    ];
    const res = await server.request().post('/').send({ resourceType: 'Bundle', type: 'transaction', entry }).expect(200);
    const out = (res.body as Bundle).entry ?? [];
    expect(out.slice(0, 30).map((e) => e.response?.status)).toEqual(Array(30).fill('201'));
    expect(out[0].response?.etag).toBe('W/"1"');
    expect(out[30].response).toMatchObject({ status: '200', etag: 'W/"2"' });
    expect(out[31].response).toMatchObject({ status: '200', etag: 'W/"3"' });
    expect(out[32].resource).toMatchObject({ id: 'pf-new-7', name: [{ family: 'New7' }], meta: { versionId: '1' } });
    expect(((out[33].resource as Bundle).entry ?? []).map((e) => e.resource?.id)).toEqual(['pf-old']);

    const history = await server.request().get('/Patient/pf-gone/_history').expect(200);
    expect(((history.body as Bundle).entry ?? []).map((e) => [e.request?.method, e.resource?.meta?.versionId ?? e.response?.etag])).toEqual([
      ['PUT', '3'],
      ['DELETE', 'W/"2"'],
      ['PUT', '1'],
    ]);
    const found = await server.request().get('/Patient?family:exact=New12').expect(200);
    expect(((found.body as Bundle).entry ?? []).map((e) => e.resource?.id)).toEqual(['pf-new-12']);
    const page = await server.request().get('/Patient?_id=pf-new-0,pf-new-29&_summary=count').expect(200);
    expect((page.body as Bundle).total).toBe(2);
  });

  test('a failing entry after prefetched creates leaves nothing behind, and the same ids can be written later', async () => {
    const entry = [
      { resource: patient('pf-tx-a', 'A'), request: { method: 'PUT', url: 'Patient/pf-tx-a' } },
      { resource: patient('pf-tx-b', 'B'), request: { method: 'PUT', url: 'Patient/pf-tx-b' } },
      { resource: { resourceType: 'Observation', id: 'pf-tx-bad', status: 'not-a-status', code: { text: 'x' } } as unknown as Observation, request: { method: 'PUT', url: 'Observation/pf-tx-bad' } },
    ];
    const res = await server.request().post('/').send({ resourceType: 'Bundle', type: 'transaction', entry });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect(res.body.resourceType).toBe('OperationOutcome');
    await server.request().get('/Patient/pf-tx-a').expect(404);
    await server.request().get('/Patient/pf-tx-b').expect(404);
    const again = await server.request().post('/').send({ resourceType: 'Bundle', type: 'transaction', entry: entry.slice(0, 2) }).expect(200);
    expect(((again.body as Bundle).entry ?? []).map((e) => e.response?.status)).toEqual(['201', '201']);
  });

  test('in one store transaction, a write that bypasses the prefetch is seen by the writes after it', async () => {
    const store = server.continuum.store;
    const result = await store.transaction(async (w) => {
      await w.prefetch?.([
        { resourceType: 'Patient', id: 'pf-store-1' },
        { resourceType: 'Patient', id: 'pf-store-2' },
      ]);
      expect(await w.read('Patient', 'pf-store-1')).toBeUndefined();
      // A create (not an update) of a prefetched-absent id, then an update of it: version 2.
      await w.create(stored('pf-store-1', 'First'));
      const updated = await w.update(stored('pf-store-1', 'Second'));
      const created = await w.update(stored('pf-store-2', 'Only'));
      const read = await w.read('Patient', 'pf-store-2');
      return { updated, created, read };
    });
    expect(result.updated).toMatchObject({ created: false, version: { versionId: '2' } });
    expect(result.created).toMatchObject({ created: true, version: { versionId: '1' } });
    expect(JSON.parse(result.read?.json ?? '{}')).toMatchObject({ name: [{ family: 'Only' }] });
    expect(JSON.parse((await store.read('Patient', 'pf-store-1'))?.json ?? '{}')).toMatchObject({ name: [{ family: 'Second' }], meta: { versionId: '2' } });
  });
});

if (usingPostgres()) {
  describe('prefetched creates racing another writer (PostgreSQL)', () => {
    test('a create queued after prefetch that another transaction beats fails its transaction with 409, leaving nothing', async () => {
      const s = await freshSchema();
      const a = await createContinuum({ databaseUrl: s.url, seedConformance: false, logError: () => undefined });
      const b = await createContinuum({ databaseUrl: s.url, seedConformance: false, logError: () => undefined });
      try {
        let release!: () => void;
        const gate = new Promise<void>((r) => (release = r));
        let prefetched!: () => void;
        const ready = new Promise<void>((r) => (prefetched = r));
        const slow = a.store.transaction(async (w) => {
          await w.prefetch?.([{ resourceType: 'Patient', id: 'race-1' }, { resourceType: 'Patient', id: 'race-2' }]);
          prefetched();
          await gate;
          await w.update(stored('race-2', 'A'));
          await w.update(stored('race-1', 'A'));
        });
        await ready;
        // B creates race-1 and commits while A holds its queued create.
        await b.store.transaction((w) => w.create(stored('race-1', 'B')));
        release();
        await expect(slow).rejects.toMatchObject({ category: 'conflict' });
        expect(JSON.parse((await a.store.read('Patient', 'race-1'))?.json ?? '{}')).toMatchObject({ name: [{ family: 'B' }], meta: { versionId: '1' } });
        expect(await a.store.read('Patient', 'race-2')).toBeUndefined();
      } finally {
        await a.close();
        await b.close();
        await s.drop();
      }
    });
  });
}
