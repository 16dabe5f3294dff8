/**
 * `$ccm-worklist`: the month's work, most urgent first, for all patients or a care team member's own.
 */
import { join } from 'node:path';
import type { Parameters, Resource } from '@medplum/fhirtypes';
import { deployBot } from '../../../src/bots/deploy';
import { worklist } from '../../../src/ccm/worklist';
import { FHIR_JSON, startTestServer, type TestServer } from '../../support/server';

const CCM = 'http://continuum-ccm.org/fhir/CodeSystem/ccm';
const clock = new Date('2026-03-23T00:00:00Z'); // 9 days left in March
let server: TestServer;
const ids: Record<string, string> = {};

async function create<T extends Resource>(resource: T): Promise<T & { id?: string }> {
  const res = await server.request().post(`/${resource.resourceType}`).set('Content-Type', FHIR_JSON).send(resource);
  expect(res.status).toBe(201);
  return res.body as T;
}
const patient = async (name: string): Promise<string> => {
  ids[name] = (await create({ resourceType: 'Patient', name: [{ family: name }] })).id as string;
  return ids[name];
};
const plan = (p: string, extra: Record<string, unknown> = {}): Promise<Resource> =>
  create({ resourceType: 'CarePlan', status: 'active', intent: 'plan', category: [{ coding: [{ system: CCM, code: 'ccm' }] }], subject: { reference: `Patient/${p}` }, author: { reference: 'Practitioner/dr' }, period: { start: '2026-01-01' }, ...extra } as Resource);
const consent = (p: string): Promise<Resource> =>
  create({
    resourceType: 'Consent',
    status: 'active',
    scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'treatment' }] },
    category: [{ coding: [{ system: CCM, code: 'ccm' }] }],
    patient: { reference: `Patient/${p}` },
    dateTime: '2026-01-01',
    provision: { period: { start: '2026-01-01' } },
  });
const eligibleDetermination = (p: string): Promise<Resource> =>
  create({
    resourceType: 'Observation',
    status: 'final',
    code: { coding: [{ system: CCM, code: 'ccm-eligibility' }] },
    subject: { reference: `Patient/${p}` },
    valueCodeableConcept: { coding: [{ system: CCM, code: 'eligible' }] },
  });

beforeAll(async () => {
  server = await startTestServer({ now: () => clock });
  await deployBot(join(__dirname, '../../../bots/ccm-time-totals'), 'ccm-time-totals', server.continuum.bots);
  const a = await patient('Close');
  const b = await patient('Far');
  const c = await patient('Urgent');
  const d = await patient('Review');
  const e = await patient('NoConsent');
  const f = await patient('NoPlan');
  for (const p of [a, b, c, d]) {
    await consent(p);
  }
  const planA = await plan(a);
  await plan(b);
  await plan(c);
  await plan(d, { extension: [{ url: 'http://continuum-ccm.org/fhir/StructureDefinition/care-plan-review-date', valueDate: '2026-03-15' }] });
  await create({
    resourceType: 'Task',
    status: 'completed',
    intent: 'order',
    code: { coding: [{ system: CCM, code: 'time-entry' }] },
    for: { reference: `Patient/${a}` },
    basedOn: [{ reference: `CarePlan/${planA.id as string}` }],
    performerType: [{ coding: [{ system: CCM, code: 'clinical-staff' }] }],
    executionPeriod: { start: '2026-03-10T10:00:00Z', end: '2026-03-10T10:14:00Z' },
  });
  ids.task = (
    await create({ resourceType: 'Task', status: 'requested', intent: 'order', priority: 'urgent', for: { reference: `Patient/${c}` }, description: 'Glucose 42 mg/dL', authoredOn: '2026-03-22T08:00:00Z' })
  ).id as string;
  await create({ resourceType: 'Task', status: 'completed', intent: 'order', priority: 'urgent', for: { reference: `Patient/${c}` }, description: 'done already' });
  await eligibleDetermination(e);
  await eligibleDetermination(f);
  await consent(f);
  await create({ resourceType: 'CareTeam', status: 'active', subject: { reference: `Patient/${a}` }, participant: [{ member: { reference: 'Practitioner/nurse-1' } }] });
  await server.continuum.bots.idle();
});
afterAll(() => server.close());

type Item = Record<string, unknown>;
function items(p: Parameters): Item[] {
  return (p.parameter ?? [])
    .filter((x) => x.name === 'item')
    .map((x) => Object.fromEntries((x.part ?? []).map((y) => [y.name, y.valueString ?? y.valueCode ?? y.valueInteger ?? y.valueReference?.reference ?? y.valueCoding?.code])));
}

test('most urgent first: urgent tasks, reviews due, minutes to the next code, then consent and enrolment', async () => {
  const res = await server.request().get('/$ccm-worklist');
  expect(res.status).toBe(200);
  const list = items(res.body as Parameters);
  expect(list.map((i) => [i.kind, i.patient])).toEqual([
    ['urgent-task', `Patient/${ids.Urgent}`],
    ['review-due', `Patient/${ids.Review}`],
    ['time', `Patient/${ids.Close}`],
    ...[ids.Far, ids.Review, ids.Urgent].sort().map((p) => ['time', `Patient/${p}`]),
    ['consent-missing', `Patient/${ids.NoConsent}`],
    ['not-enrolled', `Patient/${ids.NoPlan}`],
  ]);
  expect(list[0]).toMatchObject({ focus: `Task/${ids.task}`, text: 'Glucose 42 mg/dL', rank: 1 });
  expect(list[2]).toMatchObject({ text: '14 minutes logged, 6 to the next code (99490), 9 days left.', minutes: 14, toNextCode: 6, nextCode: '99490', daysLeft: 9 });
  expect(list[1].text).toBe('Care plan review was due on 2026-03-15.');
});

test("a care team member's token lists only their patients", async () => {
  const agent = await server.as('user/*.rs', { fhirUser: 'Practitioner/nurse-1' });
  const res = await agent.get('/$ccm-worklist');
  expect(res.status).toBe(200);
  expect(new Set(items(res.body as Parameters).map((i) => i.patient))).toEqual(new Set([`Patient/${ids.Close}`]));
});

test('a patient-bound token is refused; unknown parameters are a 400', async () => {
  const agent = await server.as('patient/*.rs', { patient: ids.Close });
  expect((await agent.get('/$ccm-worklist')).status).toBe(403);
  const res = await server.request().get('/$ccm-worklist?sort=name');
  expect(res.status).toBe(400);
  expect(JSON.stringify(res.body)).toContain("Unknown parameter 'sort'");
});

test('the same list while the projections are not ready (whole resources are read)', async () => {
  const ctx = server.continuum.context();
  const notReady = { ...ctx, store: { ...ctx.store, searchProjected: () => Promise.resolve(undefined) } };
  const fromRows = await worklist(ctx);
  expect(fromRows.map((i) => i.kind)).toEqual(['urgent-task', 'review-due', 'time', 'time', 'time', 'time', 'consent-missing', 'not-enrolled']);
  expect(await worklist(notReady)).toEqual(fromRows);
});

test('a token that may not read every kind of resource the worklist reads is refused', async () => {
  const agent = await server.as('user/CarePlan.rs user/MeasureReport.rs user/Observation.rs');
  const res = await agent.get('/$ccm-worklist');
  expect(res.status).toBe(403);
  expect(JSON.stringify(res.body)).toContain('do not allow searching');
});
