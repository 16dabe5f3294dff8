/**
 * store.searchIds and store.readMany (many matches read at once: the CCM month close): the same
 * matches a paged search finds, JSON of current versions only, and a transaction's own writes seen.
 */
import type { Observation } from '@medplum/fhirtypes';
import type { ResourceLike, SearchFilter } from '../../src/store/api';
import { startTestServer, type TestServer } from '../support/server';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(() => server.close());

/** `code=[system|]value`, as the search parser gives it to the store. */
const codeIs = (system: string | undefined, value: string): SearchFilter => ({ kind: 'token', code: 'code', values: [{ system, value }] });

const obs = (id: string, code: string): ResourceLike => ({ resourceType: 'Observation', id, status: 'final', code: { coding: [{ system: 'http://loinc.org', code }] } }) as unknown as ResourceLike;

test('searchIds finds what paging through search finds, in id order, up to count; readMany leaves out deleted and unknown ids', async () => {
  const store = server.continuum.store;
  await store.transaction(async (w) => {
    for (let i = 0; i < 30; i++) {
      await w.create(obs(`bulk-${String(i).padStart(2, '0')}`, i % 3 === 0 ? '8867-4' : '29463-7'));
    }
  });
  await store.transaction((w) => w.delete('Observation', 'bulk-03'));
  const parsed = { filters: [codeIs('http://loinc.org', '8867-4')] };
  const ids = await store.searchIds({ resourceType: 'Observation', filters: parsed.filters, count: 1000 });
  const paged: string[] = [];
  let after: unknown[] | undefined;
  for (;;) {
    const page = await store.search({ resourceType: 'Observation', filters: parsed.filters, count: 4, sort: [{ kind: 'id', descending: false }], after });
    paged.push(...page.versions.map((v) => v.id));
    if (!page.more) {
      break;
    }
    after = page.last;
  }
  expect(ids).toEqual(paged);
  expect(ids).toEqual(['bulk-00', 'bulk-06', 'bulk-09', 'bulk-12', 'bulk-15', 'bulk-18', 'bulk-21', 'bulk-24', 'bulk-27']);
  expect(await store.searchIds({ resourceType: 'Observation', filters: parsed.filters, count: 2 })).toEqual(['bulk-00', 'bulk-06']);
  const json = await store.readMany('Observation', ['bulk-06', 'bulk-03', 'no-such', 'bulk-00']);
  expect(json.map((j) => (JSON.parse(j) as Observation).id)).toEqual(['bulk-00', 'bulk-06']);
  expect(JSON.parse(json[0])).toMatchObject({ meta: { versionId: '1' }, code: { coding: [{ code: '8867-4' }] } });
  expect(await store.readMany('Observation', [])).toEqual([]);
});

test("inside a transaction both see the transaction's own queued creates", async () => {
  const store = server.continuum.store;
  await store.transaction(async (w) => {
    await w.create(obs('bulk-tx-1', '8302-2'));
    const parsed = { filters: [codeIs(undefined, '8302-2')] };
    expect(await w.searchIds({ resourceType: 'Observation', filters: parsed.filters, count: 10 })).toEqual(['bulk-tx-1']);
    expect((await w.readMany('Observation', ['bulk-tx-1'])).length).toBe(1);
  });
});

test('one value filter is answered from its index table: each match once, however many of its rows match, deleted ones left out', async () => {
  const store = server.continuum.store;
  const twoCodes = (id: string): ResourceLike =>
    ({ resourceType: 'Observation', id, status: 'final', code: { coding: [{ system: 'http://loinc.org', code: '1111-1' }, { system: 'http://loinc.org', code: '2222-2' }] } }) as unknown as ResourceLike;
  await store.transaction(async (w) => {
    await w.create(twoCodes('multi-a'));
    await w.create(twoCodes('multi-b'));
    await w.create(twoCodes('multi-c'));
  });
  await store.transaction((w) => w.delete('Observation', 'multi-b'));
  const either: SearchFilter = { kind: 'token', code: 'code', values: [{ value: '1111-1' }, { value: '2222-2' }] };
  const ids = await store.searchIds({ resourceType: 'Observation', filters: [either], count: 100 });
  expect(ids).toEqual(['multi-a', 'multi-c']);
  // The same through the general path (two filters) agrees.
  const both = await store.searchIds({ resourceType: 'Observation', filters: [either, { kind: 'token', code: 'status', values: [{ value: 'final' }] }], count: 100 });
  expect(both).toEqual(['multi-a', 'multi-c']);
});
