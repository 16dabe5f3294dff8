import { FHIR_JSON, startTestServer, type TestServer } from '../support/server';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(() => server.close());

const historyTotal = async (): Promise<number> => (await server.request().get('/_history')).body.total as number;

describe('$validate', () => {
  test('a valid resource gives an informational outcome and stores nothing', async () => {
    const before = await historyTotal();
    const res = await server
      .request()
      .post('/Patient/$validate')
      .set('Content-Type', FHIR_JSON)
      .send({ resourceType: 'Patient', birthDate: '1950-01-01' });
    expect(res.status).toBe(200);
    expect(res.body.resourceType).toBe('OperationOutcome');
    expect(res.body.issue).toHaveLength(1);
    expect(res.body.issue[0].severity).toBe('information');
    expect(await historyTotal()).toBe(before);
  });

  test('an invalid resource gives error issues with FHIRPath locations, still 200', async () => {
    const res = await server
      .request()
      .post('/Patient/$validate')
      .set('Content-Type', FHIR_JSON)
      .send({ resourceType: 'Patient', birthDate: 'yesterday', gender: 'robot' });
    expect(res.status).toBe(200);
    const byPath = Object.fromEntries(res.body.issue.map((i: { expression: string[]; severity: string }) => [i.expression[0], i.severity]));
    expect(byPath).toEqual({ 'Patient.birthDate': 'error', 'Patient.gender': 'error' });
  });

  test('a Parameters body with resource and mode=update checks the id against the URL', async () => {
    const res = await server
      .request()
      .post('/Patient/p1/$validate')
      .set('Content-Type', FHIR_JSON)
      .send({
        resourceType: 'Parameters',
        parameter: [
          { name: 'resource', resource: { resourceType: 'Patient', id: 'p2' } },
          { name: 'mode', valueCode: 'update' },
        ],
      });
    expect(res.status).toBe(200);
    expect(res.body.issue[0].severity).toBe('error');
    expect(res.body.issue[0].diagnostics).toContain("'p2' does not match 'p1'");
  });

  test('an unknown mode is a 400', async () => {
    const res = await server.request().post('/Patient/$validate?mode=sideways').set('Content-Type', FHIR_JSON).send({ resourceType: 'Patient' });
    expect(res.status).toBe(400);
    expect(res.body.issue[0].diagnostics).toContain('mode must be one of');
  });

  test('mode=delete reports whether the resource exists', async () => {
    const created = await server.request().post('/Patient').set('Content-Type', FHIR_JSON).send({ resourceType: 'Patient' });
    const ok = await server.request().post(`/Patient/${created.body.id}/$validate?mode=delete`).set('Content-Type', FHIR_JSON).send({ resourceType: 'Patient' });
    expect(ok.body.issue[0].severity).toBe('information');
    const missing = await server.request().post('/Patient/nope/$validate?mode=delete').set('Content-Type', FHIR_JSON).send({ resourceType: 'Patient' });
    expect(missing.body.issue[0].severity).toBe('error');
  });
});
