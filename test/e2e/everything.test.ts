/**
 * Patient/$everything (FHIR R4 patient-operation-everything): the Patient, its compartment, and the
 * resources outside any compartment that those reference (as includes); `_type`, `_since`,
 * `_count` with cursor paging; and what access tokens bounded to one patient get.
 *
 * The store holds a shared Practitioner, Organization and Medication, and Patients A and B, each
 * with two Observations, a Condition, an Encounter and a MedicationRequest that reference them.
 * B's Encounter also names a Location nobody of A's references, and one Practitioner is referenced
 * by nobody: neither may come back for A.
 */
import type { Bundle, BundleEntry, Resource } from '@medplum/fhirtypes';
import type supertest from 'supertest';
import { BASE_URL, FHIR_JSON, startTestServer, type TestServer } from '../support/server';

jest.setTimeout(60_000);

interface PatientRecord {
  patient: string;
  /** Type/id of everything in the patient's compartment, the Patient included. */
  compartment: string[];
}

let server: TestServer;
let practitioner: string;
let organization: string;
let medication: string;
let location: string;
let stranger: string;
let a: PatientRecord;
let b: PatientRecord;

const key = (r: { resourceType: string; id?: string }): string => `${r.resourceType}/${r.id as string}`;
const sorted = (xs: Iterable<string>): string[] => [...xs].sort();

async function create<T extends Resource>(resource: T): Promise<T & { id: string }> {
  const res = await server.request().post(`/${resource.resourceType}`).set('Content-Type', FHIR_JSON).send(resource);
  if (res.status !== 201) {
    throw new Error(`Set-up: creating ${resource.resourceType} answered ${res.status}: ${JSON.stringify(res.body)}`);
  }
  return res.body as T & { id: string };
}

async function buildRecord(family: string, extra: { location?: string } = {}): Promise<PatientRecord> {
  const patient = await create({
    resourceType: 'Patient',
    name: [{ family, given: ['Eve'] }],
    generalPractitioner: [{ reference: `Practitioner/${practitioner}` }],
    managingOrganization: { reference: `Organization/${organization}` },
  });
  const subject = { reference: `Patient/${patient.id}` };
  const encounter = await create({
    resourceType: 'Encounter',
    status: 'finished',
    class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' },
    subject,
    participant: [{ individual: { reference: `Practitioner/${practitioner}` } }],
    serviceProvider: { reference: `Organization/${organization}` },
    ...(extra.location ? { location: [{ location: { reference: `Location/${extra.location}` } }] } : {}),
  });
  const observations = [];
  for (const code of ['8867-4', '29463-7']) {
    observations.push(
      await create({
        resourceType: 'Observation',
        status: 'final',
        code: { coding: [{ system: 'http://loinc.org', code }] },
        subject,
        encounter: { reference: `Encounter/${encounter.id}` },
        performer: [{ reference: `Practitioner/${practitioner}` }],
        valueQuantity: { value: 70, unit: 'kg', system: 'http://unitsofmeasure.org', code: 'kg' },
      }),
    );
  }
  const condition = await create({
    resourceType: 'Condition',
    subject,
    asserter: { reference: `Practitioner/${practitioner}` },
    code: { coding: [{ system: 'http://snomed.info/sct', code: '44054006' }] },
  });
  const medicationRequest = await create({
    resourceType: 'MedicationRequest',
    status: 'active',
    intent: 'order',
    medicationReference: { reference: `Medication/${medication}` },
    subject,
    requester: { reference: `Practitioner/${practitioner}` },
  });
  return { patient: patient.id, compartment: [patient, encounter, ...observations, condition, medicationRequest].map(key) };
}

beforeAll(async () => {
  server = await startTestServer();
  practitioner = (await create({ resourceType: 'Practitioner', name: [{ family: 'Shared' }] })).id;
  stranger = (await create({ resourceType: 'Practitioner', name: [{ family: 'Unreferenced' }] })).id;
  organization = (await create({ resourceType: 'Organization', name: 'Shared Clinic' })).id;
  medication = (await create({ resourceType: 'Medication', code: { coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '860975' }] } })).id;
  location = (await create({ resourceType: 'Location', name: 'Only B went here' })).id;
  a = await buildRecord('Everythinga');
  b = await buildRecord('Everythingb', { location });
  // A third Observation of A's, referring to B's record (an Observation and Patient B): references
  // into another patient's compartment are never followed.
  const bObservation = b.compartment.find((k) => k.startsWith('Observation/')) as string;
  const crossing = await create({
    resourceType: 'Observation',
    status: 'final',
    code: { coding: [{ system: 'http://loinc.org', code: '2345-7' }] },
    subject: { reference: `Patient/${a.patient}` },
    focus: [{ reference: `Patient/${b.patient}` }],
    derivedFrom: [{ reference: bObservation }],
  });
  a.compartment.push(key(crossing));
});

