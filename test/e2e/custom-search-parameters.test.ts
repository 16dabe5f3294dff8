import type { Patient, SearchParameter } from '@medplum/fhirtypes';
import { FHIR_JSON, startTestServer, type TestServer } from '../support/server';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(() => server.close());

const COLOR = 'http://continuum.test/fhir/StructureDefinition/favourite-colour';
const colourParam: SearchParameter = {
  resourceType: 'SearchParameter',
  url: 'http://continuum.test/fhir/SearchParameter/Patient-favourite-colour',
  name: 'favourite-colour',
  status: 'active',
  description: 'A test parameter on an extension',
  code: 'favourite-colour',
  base: ['Patient'],
  type: 'token',
  expression: `Patient.extension('${COLOR}').value`,
};
const withColour = (colour: string): Patient => ({ resourceType: 'Patient', extension: [{ url: COLOR, valueCode: colour }] });
const post = (body: unknown, path = '/Patient') => server.request().post(path).set('Content-Type', FHIR_JSON).send(body as object);
const ids = (res: { body: { entry?: { resource: { id: string } }[] } }): string[] => (res.body.entry ?? []).map((e) => e.resource.id).sort();

describe('SearchParameters created through the API', () => {
  test('are unknown before, used for new writes after, and reach older resources with $reindex', async () => {
    const before = await post(withColour('teal'));
    const unknown = await server.request().get('/Patient?favourite-colour=teal');
    expect(unknown.status).toBe(400);
    expect(unknown.body.issue[0].diagnostics).toContain("Unknown search parameter 'favourite-colour'");

    expect((await post(colourParam, '/SearchParameter')).status).toBe(201);
    const after = await post(withColour('teal'));
    const found = await server.request().get('/Patient?favourite-colour=teal');
    expect(found.status).toBe(200);
    expect(ids(found)).toEqual([after.body.id]);

    const reindex = await server.request().post('/Patient/$reindex').set('Content-Type', FHIR_JSON).send({ resourceType: 'Parameters' });
    expect(reindex.status).toBe(200);
    expect(reindex.body.parameter[0].valueInteger).toBeGreaterThanOrEqual(2);
    const all = await server.request().get('/Patient?favourite-colour=teal');
    expect(ids(all)).toEqual([before.body.id, after.body.id].sort());
  });

  test('a SearchParameter whose expression cannot be used is refused with a 422, and not stored', async () => {
    const bad = { ...colourParam, url: 'http://continuum.test/fhir/SearchParameter/bad', code: 'bad', expression: 'Patient.frobnicate(' };
    const res = await post(bad, '/SearchParameter');
    expect(res.status).toBe(422);
    expect(res.body.issue[0].diagnostics).toContain('cannot be used for search');
    const stored = await server.request().get('/SearchParameter?url=http://continuum.test/fhir/SearchParameter/bad');
    expect(stored.body.entry ?? []).toEqual([]);
  });

  test('retiring a SearchParameter stops it being searchable', async () => {
    const created = await post({ ...colourParam, url: 'http://continuum.test/fhir/SearchParameter/tmp', code: 'tmp-colour' }, '/SearchParameter');
    expect((await server.request().get('/Patient?tmp-colour=x')).status).toBe(200);
    await server.request().put(`/SearchParameter/${created.body.id}`).set('Content-Type', FHIR_JSON).send({ ...created.body, status: 'retired' });
    expect((await server.request().get('/Patient?tmp-colour=x')).status).toBe(400);
  });
});

describe('stored copies of R4 SearchParameters', () => {
  test('a draft with a built-in url does not remove the built-in parameter, nor does deleting it', async () => {
    const builtIn = 'http://hl7.org/fhir/SearchParameter/Patient-birthdate';
    const draft = await post({ ...colourParam, url: builtIn, code: 'birthdate', status: 'draft', type: 'date', expression: 'Patient.birthDate' }, '/SearchParameter');
    expect(draft.status).toBe(201);
    expect((await server.request().get('/Patient?birthdate=1950')).status).toBe(200);
    await server.request().delete(`/SearchParameter/${draft.body.id}`);
    expect((await server.request().get('/Patient?birthdate=1950')).status).toBe(200);
  });

  test('an active copy with a built-in url leaves the built-in definition in charge', async () => {
    const builtIn = 'http://hl7.org/fhir/SearchParameter/individual-gender';
    const copy = await post({ ...colourParam, url: builtIn, code: 'gender', base: ['Patient'], type: 'token', expression: 'Patient.gender' }, '/SearchParameter');
    expect(copy.status).toBe(201);
    await server.request().delete(`/SearchParameter/${copy.body.id}`);
    expect((await server.request().get('/Patient?gender=female')).status).toBe(200);
  });
});
