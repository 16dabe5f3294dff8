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
  test('create assigns a time-ordered UUID (version 7), version 1, Location, ETag and Last-Modified', async () => {
    const res = await server.request().post('/Patient').set('Content-Type', FHIR_JSON).send(patient({ id: 'ignored' }));
    expect(res.status).toBe(201);
    expect(res.body.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    // the id carries the millisecond it was assigned, which is when version 1 was written
    expect(Math.abs(parseInt(res.body.id.replace(/-/g, '').slice(0, 12), 16) - Date.parse(res.body.meta.lastUpdated))).toBeLessThan(5_000);
    const next = await createPatient();
    expect(next.id! > res.body.id).toBe(true);
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

describe('conditional read and create', () => {
  test('If-None-Match with the current version is 304; with an old one, 200', async () => {
    const created = await createPatient();
    const same = await server.request().get(`/Patient/${created.id}`).set('If-None-Match', 'W/"1"');
    expect(same.status).toBe(304);
    await server.request().put(`/Patient/${created.id}`).set('Content-Type', FHIR_JSON).send(created);
    const changed = await server.request().get(`/Patient/${created.id}`).set('If-None-Match', 'W/"1"');
    expect(changed.status).toBe(200);
    expect(changed.body.meta.versionId).toBe('2');
  });

  test('If-None-Exist: no match creates, one match returns the existing resource, two matches are 412', async () => {
    const identifier = [{ system: 'urn:test:mrn', value: 'MRN-42' }];
    const first = await server.request().post('/Patient').set('Content-Type', FHIR_JSON).set('If-None-Exist', 'identifier=urn:test:mrn|MRN-42').send(patient({ identifier }));
    expect(first.status).toBe(201);
    const again = await server.request().post('/Patient').set('Content-Type', FHIR_JSON).set('If-None-Exist', 'identifier=urn:test:mrn|MRN-42').send(patient({ identifier }));
    expect(again.status).toBe(200);
    expect(again.body.id).toBe(first.body.id);
    await createPatient(patient({ identifier }));
    const ambiguous = await server.request().post('/Patient').set('Content-Type', FHIR_JSON).set('If-None-Exist', 'identifier=urn:test:mrn|MRN-42').send(patient({ identifier }));
    expect(ambiguous.status).toBe(412);
    expect(ambiguous.body.issue[0].diagnostics).toContain('matched 2');
  });

  test('If-None-Exist with an unsupported parameter is a 400 naming it', async () => {
    const res = await server.request().post('/Patient').set('Content-Type', FHIR_JSON).set('If-None-Exist', 'nonsense=1').send(patient());
    expect(res.status).toBe(400);
    expect(res.body.issue[0].diagnostics).toContain("'nonsense'");
  });
});

describe('history', () => {
  test('type history pages newest first with next links that neither skip nor repeat while others write', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await server.request().post('/Observation').set('Content-Type', FHIR_JSON).send({
        resourceType: 'Observation',
        status: 'final',
        code: { text: `obs ${i}` },
      });
      ids.push(res.body.id);
    }
    const page1 = await server.request().get('/Observation/_history?_count=2');
    expect(page1.status).toBe(200);
    expect(page1.body.type).toBe('history');
    expect(page1.body.total).toBe(5);
    expect(page1.body.entry.map((e: { resource: { id: string } }) => e.resource.id)).toEqual([ids[4], ids[3]]);
    // A write between pages must not shift the next page.
    await server.request().post('/Observation').set('Content-Type', FHIR_JSON).send({ resourceType: 'Observation', status: 'final', code: { text: 'late' } });
    const next = page1.body.link.find((l: { relation: string }) => l.relation === 'next').url as string;
    expect(next.startsWith(BASE_URL + '/Observation/_history?')).toBe(true);
    const page2 = await server.request().get(next.slice(BASE_URL.length));
    expect(page2.body.entry.map((e: { resource: { id: string } }) => e.resource.id)).toEqual([ids[2], ids[1]]);
    const page3 = await server.request().get(page2.body.link.find((l: { relation: string }) => l.relation === 'next').url.slice(BASE_URL.length));
    expect(page3.body.entry.map((e: { resource: { id: string } }) => e.resource.id)).toEqual([ids[0]]);
    expect(page3.body.link.find((l: { relation: string }) => l.relation === 'next')).toBeUndefined();
  });

  test('_since limits history to later versions', async () => {
    const before = await createPatient();
    await new Promise((r) => setTimeout(r, 20));
    const since = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 20));
    await server.request().put(`/Patient/${before.id}`).set('Content-Type', FHIR_JSON).send(before);
    const res = await server.request().get(`/Patient/${before.id}/_history?_since=${since}`);
    expect(res.status).toBe(200);
    expect(res.body.entry).toHaveLength(1);
    expect(res.body.entry[0].resource.meta.versionId).toBe('2');
  });

  test('system history includes every type', async () => {
    const res = await server.request().get('/_history?_count=1000');
    const types = new Set(res.body.entry.map((e: { resource?: { resourceType: string } }) => e.resource?.resourceType));
    expect(types.has('Patient')).toBe(true);
    expect(types.has('Observation')).toBe(true);
  });
});

describe('metadata', () => {
  test('the CapabilityStatement lists the interactions the router serves', async () => {
    const res = await server.request().get('/metadata');
    expect(res.status).toBe(200);
    expect(res.body.resourceType).toBe('CapabilityStatement');
    expect(res.body.fhirVersion).toBe('4.0.1');
    const patientEntry = res.body.rest[0].resource.find((r: { type: string }) => r.type === 'Patient');
    const codes = patientEntry.interaction.map((i: { code: string }) => i.code).sort();
    expect(codes).toEqual(['create', 'delete', 'history-instance', 'history-type', 'patch', 'read', 'search-type', 'update', 'vread']);
    expect(res.body.rest[0].interaction.map((i: { code: string }) => i.code).sort()).toEqual(['batch', 'history-system', 'search-system', 'transaction']);
  });
});

describe('metadata search parameters', () => {
  test('each type lists its search parameters, including the common ones', async () => {
    const res = await server.request().get('/metadata');
    const patientEntry = res.body.rest[0].resource.find((r: { type: string }) => r.type === 'Patient');
    const names = patientEntry.searchParam.map((p: { name: string }) => p.name);
    expect(names).toEqual(expect.arrayContaining(['name', 'birthdate', 'identifier', '_id', '_lastUpdated']));
    const birthdate = patientEntry.searchParam.find((p: { name: string }) => p.name === 'birthdate');
    expect(birthdate.type).toBe('date');
    expect(res.body.rest[0].operation.map((o: { name: string }) => o.name)).toContain('reindex');
  });
});