afterAll(async () => {
  await server?.close();
});

const shared = (): string[] => [`Practitioner/${practitioner}`, `Organization/${organization}`, `Medication/${medication}`];

function entries(bundle: Bundle, mode: 'match' | 'include'): string[] {
  return (bundle.entry ?? []).filter((e: BundleEntry) => e.search?.mode === mode).map((e) => key(e.resource as Resource));
}

const linkOf = (bundle: Bundle, relation: string): string | undefined => bundle.link?.find((l) => l.relation === relation)?.url;

/** GET a link of a Bundle (absolute, on the test base URL). */
const follow = (agent: supertest.Agent, url: string): supertest.Test => agent.get(url.slice(BASE_URL.length));

async function everything(path: string, agent: supertest.Agent = server.request()): Promise<Bundle> {
  const res = await agent.get(path);
  expect(res.status).toBe(200);
  return res.body as Bundle;
}

/** Walks every page from `path`; returns the pages. */
async function walk(path: string, agent: supertest.Agent = server.request()): Promise<Bundle[]> {
  const pages: Bundle[] = [await everything(path, agent)];
  for (let next = linkOf(pages[0], 'next'); next !== undefined; next = linkOf(pages[pages.length - 1], 'next')) {
    const res = await follow(agent, next);
    expect(res.status).toBe(200);
    pages.push(res.body as Bundle);
    expect(pages.length).toBeLessThan(50);
  }
  return pages;
}

