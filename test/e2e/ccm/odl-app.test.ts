/**
 * ODLs from a patient's app (ccm-domain.md section 6): the app holds a token bound to its patient
 * (`patient/Observation.c patient/Patient.r`, patient A). It can report A's measurements (201, and
 * the bots make an out-of-range one into a Task for A's care coordinator), but it cannot write an
 * Observation into another patient's record: not with B as subject, not with B as performer, not
 * inside a transaction or as an update-as-create. Each refusal is a 403 with an OperationOutcome,
 * and nothing is stored for B.
 */
import type { Bundle, CareTeam, Observation, OperationOutcome, Patient, Practitioner, Task } from '@medplum/fhirtypes';
import type supertest from 'supertest';
import { patient } from '../../support/builders';
import { create, search, startCcmServer, type CcmServer } from '../../support/ccm';

const TODAY = '2026-11-03';
const SCT = 'http://snomed.info/sct';
const UCUM = 'http://unitsofmeasure.org';

let server: CcmServer;
let a: string;
let b: string;
let coordinator: string;
let app: supertest.Agent;

beforeAll(async () => {
  server = await startCcmServer(`${TODAY}T12:00:00Z`);
  a = (await create<Patient>(server, patient({ name: [{ family: 'Appuser', given: ['Ana'] }] }))).id as string;
  b = (await create<Patient>(server, patient({ name: [{ family: 'Other', given: ['Ben'] }] }))).id as string;
  coordinator = `Practitioner/${(await create<Practitioner>(server, { resourceType: 'Practitioner', name: [{ family: 'Coordinator' }] })).id as string}`;
  await create<CareTeam>(server, {
    resourceType: 'CareTeam',
    status: 'active',
    subject: { reference: `Patient/${a}` },
    participant: [{ role: [{ coding: [{ system: SCT, code: '768820003', display: 'Care coordinator' }] }], member: { reference: coordinator } }],
  });
  app = await server.as('patient/Observation.c patient/Patient.r', { patient: a });
});
afterAll(async () => {
  await server.continuum.bots.idle();
  await server.close();
});

/** A glucose reading from a home meter (ccm-odl profile). */
function glucose(subject: string, performer: string, value: number, at = `${TODAY}T07:30:00-05:00`): Observation {
  return {
    resourceType: 'Observation',
    meta: { profile: ['http://continuum-ccm.org/fhir/StructureDefinition/ccm-odl'] },
    status: 'final',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'vital-signs' }] }],
    code: { coding: [{ system: 'http://loinc.org', code: '41653-7', display: 'Glucose [Mass/volume] in Capillary blood by Glucometer' }] },
    subject: { reference: subject },
    performer: [{ reference: performer }],
    effectiveDateTime: at,
    valueQuantity: { value, unit: 'mg/dL', system: UCUM, code: 'mg/dL' },
  };
}

/** Everything stored that names B: Observations with B as subject or performer, Tasks for B. */
async function storedForB(): Promise<number> {
  const bySubject = await search<Observation>(server, `Observation?subject=Patient/${b}`);
  const byPerformer = await search<Observation>(server, `Observation?performer=Patient/${b}`);
  const tasks = await search<Task>(server, `Task?patient=Patient/${b}`);
  return bySubject.length + byPerformer.length + tasks.length;
}

function expectRefused(res: supertest.Response): void {
  expect(res.status).toBe(403);
  expect((res.body as OperationOutcome).resourceType).toBe('OperationOutcome');
  expect((res.body as OperationOutcome).issue?.[0]?.severity).toBe('error');
}

describe("a patient's app (patient/Observation.c bound to patient A)", () => {
  test("creates an ODL for A (201); an out-of-range one becomes an urgent Task for A's care coordinator", async () => {
    const res = await app.post('/Observation').send(glucose(`Patient/${a}`, `Patient/${a}`, 48));
    expect(res.status).toBe(201);
    expect(res.headers.location).toMatch(/\/Observation\/[^/]+\/_history\/1$/);
    expect(res.body).toMatchObject({ resourceType: 'Observation', subject: { reference: `Patient/${a}` } });
    await server.continuum.bots.idle();
    const tasks = await search<Task>(server, `Task?patient=Patient/${a}&status=requested`);
    expect(tasks).toHaveLength(1);
    expect(tasks[0]).toMatchObject({
      priority: 'urgent',
      owner: { reference: coordinator },
      focus: { reference: `Observation/${res.body.id as string}` },
      description: 'Glucose 48 mg/dL (alert below 54 or above 400)',
    });
  });

  test('a caregiver (RelatedPerson) reporting for A through the same app is fine too', async () => {
    const res = await app.post('/Observation').send(glucose(`Patient/${a}`, 'RelatedPerson/ana-daughter', 110));
    expect(res.status).toBe(201);
  });

  test.each([
    ['B as subject and performer', () => glucose(`Patient/${b}`, `Patient/${b}`, 45)],
    ['B as subject, A as performer', () => glucose(`Patient/${b}`, `Patient/${a}`, 45)],
    ['A as subject, B as performer', () => glucose(`Patient/${a}`, `Patient/${b}`, 45)],
    ['A as subject, B as a second performer', () => ({ ...glucose(`Patient/${a}`, `Patient/${a}`, 45), performer: [{ reference: `Patient/${a}` }, { reference: `Patient/${b}` }] })],
    ['B by absolute URL', () => glucose(`http://continuum.test/Patient/${b}`, `Patient/${a}`, 45)],
  ])('refuses an ODL with %s: 403 with an OperationOutcome, nothing stored for B', async (_name, build) => {
    const before = await search<Observation>(server, `Observation?subject=Patient/${a}`);
    const res = await app.post('/Observation').send(build());
    expectRefused(res);
    expect(await storedForB()).toBe(0);
    expect(await search<Observation>(server, `Observation?subject=Patient/${a}`)).toHaveLength(before.length);
  });

  test("refuses a transaction with one entry for B: the whole Bundle, A's entry included", async () => {
    const before = await search<Observation>(server, `Observation?subject=Patient/${a}`);
    const bundle: Bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { fullUrl: 'urn:uuid:6f1c1b1e-0000-4000-8000-000000000001', resource: glucose(`Patient/${a}`, `Patient/${a}`, 100), request: { method: 'POST', url: 'Observation' } },
        { fullUrl: 'urn:uuid:6f1c1b1e-0000-4000-8000-000000000002', resource: glucose(`Patient/${b}`, `Patient/${b}`, 45), request: { method: 'POST', url: 'Observation' } },
      ],
    };
    const res = await app.post('/').send(bundle);
    expectRefused(res);
    expect(await storedForB()).toBe(0);
    expect(await search<Observation>(server, `Observation?subject=Patient/${a}`)).toHaveLength(before.length);
  });

  test('refuses an update-as-create (PUT with a new id) for B', async () => {
    const res = await app.put('/Observation/odl-for-b').send({ ...glucose(`Patient/${b}`, `Patient/${b}`, 45), id: 'odl-for-b' });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect((res.body as OperationOutcome).resourceType).toBe('OperationOutcome');
    expect((await (await server.api()).get('/Observation/odl-for-b')).status).toBe(404);
    expect(await storedForB()).toBe(0);
  });

  test("cannot read B's record either", async () => {
    expect((await app.get(`/Patient/${b}`)).status).toBe(404);
    expect((await app.get(`/Patient/${a}`)).status).toBe(200);
  });

  test('after all that, B has no Observation and no Task', async () => {
    await server.continuum.bots.idle();
    expect(await storedForB()).toBe(0);
  });
});
