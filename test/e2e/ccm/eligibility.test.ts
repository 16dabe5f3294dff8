/**
 * `$ccm-eligibility` over HTTP (patient and system level, sync and async), the eligibility bot's
 * stored determination, and the CCM conformance resources served by the server.
 */
import { join } from 'node:path';
import type { Bundle, Condition, Observation, Parameters, Patient } from '@medplum/fhirtypes';
import { deployBot } from '../../../src/bots/deploy';
import { FHIR_JSON, startTestServer, type TestServer } from '../../support/server';

const CCM = 'http://continuum-ccm.org/fhir/CodeSystem/ccm';
const SCT = 'http://snomed.info/sct';
const BOTS = join(__dirname, '../../../bots');
const clock = new Date('2026-06-15T12:00:00Z');
let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ now: () => clock, seedConformance: true });
  await deployBot(join(BOTS, 'ccm-eligibility'), 'ccm-eligibility', server.continuum.bots);
});
afterAll(() => server.close());

async function create<T extends { resourceType: string; id?: string }>(resource: T): Promise<T> {
  const res = await server.request().post(`/${resource.resourceType}`).set('Content-Type', FHIR_JSON).send(resource);
  expect(res.status).toBe(201);
  return res.body as T;
}

const newPatient = (fields: Partial<Patient> = {}): Promise<Patient> => create<Patient>({ resourceType: 'Patient', name: [{ family: 'Okafor' }], birthDate: '1950-03-01', ...fields });

function chronic(patientId: string, snomed: string, fields: Partial<Condition> = {}): Condition {
  return {
    resourceType: 'Condition',
    subject: { reference: `Patient/${patientId}` },
    clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'active' }] },
    code: { coding: [{ system: SCT, code: snomed }] },
    onsetDateTime: '2020-01-01',
    ...fields,
  };
}

const param = (p: Parameters, name: string): NonNullable<Parameters['parameter']> => (p.parameter ?? []).filter((x) => x.name === name);

describe('Patient/{id}/$ccm-eligibility', () => {
  let eligible: Patient;
  let diabetes: Condition;
  let hypertension: Condition;
  beforeAll(async () => {
    eligible = await newPatient();
    diabetes = await create(chronic(eligible.id as string, '44054006', { onsetDateTime: '2026-06-01' }));
    hypertension = await create(chronic(eligible.id as string, '38341003'));
  });

  test('GET answers eligible, one category per category and one condition per qualifying Condition', async () => {
    const res = await server.request().get(`/Patient/${eligible.id as string}/$ccm-eligibility`);
    expect(res.status).toBe(200);
    const p = res.body as Parameters;
    expect(param(p, 'eligible')[0].valueBoolean).toBe(true);
    expect(param(p, 'category').map((x) => x.valueCode)).toEqual(['diabetes', 'hypertension']);
    expect(param(p, 'condition').map((x) => x.valueReference?.reference).sort()).toEqual([`Condition/${diabetes.id as string}`, `Condition/${hypertension.id as string}`].sort());
    expect(param(p, 'reason')).toEqual([]);
    expect(param(p, 'date')[0].valueDate).toBe('2026-06-15'); // today on the server's clock
  });

  test('date: before the diabetes onset the patient has one category, and the reason says why not', async () => {
    const res = await server.request().get(`/Patient/${eligible.id as string}/$ccm-eligibility?date=2026-05-31`);
    expect(res.status).toBe(200);
    expect(param(res.body, 'eligible')[0].valueBoolean).toBe(false);
    expect(param(res.body, 'reason')[0].valueString).toContain('all in one category (hypertension)');
    expect(param(res.body, 'reason')[0].valueString).toContain(`Condition/${diabetes.id as string}: its onset (2026-06-01) is after 2026-05-31`);
  });

  test('POST with a Parameters body', async () => {
    const res = await server
      .request()
      .post(`/Patient/${eligible.id as string}/$ccm-eligibility`)
      .set('Content-Type', FHIR_JSON)
      .send({ resourceType: 'Parameters', parameter: [{ name: 'date', valueDate: '2026-05-31' }] });
    expect(res.status).toBe(200);
    expect(param(res.body, 'eligible')[0].valueBoolean).toBe(false);
  });

  test.each([
    ['?date=yesterday', 400, "date 'yesterday' is not a date"],
    ['?date=2026-13-01', 400, 'is not a date'],
    ['?colour=blue', 400, "Unknown parameter 'colour'"],
    ['?date=2026-01-01&date=2026-02-01', 400, "'date' is given more than once"],
  ])('bad input %s is a %s OperationOutcome naming it', async (query, status, text) => {
    const res = await server.request().get(`/Patient/${eligible.id as string}/$ccm-eligibility${query}`);
    expect(res.status).toBe(status);
    expect(res.body.resourceType).toBe('OperationOutcome');
    expect(JSON.stringify(res.body)).toContain(text);
  });

  test('an unknown patient is a 404; the operation on another type is a 400', async () => {
    expect((await server.request().get('/Patient/nobody/$ccm-eligibility')).status).toBe(404);
    const res = await server.request().get(`/Observation/x/$ccm-eligibility`);
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.body)).toContain('$ccm-eligibility is defined for Patient, not Observation');
  });

  test("a patient-bound token sees its own patient's eligibility, not another's", async () => {
    const other = await newPatient();
    const agent = await server.as('patient/*.rs', { patient: eligible.id as string });
    expect((await agent.get(`/Patient/${eligible.id as string}/$ccm-eligibility`)).status).toBe(200);
    expect([403, 404]).toContain((await agent.get(`/Patient/${other.id as string}/$ccm-eligibility`)).status);
  });
});

