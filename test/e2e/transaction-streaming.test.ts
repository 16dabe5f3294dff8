/**
 * Creates streamed to the database in the background (src/store/postgres/store.ts, STREAM_ROWS):
 * a transaction with more creates than one group must still read its own writes, keep the order
 * of its statements, fail whole with 409 when a streamed create already exists, and leave nothing
 * behind when it fails after some groups were sent.
 */
import type { Bundle, Patient } from '@medplum/fhirtypes';
import type { ResourceLike } from '../../src/store/api';
import { STREAM_ROWS } from '../../src/store/postgres/store';
import { startTestServer, type TestServer } from '../support/server';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(() => server.close());

const N = STREAM_ROWS * 2 + 50;
const patient = (id: string, system: string): ResourceLike => ({ resourceType: 'Patient', id, identifier: [{ system, value: id }] }) as unknown as ResourceLike;
const identifierIs = (system: string) => [{ kind: 'token' as const, code: 'identifier', values: [{ system, value: undefined }] }];

test('a transaction reads its own streamed creates, in order, and commits all of them', async () => {
  const store = server.continuum.store;
  const system = 'urn:test:stream-ok';
  const seen = await store.transaction(async (w) => {
    for (let i = 0; i < N; i++) {
      await w.create(patient(`stream-ok-${i}`, system));
    }
    // Reads inside the transaction see every create, the streamed groups and the queued rest.
    const ids = await w.store.searchIds({ resourceType: 'Patient', filters: [{ kind: 'token', code: 'identifier', values: [{ system, value: undefined }] }], count: 10_000 });
    const one = await w.store.read('Patient', `stream-ok-${N - 1}`);
    return { ids: ids.length, last: one?.id };
  });
  expect(seen).toEqual({ ids: N, last: `stream-ok-${N - 1}` });
  const after = await store.searchIds({ resourceType: 'Patient', filters: identifierIs(system), count: 10_000 });
  expect(after).toHaveLength(N);
});

test('a streamed create whose id already exists fails the whole transaction with 409 and writes nothing', async () => {
  const store = server.continuum.store;
  const system = 'urn:test:stream-clash';
  await store.transaction((w) => w.create(patient('stream-clash-5', 'urn:test:stream-before')));
  const err = await store
    .transaction(async (w) => {
      for (let i = 0; i < N; i++) {
        await w.create(patient(`stream-clash-${i}`, system));
      }
    })
    .then(
      () => undefined,
      (e: unknown) => e as { category?: string; message?: string },
    );
  expect(err?.category).toBe('conflict'); // 409
  expect(err?.message).toMatch(/Patient\/stream-clash-5 already exists/);
  expect(await store.searchIds({ resourceType: 'Patient', filters: identifierIs(system), count: 10_000 })).toEqual([]);
  // The resource that was there is untouched.
  const kept = await store.read('Patient', 'stream-clash-5');
  expect((JSON.parse(kept?.json ?? '{}') as Patient).identifier?.[0].system).toBe('urn:test:stream-before');
});

test('a transaction Bundle that fails on its last entry, after groups were streamed, stores none of them', async () => {
  const system = 'urn:test:stream-bundle';
  const entry: NonNullable<Bundle['entry']> = Array.from({ length: N }, (_, i) => ({
    fullUrl: `urn:uuid:00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    resource: { resourceType: 'Patient', identifier: [{ system, value: String(i) }] } as Patient,
    request: { method: 'POST' as const, url: 'Patient' },
  }));
  // Invalid: gender is a code from a required value set.
  entry.push({ resource: { resourceType: 'Patient', gender: 'sometimes' } as unknown as Patient, request: { method: 'POST', url: 'Patient' } });
  const res = await server.request().post('/').set('content-type', 'application/fhir+json').send({ resourceType: 'Bundle', type: 'transaction', entry });
  expect(res.status).toBeGreaterThanOrEqual(400);
  expect(res.status).toBeLessThan(500);
  expect(res.body.resourceType).toBe('OperationOutcome');
  const found = await server.request().get(`/Patient?identifier=${encodeURIComponent(system + '|')}&_summary=count`);
  expect(found.status).toBe(200);
  expect(found.body.total).toBe(0);

  // The same Bundle without the bad entry stores every Patient.
  const ok = await server.request().post('/').set('content-type', 'application/fhir+json').send({ resourceType: 'Bundle', type: 'transaction', entry: entry.slice(0, N) });
  expect(ok.status).toBe(200);
  const all = await server.request().get(`/Patient?identifier=${encodeURIComponent(system + '|')}&_summary=count`);
  expect(all.body.total).toBe(N);
});
