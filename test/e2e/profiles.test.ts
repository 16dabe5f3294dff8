import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Patient, StructureDefinition } from '@medplum/fhirtypes';
import { FHIR_JSON, startTestServer, type TestServer } from '../support/server';

const PROFILES = join(__dirname, '../../fixtures/profiles');
const CCM_PATIENT = 'http://continuum.example/fhir/StructureDefinition/ccm-patient';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ profileDirs: [PROFILES] });
});
afterAll(() => server.close());

const conforming = (): Patient => ({
  resourceType: 'Patient',
  meta: { profile: [CCM_PATIENT] },
  identifier: [{ system: 'http://continuum.example/fhir/sid/mrn', value: 'MRN-1' }],
  name: [{ use: 'official', family: 'Rivera', given: ['Ana'] }],
  gender: 'female',
  birthDate: '1948-07-01',
  telecom: [{ system: 'phone', value: '555-0100' }],
});

describe('writes are validated against the profiles they claim', () => {
  test('a conforming resource is stored', async () => {
    const res = await server.request().post('/Patient').set('Content-Type', FHIR_JSON).send(conforming());
    expect(res.status).toBe(201);
  });

  test('a resource breaking its profile is a 422 naming the element and the profile, and nothing is stored', async () => {
    const before = (await server.request().get('/Patient/_history')).body.total;
    const bad = { ...conforming(), birthDate: undefined, gender: 'male' as const };
    const res = await server.request().post('/Patient').set('Content-Type', FHIR_JSON).send(bad);
    expect(res.status).toBe(422);
    const expressions = res.body.issue.filter((i: { severity: string }) => i.severity === 'error').map((i: { expression: string[] }) => i.expression[0]);
    expect(expressions).toEqual(expect.arrayContaining(['Patient.birthDate', 'Patient.gender']));
    expect(JSON.stringify(res.body)).toContain(CCM_PATIENT);
    expect((await server.request().get('/Patient/_history')).body.total).toBe(before);
  });

  test('a profile the server does not know is ignored', async () => {
    const res = await server
      .request()
      .post('/Patient')
      .set('Content-Type', FHIR_JSON)
      .send({ resourceType: 'Patient', meta: { profile: ['http://example.org/unknown-profile'] } });
    expect(res.status).toBe(201);
  });

  test('$validate with a profile parameter checks against it without storing', async () => {
    const res = await server
      .request()
      .post(`/Patient/$validate?profile=${encodeURIComponent(CCM_PATIENT)}`)
      .set('Content-Type', FHIR_JSON)
      .send({ resourceType: 'Patient', gender: 'female' });
    expect(res.status).toBe(200);
    expect(res.body.issue.some((i: { severity: string; expression?: string[] }) => i.severity === 'error' && i.expression?.[0] === 'Patient.birthDate')).toBe(true);
  });

  test('a StructureDefinition stored through the API is used for resources claiming it', async () => {
    const sd = JSON.parse(readFileSync(join(PROFILES, 'StructureDefinition-ccm-patient.json'), 'utf8')) as StructureDefinition;
    const url = 'http://continuum.example/fhir/StructureDefinition/stored-patient';
    const stored = { ...sd, id: undefined, url, name: 'StoredPatient' };
    const created = await server.request().post('/StructureDefinition').set('Content-Type', FHIR_JSON).send(stored);
    expect(created.status).toBe(201);
    const bad = await server
      .request()
      .post('/Patient')
      .set('Content-Type', FHIR_JSON)
      .send({ ...conforming(), meta: { profile: [url] }, birthDate: undefined });
    expect(bad.status).toBe(422);
    expect(bad.body.issue.some((i: { expression?: string[] }) => i.expression?.[0] === 'Patient.birthDate')).toBe(true);
    const good = await server.request().post('/Patient').set('Content-Type', FHIR_JSON).send({ ...conforming(), meta: { profile: [url] } });
    expect(good.status).toBe(201);
  });
});
