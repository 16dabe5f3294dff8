/**
 * FHIRPath Patch over HTTP (FHIR R4 http.html#patch, fhirpatch.html): `PATCH [type]/[id]` with a
 * Parameters body, and PATCH entries of batches and transactions carrying one.
 */
import type { Bundle, OperationOutcome, Parameters, ParametersParameter, Patient } from '@medplum/fhirtypes';
import { patient, postEntry, transactionBundle } from '../support/builders';
import { FHIR_JSON, startTestServer, type TestServer } from '../support/server';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(() => server.close());

function op(type: string, path: string, more: ParametersParameter[] = []): ParametersParameter {
  return { name: 'operation', part: [{ name: 'type', valueCode: type }, { name: 'path', valueString: path }, ...more] };
}

function patchOf(...operations: ParametersParameter[]): Parameters {
  return { resourceType: 'Parameters', parameter: operations };
}

async function put(p: Patient): Promise<Patient> {
  const res = await server.request().put(`/Patient/${p.id}`).set('Content-Type', FHIR_JSON).send(p);
  expect([200, 201]).toContain(res.status);
  return res.body as Patient;
}

async function read(id: string): Promise<Patient> {
  const res = await server.request().get(`/Patient/${id}`);
  expect(res.status).toBe(200);
  return res.body as Patient;
}

function text(oo: OperationOutcome): string {
  return (oo.issue ?? []).map((i) => i.diagnostics ?? i.details?.text ?? '').join('\n');
}

test('PATCH with a Parameters body applies the operations as a new version', async () => {
  await put(patient({ id: 'fpp-1', gender: 'female', name: [{ family: 'Old', given: ['A', 'B'] }] }));
  const res = await server
    .request()
    .patch('/Patient/fpp-1')
    .set('Content-Type', FHIR_JSON)
    .set('If-Match', 'W/"1"')
    .send(
      patchOf(
        op('replace', 'Patient.gender', [{ name: 'value', valueCode: 'male' }]),
        op('delete', 'Patient.name[0].given[0]'),
        op('add', 'Patient', [{ name: 'name', valueString: 'telecom' }, { name: 'value', valueContactPoint: { system: 'phone', value: '555-0100' } }]),
      ),
    );
  expect(res.status).toBe(200);
  expect(res.headers.etag).toBe('W/"2"');
  expect(res.body).toMatchObject({ gender: 'male', name: [{ family: 'Old', given: ['B'] }], telecom: [{ system: 'phone', value: '555-0100' }] });
  expect(await read('fpp-1')).toEqual(res.body);
});

test('a patch whose result is invalid is 422 and stores nothing', async () => {
  await put(patient({ id: 'fpp-2', gender: 'female' }));
  const res = await server
    .request()
    .patch('/Patient/fpp-2')
    .set('Content-Type', FHIR_JSON)
    .send(patchOf(op('replace', 'Patient.gender', [{ name: 'value', valueCode: 'purple' }])));
  expect(res.status).toBe(422);
  expect(res.body.resourceType).toBe('OperationOutcome');
  expect(text(res.body)).toMatch(/gender/);
  expect((await read('fpp-2')).meta?.versionId).toBe('1');
});

test('a malformed FHIRPath Patch is 400 naming the operation, and stores nothing', async () => {
  await put(patient({ id: 'fpp-3' }));
  const res = await server
    .request()
    .patch('/Patient/fpp-3')
    .set('Content-Type', FHIR_JSON)
    .send(patchOf(op('delete', 'Patient.name'), op('insert', 'Patient.identifier', [{ name: 'value', valueIdentifier: { value: 'x' } }])));
  expect(res.status).toBe(400);
  expect(text(res.body)).toMatch(/operation\[1\]: a insert operation needs 'index'/);
  expect((await read('fpp-3')).meta?.versionId).toBe('1');
});

test('a FHIR JSON body that is not Parameters is 415, and the CapabilityStatement lists both patch formats', async () => {
  await put(patient({ id: 'fpp-4' }));
  const res = await server.request().patch('/Patient/fpp-4').set('Content-Type', FHIR_JSON).send(patient({ id: 'fpp-4' }));
  expect(res.status).toBe(415);
  expect(text(res.body)).toMatch(/not a Parameters resource/);
  const cs = await server.request().get('/metadata');
  expect(cs.body.patchFormat).toEqual(['application/json-patch+json', 'application/fhir+json']);
});

test('a transaction PATCH entry with a Parameters resource is applied; a failing one rolls back the transaction', async () => {
  await put(patient({ id: 'fpp-5', gender: 'female' }));
  const ok = await server
    .request()
    .post('/')
    .set('Content-Type', FHIR_JSON)
    .send(transactionBundle([{ resource: patchOf(op('replace', 'Patient.gender', [{ name: 'value', valueCode: 'other' }])), request: { method: 'PATCH', url: 'Patient/fpp-5' } }]));
  expect(ok.status).toBe(200);
  expect((ok.body as Bundle).entry?.[0].response?.status).toMatch(/^200/);
  expect((await read('fpp-5')).gender).toBe('other');

  const total = async (): Promise<number> => (await server.request().get('/Patient?_summary=count')).body.total as number;
  const before = await total();
  const failed = await server
    .request()
    .post('/')
    .set('Content-Type', FHIR_JSON)
    .send(
      transactionBundle([
        postEntry('urn:uuid:6d2c3f9e-4c55-4b0e-9d55-1f1b2b0c7e01', patient()),
        { resource: patchOf(op('replace', 'Patient.maritalStatus', [{ name: 'value', valueCodeableConcept: { text: 'married' } }])), request: { method: 'PATCH', url: 'Patient/fpp-5' } },
      ]),
    );
  expect(failed.status).toBe(400);
  expect(text(failed.body)).toMatch(/exactly one element to replace; it selected 0/);
  expect(await total()).toBe(before);
  expect((await read('fpp-5')).meta?.versionId).toBe('2');
});

test('a patient-scoped token cannot FHIRPath-patch another patient', async () => {
  await put(patient({ id: 'fpp-6' }));
  await put(patient({ id: 'fpp-7' }));
  const asPatient = await server.as('patient/*.cruds', { patient: 'fpp-6' });
  const body = patchOf(op('replace', 'Patient.gender', [{ name: 'value', valueCode: 'male' }]));
  const own = await asPatient.patch('/Patient/fpp-6').set('Content-Type', FHIR_JSON).send(body);
  expect({ status: own.status, body: own.body }).toMatchObject({ status: 200, body: { gender: 'male' } });
  const other = await asPatient.patch('/Patient/fpp-7').set('Content-Type', FHIR_JSON).send(body);
  expect([403, 404]).toContain(other.status);
  expect((await read('fpp-7')).meta?.versionId).toBe('1');
});
