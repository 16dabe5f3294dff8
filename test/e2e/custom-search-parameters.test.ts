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