describe('Patient/$everything', () => {
  it('returns the Patient, its compartment and the shared resources they reference, once each, and nothing of B', async () => {
    const bundle = await everything(`/Patient/${a.patient}/$everything`);
    expect(bundle.resourceType).toBe('Bundle');
    expect(bundle.type).toBe('searchset');
    expect(bundle.entry?.[0].resource).toMatchObject({ resourceType: 'Patient', id: a.patient });
    expect(bundle.entry?.[0].fullUrl).toBe(`${BASE_URL}/Patient/${a.patient}`);
    expect(sorted(entries(bundle, 'match'))).toEqual(sorted(a.compartment));
    expect(entries(bundle, 'include').sort()).toEqual(sorted(shared()));
    const all = (bundle.entry ?? []).map((e) => key(e.resource as Resource));
    expect(new Set(all).size).toBe(all.length);
    for (const k of [...b.compartment, `Location/${location}`, `Practitioner/${stranger}`]) {
      expect(all).not.toContain(k);
    }
    expect(JSON.stringify(bundle)).not.toContain('Everythingb');
    expect(bundle.total).toBe(a.compartment.length);
    expect(linkOf(bundle, 'self')).toBe(`${BASE_URL}/Patient/${a.patient}/$everything?_count=20`);
    expect(linkOf(bundle, 'next')).toBeUndefined();

    const forB = await everything(`/Patient/${b.patient}/$everything`);
    expect(sorted(entries(forB, 'match'))).toEqual(sorted(b.compartment));
    expect(sorted(entries(forB, 'include'))).toEqual(sorted([...shared(), `Location/${location}`]));
  });

  it('restricts the types with _type (the Patient only when listed, includes only of listed types)', async () => {
    const onlyObsCond = await everything(`/Patient/${a.patient}/$everything?_type=Observation,Condition`);
    expect(sorted(entries(onlyObsCond, 'match'))).toEqual(sorted(a.compartment.filter((k) => /^(Observation|Condition)\//.test(k))));
    expect(entries(onlyObsCond, 'include')).toEqual([]);
    expect(linkOf(onlyObsCond, 'self')).toContain('_type=Observation%2CCondition');

    const withPatient = await everything(`/Patient/${a.patient}/$everything?_type=Patient,MedicationRequest,Medication`);
    expect(sorted(entries(withPatient, 'match'))).toEqual(sorted(a.compartment.filter((k) => /^(Patient|MedicationRequest)\//.test(k))));
    expect(entries(withPatient, 'include')).toEqual([`Medication/${medication}`]);

    const bad = await server.request().get(`/Patient/${a.patient}/$everything?_type=Observation,Nonsense`);
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toContain('Nonsense');
  });

  it('restricts to resources changed since _since', async () => {
    const c = await buildRecord('Everythingc');
    await new Promise((r) => setTimeout(r, 30));
    const since = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 30));
    const obsId = c.compartment.find((k) => k.startsWith('Observation/'))?.split('/')[1] as string;
    const current = await server.request().get(`/Observation/${obsId}`);
    const updated = await server.request().put(`/Observation/${obsId}`).set('Content-Type', FHIR_JSON).send({ ...current.body, status: 'amended' });
    expect(updated.status).toBe(200);
    const added = await create({ resourceType: 'Condition', subject: { reference: `Patient/${c.patient}` }, code: { text: 'new' } });

    const bundle = await everything(`/Patient/${c.patient}/$everything?_since=${encodeURIComponent(since)}`);
    expect(sorted(entries(bundle, 'match'))).toEqual(sorted([`Observation/${obsId}`, key(added)]));
    // The shared resources did not change since then either.
    expect(entries(bundle, 'include')).toEqual([]);
    expect(linkOf(bundle, 'self')).toContain(`_since=${encodeURIComponent(since)}`);

    const everythingOfC = await everything(`/Patient/${c.patient}/$everything?_since=2000-01-01`);
    expect(entries(everythingOfC, 'match')).toHaveLength(c.compartment.length + 1);

    const bad = await server.request().get(`/Patient/${c.patient}/$everything?_since=yesterday`);
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toContain('_since');
  });

  it.each([1, 2, 3, 5, 7, 8])('pages with _count=%i, every resource exactly once, includes on the page of their referrers', async (count) => {
    const pages = await walk(`/Patient/${a.patient}/$everything?_count=${count}`);
    const expected = a.compartment.length; // 7
    expect(pages).toHaveLength(Math.ceil(expected / count));
    const matches = pages.flatMap((p) => entries(p, 'match'));
    expect(matches).toHaveLength(expected);
    expect(sorted(matches)).toEqual(sorted(a.compartment));
    expect(matches[0]).toBe(`Patient/${a.patient}`);
    expect(sorted(new Set(pages.flatMap((p) => entries(p, 'include'))))).toEqual(sorted(shared()));
    for (const page of pages) {
      expect(entries(page, 'match').length).toBeLessThanOrEqual(count);
      expect(entries(page, 'match').length).toBeGreaterThan(0);
      // Each include is referenced by a match on the same page.
      const text = JSON.stringify((page.entry ?? []).filter((e) => e.search?.mode === 'match'));
      for (const inc of entries(page, 'include')) {
        expect(text).toContain(`"reference":"${inc}"`);
      }
      const all = (page.entry ?? []).map((e) => key(e.resource as Resource));
      expect(new Set(all).size).toBe(all.length);
    }
    if (pages.length > 1) {
      expect(pages.every((p) => p.total === undefined)).toBe(true);
      expect(linkOf(pages[1], 'self')).toContain('_cursor=');
    } else {
      expect(pages[0].total).toBe(expected);
    }
    expect(linkOf(pages[pages.length - 1], 'next')).toBeUndefined();
  });

  it('pages with _type and _count together', async () => {
    const pages = await walk(`/Patient/${a.patient}/$everything?_type=Observation,Condition,Encounter&_count=2`);
    expect(pages).toHaveLength(3);
    expect(sorted(pages.flatMap((p) => entries(p, 'match')))).toEqual(sorted(a.compartment.filter((k) => /^(Observation|Condition|Encounter)\//.test(k))));
    expect(linkOf(pages[0], 'next')).toContain('_type=Observation%2CCondition%2CEncounter');
  });

  it('counts with _count=0', async () => {
    const bundle = await everything(`/Patient/${a.patient}/$everything?_count=0`);
    expect(bundle.total).toBe(a.compartment.length);
    expect(bundle.entry ?? []).toEqual([]);
  });

  it('takes its parameters in a Parameters body on POST', async () => {
    const res = await server
      .request()
      .post(`/Patient/${a.patient}/$everything`)
      .set('Content-Type', FHIR_JSON)
      .send({ resourceType: 'Parameters', parameter: [{ name: '_type', valueString: 'Condition' }, { name: '_count', valueInteger: 10 }] });
    expect(res.status).toBe(200);
    expect(entries(res.body as Bundle, 'match')).toEqual(a.compartment.filter((k) => k.startsWith('Condition/')));
    const noBody = await server.request().post(`/Patient/${a.patient}/$everything`);
    expect(noBody.status).toBe(200);
    expect(sorted(entries(noBody.body as Bundle, 'match'))).toEqual(sorted(a.compartment));
    const unknown = await server
      .request()
      .post(`/Patient/${a.patient}/$everything`)
      .set('Content-Type', FHIR_JSON)
      .send({ resourceType: 'Parameters', parameter: [{ name: 'start', valueDate: '2020-01-01' }] });
    expect(unknown.status).toBe(400);
    expect(JSON.stringify(unknown.body)).toContain("'start'");
  });

  it('gives a patient/*.rs token its own record and 404 for another patient', async () => {
    const asA = await server.as('patient/*.rs', { patient: a.patient });
    const own = await everything(`/Patient/${a.patient}/$everything`, asA);
    expect(sorted(entries(own, 'match'))).toEqual(sorted(a.compartment));
    expect(sorted(entries(own, 'include'))).toEqual(sorted(shared()));
    expect(JSON.stringify(own)).not.toContain('Everythingb');
    const pages = await walk(`/Patient/${a.patient}/$everything?_count=2`, asA);
    expect(sorted(pages.flatMap((p) => entries(p, 'match')))).toEqual(sorted(a.compartment));

    const other = await asA.get(`/Patient/${b.patient}/$everything`);
    expect(other.status).toBe(404);
    expect(other.body.resourceType).toBe('OperationOutcome');
    expect(JSON.stringify(other.body)).not.toContain('Everythingb');
    // Same answer as for an id that does not exist.
    expect((await asA.get('/Patient/no-such-patient/$everything')).status).toBe(404);
  });

  it('gives a token without Observation scopes only what its scopes show (here: the Patient alone)', async () => {
    // patient/Patient.rs: the operation is allowed (read of Patient); compartment searches of other
    // types and the shared resources are outside the grant, so the guarded store shows none of them.
    const onlyPatient = await server.as('patient/Patient.rs', { patient: a.patient });
    const bundle = await everything(`/Patient/${a.patient}/$everything`, onlyPatient);
    expect(entries(bundle, 'match')).toEqual([`Patient/${a.patient}`]);
    expect(entries(bundle, 'include')).toEqual([]);
    expect(bundle.total).toBe(1);

    // Observations and Conditions only, no Patient read: the operation needs read on Patient.
    const noPatient = await server.as('patient/Observation.rs patient/Condition.rs', { patient: a.patient });
    const refused = await noPatient.get(`/Patient/${a.patient}/$everything`);
    expect(refused.status).toBe(403);
    expect(refused.body.resourceType).toBe('OperationOutcome');

    // Patient and Observation: the Patient and its Observations, nothing else.
    const someTypes = await server.as('patient/Patient.rs patient/Observation.rs', { patient: a.patient });
    const partial = await everything(`/Patient/${a.patient}/$everything`, someTypes);
    expect(sorted(entries(partial, 'match'))).toEqual(sorted(a.compartment.filter((k) => /^(Patient|Observation)\//.test(k))));
    expect(entries(partial, 'include')).toEqual([]);
  });

  it('answers 404 for an unknown patient, 400 for other types and unknown parameters or cursors', async () => {
    const unknown = await server.request().get('/Patient/unknown/$everything');
    expect(unknown.status).toBe(404);
    expect(unknown.body.resourceType).toBe('OperationOutcome');

    const observation = a.compartment.find((k) => k.startsWith('Observation/')) as string;
    for (const path of [`/${observation}/$everything`, '/Observation/x/$everything']) {
      const res = await server.request().get(path);
      expect(res.status).toBe(400);
      expect(res.body.resourceType).toBe('OperationOutcome');
      expect(JSON.stringify(res.body)).toContain('Observation');
    }
    expect((await server.request().get('/Nonsense/x/$everything')).status).toBe(404);

    const param = await server.request().get(`/Patient/${a.patient}/$everything?start=2020-01-01&foo=1`);
    expect(param.status).toBe(400);
    expect(JSON.stringify(param.body)).toContain("'start', 'foo'");

    const cursor = await server.request().get(`/Patient/${a.patient}/$everything?_cursor=garbage`);
    expect(cursor.status).toBe(400);
    expect(JSON.stringify(cursor.body)).toContain('_cursor');

    // A cursor issued for other _type values does not fit.
    const page = await everything(`/Patient/${a.patient}/$everything?_count=1`);
    const next = new URL(linkOf(page, 'next') as string).searchParams.get('_cursor') as string;
    const mismatch = await server.request().get(`/Patient/${a.patient}/$everything?_type=Observation&_cursor=${next}`);
    expect(mismatch.status).toBe(400);
  });

  it('gives a deleted patient 410, as a read does', async () => {
    const gone = await create({ resourceType: 'Patient', name: [{ family: 'Deleted' }] });
    expect((await server.request().delete(`/Patient/${gone.id}`)).status).toBe(204);
    expect((await server.request().get(`/Patient/${gone.id}/$everything`)).status).toBe(410);
  });
});
