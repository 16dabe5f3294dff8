import type { Patient } from '@medplum/fhirtypes';
import { patient } from '../support/builders';
import { BASE_URL, FHIR_JSON, startTestServer, type TestServer } from '../support/server';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(() => server.close());

async function createPatient(p: Patient = patient()): Promise<Patient> {
  const res = await server.request().post('/Patient').set('Content-Type', FHIR_JSON).send(p);
  expect(res.status).toBe(201);
  return res.body as Patient;
}

describe('create and read', () => {
  test('create assigns a UUID, version 1, Location, ETag and Last-Modified', async () => {
    const res = await server.request().post('/Patient').set('Content-Type', FHIR_JSON).send(patient({ id: 'ignored' }));
    expect(res.status).toBe(201);
    expect(res.body.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.body.meta.versionId).toBe('1');
    expect(res.headers.etag).toBe('W/"1"');
    expect(res.headers.location).toBe(`${BASE_URL}/Patient/${res.body.id}/_history/1`);
    expect(new Date(res.headers['last-modified']).getTime()).not.toBeNaN();
    expect(res.headers['content-type']).toBe('application/fhir+json; charset=utf-8');
  });

  test('read returns the stored resource with its ETag', async () => {
    const created = await createPatient();
    const res = await server.request().get(`/Patient/${created.id}`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual(created);
    expect(res.headers.etag).toBe('W/"1"');
  });

  test('read of an unknown id is 404 with an OperationOutcome', async () => {
    const res = await server.request().get('/Patient/does-not-exist');
    expect(res.status).toBe(404);
    expect(res.body.resourceType).toBe('OperationOutcome');
    expect(res.body.issue[0].diagnostics).toContain('Patient/does-not-exist');
  });
});

describe('update, versions and delete', () => {
  test('update makes version 2; vread returns both versions', async () => {
    const created = await createPatient();
    const res = await server
      .request()
      .put(`/Patient/${created.id}`)
      .set('Content-Type', FHIR_JSON)
      .send({ ...created, gender: 'other' });
    expect(res.status).toBe(200);
    expect(res.body.meta.versionId).toBe('2');
    const v1 = await server.request().get(`/Patient/${created.id}/_history/1`);
    expect(v1.body.gender).toBe('female');
    const v2 = await server.request().get(`/Patient/${created.id}/_history/2`);
    expect(v2.body.gender).toBe('other');
  });

  test('update-as-create with a client id answers 201', async () => {
    const res = await server.request().put('/Patient/client-chosen-1').set('Content-Type', FHIR_JSON).send(patient({ id: 'client-chosen-1' }));
    expect(res.status).toBe(201);
    expect(res.body.meta.versionId).toBe('1');
  });

  test('If-Match with a stale version is 412 and stores nothing', async () => {
    const created = await createPatient();
    const res = await server.request().put(`/Patient/${created.id}`).set('Content-Type', FHIR_JSON).set('If-Match', 'W/"7"').send(created);
    expect(res.status).toBe(412);
    expect(res.body.resourceType).toBe('OperationOutcome');
    const read = await server.request().get(`/Patient/${created.id}`);
    expect(read.body.meta.versionId).toBe('1');
  });

  test('concurrent updates with the same If-Match: exactly one succeeds', async () => {
    const created = await createPatient();
    const attempts = await Promise.all(
      [1, 2, 3, 4, 5].map((n) =>
        server
          .request()
          .put(`/Patient/${created.id}`)
          .set('Content-Type', FHIR_JSON)
          .set('If-Match', 'W/"1"')
          .send({ ...created, birthDate: `196${n}-01-01` }),
      ),
    );
    const statuses = attempts.map((r) => r.status).sort();
    expect(statuses).toEqual([200, 412, 412, 412, 412]);
    const history = await server.request().get(`/Patient/${created.id}/_history`);
    expect(history.body.total).toBe(2);
  });

  test('delete is a version: read then answers 410, history keeps it', async () => {
    const created = await createPatient();
    const del = await server.request().delete(`/Patient/${created.id}`);
    expect(del.status).toBe(204);
    const read = await server.request().get(`/Patient/${created.id}`);
    expect(read.status).toBe(410);
    expect(read.body.resourceType).toBe('OperationOutcome');
    const history = await server.request().get(`/Patient/${created.id}/_history`);
    expect(history.body.entry.map((e: { request: { method: string } }) => e.request.method)).toEqual(['DELETE', 'POST']);
    expect((await server.request().get(`/Patient/${created.id}/_history/1`)).status).toBe(200);
  });
});
