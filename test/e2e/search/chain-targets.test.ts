/**
 * Chained parameters answer the same whether their targets are few (found first, then searched
 * as a plain reference to them) or many (the target's search nested in the statement): see
 * resolveChains in src/store/postgres/store.ts. Deleted targets never match, and a
 * patient-bound token still sees only its own patient's resources through a chain.
 */
import type { Bundle, Observation, Patient } from '@medplum/fhirtypes';
import { CHAIN_TARGETS_INLINE } from '../../../src/store/postgres/store';
import { startTestServer, type TestServer } from '../../support/server';

const SYS = 'urn:test:chain-targets';
const MANY = CHAIN_TARGETS_INLINE + 5;

let server: TestServer;
const patientIds: Record<string, string[]> = { many: [], few: [], gone: [] };

async function create<T extends Patient | Observation>(resource: T): Promise<T & { id: string }> {
  const res = await server.request().post(`/${resource.resourceType}`).set('Content-Type', 'application/fhir+json').send(resource);
  expect(res.status).toBe(201);
  return res.body as T & { id: string };
}

function observation(patientId: string, n: number): Observation {
  return { resourceType: 'Observation', status: 'final', identifier: [{ system: SYS, value: `${patientId}-${n}` }], code: { text: 'chain test' }, subject: { reference: `Patient/${patientId}` } };
}

beforeAll(async () => {
  server = await startTestServer();
  const groups: [string, string, number][] = [
    ['many', 'Manyfamily', MANY],
    ['few', 'Fewfamily', 2],
    ['gone', 'Gonefamily', 1],
  ];
  for (const [key, family, count] of groups) {
    for (let i = 0; i < count; i++) {
      const p = await create<Patient>({ resourceType: 'Patient', name: [{ family, given: [`P${i}`] }] });
      patientIds[key].push(p.id);
      await create(observation(p.id, 1));
    }
  }
  // Two observations for the first "few" patient.
  await create(observation(patientIds.few[0], 2));
  for (const id of patientIds.gone) {
    expect((await server.request().delete(`/Patient/${id}`)).status).toBe(204);
  }
}, 120_000);
afterAll(() => server.close());

async function subjects(query: string, agent = server.request()): Promise<{ subjects: string[]; total?: number }> {
  const res = await agent.get(`/Observation?${query}`);
  expect(res.status).toBe(200);
  const bundle = res.body as Bundle<Observation>;
  return { subjects: (bundle.entry ?? []).map((e) => e.resource!.subject!.reference!.slice('Patient/'.length)).sort(), total: bundle.total };
}

test('more targets than are inlined: every match, each once, with the right total', async () => {
  const got = await subjects('subject:Patient.family=manyfamily&_count=100&_total=accurate');
  expect(got.subjects).toEqual([...patientIds.many].sort());
  expect(got.total).toBe(MANY);
});

test('few targets: the same answer as the nested form gives', async () => {
  const got = await subjects('subject:Patient.family=fewfamily&_count=100&_total=accurate');
  expect(got.subjects).toEqual([patientIds.few[0], patientIds.few[0], patientIds.few[1]].sort());
  expect(got.total).toBe(3);
  const both = await subjects('subject:Patient.family=fewfamily,manyfamily&_count=100');
  expect(both.subjects).toEqual([...patientIds.many, patientIds.few[0], patientIds.few[0], patientIds.few[1]].sort());
});

test('a deleted target matches nothing; no target matches nothing', async () => {
  expect((await subjects('subject:Patient.family=gonefamily')).subjects).toEqual([]);
  expect((await subjects('subject:Patient.family=nobodyfamily')).subjects).toEqual([]);
});

test('a patient-bound token sees its own patient only, on either side of the limit', async () => {
  for (const [key, all] of [
    ['few', 'fewfamily'],
    ['many', 'manyfamily'],
  ] as const) {
    const own = patientIds[key][1];
    const agent = await server.as('patient/*.rs', { patient: own });
    const got = await subjects(`subject:Patient.family=${all}&_count=100`, agent);
    expect(got.subjects).toEqual([own]);
  }
});