describe('the eligibility bot keeps a stored determination current', () => {
  const determination = async (patientId: string): Promise<Observation | undefined> => {
    await server.continuum.bots.idle();
    const res = await server.request().get(`/Observation/ccm-eligibility-${patientId}`);
    return res.status === 200 ? (res.body as Observation) : undefined;
  };
  const verdict = (o: Observation | undefined): string | undefined => o?.valueCodeableConcept?.coding?.[0]?.code;

  test('conditions added, resolved and deleted, and the patient dying, each re-evaluate it', async () => {
    const p = await newPatient();
    const id = p.id as string;
    const copd = await create(chronic(id, '13645005'));
    expect(verdict(await determination(id))).toBe('not-eligible');

    const afib = await create(chronic(id, '49436004'));
    const stored = await determination(id);
    expect(verdict(stored)).toBe('eligible');
    expect(stored?.component?.map((c) => c.valueCodeableConcept?.coding?.[0]?.code)).toEqual(['afib', 'copd']);
    expect(stored?.derivedFrom?.map((r) => r.reference).sort()).toEqual([`Condition/${afib.id as string}`, `Condition/${copd.id as string}`].sort());
    expect(stored?.meta?.profile).toEqual(['http://continuum-ccm.org/fhir/StructureDefinition/ccm-eligibility-determination']);

    // Searchable: eligible patients with COPD.
    const found = await server.request().get(`/Observation?code=${CCM}|ccm-eligibility&value-concept=${CCM}|eligible&component-value-concept=${CCM}|copd&subject=Patient/${id}`);
    expect((found.body as Bundle).entry?.map((e) => e.resource?.id)).toEqual([`ccm-eligibility-${id}`]);

    await server
      .request()
      .put(`/Condition/${afib.id as string}`)
      .set('Content-Type', FHIR_JSON)
      .send({ ...afib, clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'resolved' }] }, abatementDateTime: '2026-06-10' });
    const resolved = await determination(id);
    expect(verdict(resolved)).toBe('not-eligible');
    expect(resolved?.note?.[0].text).toContain('all in one category (copd)');

    const ihd = await create(chronic(id, '414545008'));
    expect(verdict(await determination(id))).toBe('eligible');
    await server.request().delete(`/Condition/${ihd.id as string}`);
    expect(verdict(await determination(id))).toBe('not-eligible');

    await create(chronic(id, '84114007'));
    expect(verdict(await determination(id))).toBe('eligible');
    const current = (await server.request().get(`/Patient/${id}`)).body as Patient;
    await server.request().put(`/Patient/${id}`).set('Content-Type', FHIR_JSON).send({ ...current, deceasedDateTime: '2026-06-14' });
    const dead = await determination(id);
    expect(verdict(dead)).toBe('not-eligible');
    expect(dead?.note?.[0].text).toContain('The patient died on 2026-06-14.');
  });

  test('an unchanged finding adds no version; $execute re-evaluates one patient or all', async () => {
    const p = await newPatient();
    const id = p.id as string;
    await create(chronic(id, '13645005'));
    const first = await determination(id);
    const run = await server
      .request()
      .post('/Library/bot-ccm-eligibility/$execute')
      .set('Content-Type', FHIR_JSON)
      .send({ resourceType: 'Parameters', parameter: [{ name: 'patient', valueString: `Patient/${id}` }] });
    expect(run.status).toBe(200);
    expect(JSON.stringify(run.body)).toContain('unchanged');
    expect((await determination(id))?.meta?.versionId).toBe(first?.meta?.versionId);
    const all = await server.request().post('/Library/bot-ccm-eligibility/$execute').set('Content-Type', FHIR_JSON).send({ resourceType: 'Parameters' });
    expect(all.status).toBe(200);
  });
});

describe('system-level $ccm-eligibility', () => {
  /** A new patient with diabetes and asthma: eligible. */
  const eligiblePatient = async (): Promise<Patient> => {
    const p = await newPatient();
    await create(chronic(p.id as string, '44054006'));
    await create(chronic(p.id as string, '195967001'));
    return p;
  };

  test('answers counts and the eligible-but-not-enrolled list; an enrolled patient is not on it', async () => {
    const a = await eligiblePatient();
    const b = await eligiblePatient();
    // b is enrolled: an active CCM CarePlan (no guard deployed in this server).
    await create({ resourceType: 'CarePlan', status: 'active', intent: 'plan', subject: { reference: `Patient/${b.id as string}` }, category: [{ coding: [{ system: CCM, code: 'ccm' }] }] });
    const res = await server.request().get('/$ccm-eligibility');
    expect(res.status).toBe(200);
    const p = res.body as Parameters;
    const listed = param(p, 'eligibleNotEnrolled').map((x) => x.part?.find((y) => y.name === 'patient')?.valueReference?.reference);
    expect(listed).toContain(`Patient/${a.id as string}`);
    expect(listed).not.toContain(`Patient/${b.id as string}`);
    const entry = param(p, 'eligibleNotEnrolled').find((x) => x.part?.[0].valueReference?.reference === `Patient/${a.id as string}`);
    expect(entry?.part?.filter((y) => y.name === 'category').map((y) => y.valueCode)).toEqual(['asthma', 'diabetes']);
    const evaluated = param(p, 'evaluated')[0].valueInteger as number;
    const patients = (await server.request().get('/Patient?_summary=count')).body.total;
    expect(evaluated).toBe(patients);
    expect(param(p, 'eligibleCount')[0].valueInteger).toBeGreaterThanOrEqual(2);
  });

  test("a token bound to one patient evaluates only that patient (the bulk reads go through the caller's compartment)", async () => {
    const mine = await eligiblePatient();
    await eligiblePatient(); // another, not visible to the token
    const agent = await server.as('patient/*.rs', { patient: mine.id as string });
    const res = await agent.get('/$ccm-eligibility');
    expect(res.status).toBe(200);
    const p = res.body as Parameters;
    expect(param(p, 'evaluated')[0].valueInteger).toBe(1);
    expect(param(p, 'eligibleCount')[0].valueInteger).toBe(1);
    expect(param(p, 'eligibleNotEnrolled').map((x) => x.part?.[0].valueReference?.reference)).toEqual([`Patient/${mine.id as string}`]);
  });

  test('Prefer: respond-async: 202 with Content-Location, then 200 with a batch-response Bundle holding the same answer', async () => {
    const kick = await server.request().get('/$ccm-eligibility?date=2026-06-15').set('Prefer', 'respond-async');
    expect(kick.status).toBe(202);
    const status = (kick.headers['content-location'] as string).replace(/^https?:\/\/[^/]+/, '');
    expect(status).toMatch(/^\/\$async-status\/[0-9a-f-]{36}$/);
    let res = await server.request().get(status);
    for (let i = 0; res.status === 202 && i < 200; i++) {
      expect(res.headers['x-progress']).toBeDefined();
      await new Promise((r) => setTimeout(r, 50));
      res = await server.request().get(status);
    }
    expect(res.status).toBe(200);
    const bundle = res.body as Bundle;
    expect(bundle.type).toBe('batch-response');
    expect(bundle.entry?.[0].response?.status).toBe('200');
    const sync = (await server.request().get('/$ccm-eligibility?date=2026-06-15')).body as Parameters;
    expect(bundle.entry?.[0].resource).toEqual(sync);
    // Cancelling (here: forgetting) the finished request; then it is gone.
    expect((await server.request().delete(status)).status).toBe(202);
    expect((await server.request().get(status)).status).toBe(404);
  });

  test("another client cannot read a request's status", async () => {
    const kick = await server.request().get('/$ccm-eligibility').set('Prefer', 'respond-async');
    const status = (kick.headers['content-location'] as string).replace(/^https?:\/\/[^/]+/, '');
    const stranger = await server.as('system/*.rs', { clientId: 'someone-else' });
    expect((await stranger.get(status)).status).toBe(404);
    expect((await server.anonymous().get(status)).status).toBe(401);
  });
});

describe('the CCM conformance resources', () => {
  test('are served at their canonical URLs', async () => {
    for (const [type, url] of [
      ['StructureDefinition', 'http://continuum-ccm.org/fhir/StructureDefinition/ccm-careplan'],
      ['CodeSystem', CCM],
      ['ConceptMap', 'http://continuum-ccm.org/fhir/ConceptMap/chronic-category'],
      ['ValueSet', 'http://continuum-ccm.org/fhir/ValueSet/chronic-categories'],
      ['OperationDefinition', 'http://continuum-ccm.org/fhir/OperationDefinition/Patient-ccm-eligibility'],
      ['SearchParameter', 'http://continuum-ccm.org/fhir/SearchParameter/Condition-chronic-category'],
    ]) {
      const res = await server.request().get(`/${type}?url=${encodeURIComponent(url)}`);
      expect({ type, total: (res.body as Bundle).entry?.length }).toEqual({ type, total: 1 });
    }
  });

  test('are listed in the CapabilityStatement with the CCM operations', async () => {
    const cs = (await server.request().get('/metadata')).body;
    const resource = (type: string): { supportedProfile?: string[]; operation?: { name: string; definition: string }[] } => cs.rest[0].resource.find((r: { type: string }) => r.type === type);
    expect(resource('CarePlan').supportedProfile).toContain('http://continuum-ccm.org/fhir/StructureDefinition/ccm-careplan');
    expect(resource('Observation').supportedProfile).toEqual(
      expect.arrayContaining(['http://continuum-ccm.org/fhir/StructureDefinition/ccm-odl', 'http://continuum-ccm.org/fhir/StructureDefinition/ccm-eligibility-determination']),
    );
    expect(resource('Patient').operation?.map((o) => o.name)).toEqual(expect.arrayContaining(['ccm-eligibility', 'ccm-care-plan']));
    expect(resource('CarePlan').operation?.map((o) => o.name)).toEqual(expect.arrayContaining(['ccm-completeness', 'ccm-enrollment-check']));
    expect(resource('Observation').operation?.map((o) => o.name)).not.toContain('ccm-eligibility');
    expect(cs.rest[0].operation.map((o: { name: string }) => o.name)).toContain('ccm-eligibility');
  });

  test('a restart stores no new versions of them', async () => {
    const before = (await server.request().get('/StructureDefinition/ccm-careplan')).body.meta.versionId;
    const again = await startTestServer({ seedConformance: true });
    try {
      expect((await again.request().get('/CodeSystem/ccm')).status).toBe(200);
    } finally {
      await again.close();
    }
    expect((await server.request().get('/StructureDefinition/ccm-careplan')).body.meta.versionId).toBe(before);
  });
});
