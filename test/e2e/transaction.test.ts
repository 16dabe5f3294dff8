/**
 * batch and transaction (FHIR R4 http.html#transaction): urn:uuid and conditional references,
 * processing order, conditional create, all-or-nothing, per-entry batch outcomes, PUT/PATCH entries.
 */
import { randomUUID } from 'node:crypto';
import type { Bundle, BundleEntry, Condition, Observation, OperationOutcome, Patient, Resource } from '@medplum/fhirtypes';
import type { Response } from 'supertest';
import { condition, observation, patient, postEntry, transactionBundle } from '../support/builders';
import { BASE_URL, FHIR_JSON, startTestServer, type TestServer } from '../support/server';

const MRN = 'http://example.org/mrn';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(() => server.close());

const urn = (): string => `urn:uuid:${randomUUID()}`;

function post(bundle: object, prefer?: string): Promise<Response> {
  const req = server.request().post('/').set('Content-Type', FHIR_JSON);
  if (prefer) {
    req.set('Prefer', prefer);
  }
  return req.send(bundle);
}

async function historyTotal(path = '_history'): Promise<number> {
  const res = await server.request().get(`/${path}?_count=1`);
  expect(res.status).toBe(200);
  return res.body.total as number;
}

async function put<T extends Resource>(resource: T): Promise<T> {
  const res = await server.request().put(`/${resource.resourceType}/${resource.id}`).set('Content-Type', FHIR_JSON).send(resource);
  expect([200, 201]).toContain(res.status);
  return res.body as T;
}

async function read<T extends Resource>(ref: string): Promise<T> {
  const res = await server.request().get(`/${ref}`);
  expect(res.status).toBe(200);
  return res.body as T;
}

/** `Patient/abc/_history/1` -> `Patient/abc`. */
function refOf(location: string | undefined): string {
  const m = /^([A-Z][A-Za-z]+\/[^/]+)\/_history\/\d+$/.exec(location ?? '');
  expect(m).not.toBeNull();
  return m![1];
}

function responses(res: Response): NonNullable<BundleEntry['response']>[] {
  return ((res.body as Bundle).entry ?? []).map((e) => e.response!);
}

function outcomeText(oo: OperationOutcome | undefined): string {
  return (oo?.issue ?? []).map((i) => i.diagnostics ?? i.details?.text ?? '').join('\n');
}

function outcomeExpressions(oo: OperationOutcome | undefined): string[] {
  return (oo?.issue ?? []).flatMap((i) => i.expression ?? []);
}

/** A failed request: status, an OperationOutcome, and the store unchanged. */
async function expectRejected(send: () => Promise<Response>, status: number): Promise<OperationOutcome> {
  const before = await historyTotal();
  const res = await send();
  expect(res.status).toBe(status);
  expect(res.body.resourceType).toBe('OperationOutcome');
  expect(await historyTotal()).toBe(before);
  return res.body as OperationOutcome;
}

function patchBinary(ops: unknown[]): Resource {
  return {
    resourceType: 'Binary',
    contentType: 'application/json-patch+json',
    data: Buffer.from(JSON.stringify(ops)).toString('base64'),
  } as Resource;
}

describe('transaction: urn:uuid references', () => {
  test('Patient, Conditions and Observations referencing urn:uuid are stored with references rewritten', async () => {
    const before = await historyTotal();
    const p = urn();
    const c1 = urn();
    const c2 = urn();
    const o1 = urn();
    const o2 = urn();
    const ext = 'http://example.org/fhir/StructureDefinition/related-patient';
    const bundle = transactionBundle([
      postEntry(
        p,
        patient({
          identifier: [{ system: MRN, value: randomUUID() }],
          text: { status: 'generated', div: `<div xmlns="http://www.w3.org/1999/xhtml"><a href="${p}">self</a></div>` },
        }),
      ),
      postEntry(c1, condition(p, '44054006', { extension: [{ url: ext, valueReference: { reference: p } }] })),
      postEntry(c2, condition(p, '38341003', { evidence: [{ detail: [{ reference: o1 }] }] })),
      postEntry(o1, observation(p, { focus: [{ reference: c1 }] })),
      postEntry(
        o2,
        observation(p, {
          code: { coding: [{ system: 'http://loinc.org', code: '85354-9', display: 'Blood pressure panel' }] },
          valueQuantity: undefined,
          hasMember: [{ reference: o1 }],
          derivedFrom: [{ reference: o1 }],
          extension: [{ url: ext, valueReference: { reference: p, display: 'the patient' } }],
        }),
      ),
    ]);
    const res = await post(bundle);
    expect(res.status).toBe(200);
    expect(res.body.resourceType).toBe('Bundle');
    expect(res.body.type).toBe('transaction-response');
    const rs = responses(res);
    expect(rs).toHaveLength(5);
    for (const r of rs) {
      expect(r.status).toMatch(/^201/);
      // server-assigned ids are UUIDv7 (time-ordered: src/fhir/ids.ts)
      expect(r.location).toMatch(/^[A-Z][A-Za-z]+\/[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\/_history\/1$/);
      expect(r.etag).toBe('W/"1"');
      expect(r.lastModified).toBeDefined();
    }
    const [pRef, c1Ref, c2Ref, o1Ref, o2Ref] = rs.map((r) => refOf(r.location));
    expect(pRef).toMatch(/^Patient\//);
    expect(c1Ref).toMatch(/^Condition\//);
    expect(o2Ref).toMatch(/^Observation\//);
    // Each response entry's fullUrl is the new resource's absolute URL.
    expect((res.body as Bundle).entry!.map((e) => e.fullUrl)).toEqual([pRef, c1Ref, c2Ref, o1Ref, o2Ref].map((r) => `${BASE_URL}/${r}`));

    const storedP = await read<Patient>(pRef);
    expect(storedP.text!.div).toContain(`href="${pRef}"`);
    const storedC1 = await read<Condition>(c1Ref);
    expect(storedC1.subject.reference).toBe(pRef);
    expect(storedC1.extension![0].valueReference!.reference).toBe(pRef);
    const storedC2 = await read<Condition>(c2Ref);
    expect(storedC2.evidence![0].detail![0].reference).toBe(o1Ref);
    const storedO1 = await read<Observation>(o1Ref);
    expect(storedO1.subject!.reference).toBe(pRef);
    expect(storedO1.focus![0].reference).toBe(c1Ref);
    const storedO2 = await read<Observation>(o2Ref);
    expect(storedO2.subject!.reference).toBe(pRef);
    expect(storedO2.hasMember![0].reference).toBe(o1Ref);
    expect(storedO2.derivedFrom![0].reference).toBe(o1Ref);
    expect(storedO2.extension![0].valueReference).toEqual({ reference: pRef, display: 'the patient' });
    for (const r of [storedP, storedC1, storedC2, storedO1, storedO2]) {
      expect(JSON.stringify(r)).not.toContain('urn:uuid:');
    }
    expect(await historyTotal()).toBe(before + 5);
  });

  test('an absolute reference to this server becomes relative', async () => {
    await put(patient({ id: 'abs-1' }));
    const res = await post(transactionBundle([postEntry(urn(), condition(`${BASE_URL}/Patient/abs-1`, '44054006'))]));
    expect(res.status).toBe(200);
    const stored = await read<Condition>(refOf(responses(res)[0].location));
    expect(stored.subject.reference).toBe('Patient/abs-1');
  });

  test('a urn:uuid reference that no entry defines fails the transaction; nothing is stored', async () => {
    const dangling = urn();
    const oo = await expectRejected(
      () => post(transactionBundle([postEntry(urn(), patient()), postEntry(urn(), condition(dangling, '44054006'))])),
      400,
    );
    expect(outcomeText(oo)).toContain(dangling);
    expect(outcomeExpressions(oo).some((e) => e.startsWith('Bundle.entry[1]'))).toBe(true);
  });

  test('the same fullUrl twice is 400 naming the second entry', async () => {
    const p = urn();
    const oo = await expectRejected(() => post(transactionBundle([postEntry(p, patient()), postEntry(p, patient())])), 400);
    expect(outcomeExpressions(oo)).toEqual(['Bundle.entry[1].fullUrl']);
  });
});

describe('transaction: processing order (DELETE, POST, PUT/PATCH, GET)', () => {
  test('responses keep the entry order; a GET listed first sees the PUT listed after it', async () => {
    await put(patient({ id: 'ord-2' }));
    const res = await post(
      transactionBundle([
        { request: { method: 'GET', url: 'Patient/ord-1' } },
        { resource: patient({ id: 'ord-1', gender: 'other' }), request: { method: 'PUT', url: 'Patient/ord-1' } },
        { request: { method: 'DELETE', url: 'Patient/ord-2' } },
        postEntry(urn(), patient({ gender: 'male' })),
      ]),
    );
    expect(res.status).toBe(200);
    const entries = (res.body as Bundle).entry!;
    expect(entries.map((e) => e.response!.status.slice(0, 3))).toEqual(['200', '201', '204', '201']);
    expect(entries[0].resource).toMatchObject({ resourceType: 'Patient', id: 'ord-1', gender: 'other' });
    expect((await server.request().get('/Patient/ord-2')).status).toBe(410);
  });

  test('a GET of a resource deleted in the same transaction fails it (the DELETE ran first); nothing changes', async () => {
    await put(patient({ id: 'ord-3' }));
    const oo = await expectRejected(
      () =>
        post(
          transactionBundle([
            { request: { method: 'GET', url: 'Patient/ord-3' } },
            { request: { method: 'DELETE', url: 'Patient/ord-3' } },
          ]),
        ),
      410,
    );
    expect(outcomeExpressions(oo)).toEqual(['Bundle.entry[0]']);
    expect((await server.request().get('/Patient/ord-3')).status).toBe(200);
  });

  test('a conditional create runs after the DELETE of the resource it would have matched', async () => {
    const mrn = randomUUID();
    await put(patient({ id: 'ord-4', identifier: [{ system: MRN, value: mrn }] }));
    const res = await post(
      transactionBundle([
        { ...postEntry(urn(), patient({ identifier: [{ system: MRN, value: mrn }] })), request: { method: 'POST', url: 'Patient', ifNoneExist: `identifier=${MRN}|${mrn}` } },
        { request: { method: 'DELETE', url: 'Patient/ord-4' } },
      ]),
    );
    expect(res.status).toBe(200);
    const [created, deleted] = responses(res);
    expect(deleted.status).toMatch(/^204/);
    expect(created.status).toMatch(/^201/);
    expect(refOf(created.location)).not.toBe('Patient/ord-4');
    expect((await read<Patient>(refOf(created.location))).identifier![0].value).toBe(mrn);
  });
});

describe('transaction: conditional create (request.ifNoneExist)', () => {
  test('an existing match is reused: 200, no new Patient, references to its fullUrl point at it', async () => {
    const mrn = randomUUID();
    const existing = await put(patient({ id: 'cc-1', identifier: [{ system: MRN, value: mrn }] }));
    const patientsBefore = await historyTotal('Patient/_history');
    const p = urn();
    const res = await post(
      transactionBundle([
        { fullUrl: p, resource: patient({ identifier: [{ system: MRN, value: mrn }] }), request: { method: 'POST', url: 'Patient', ifNoneExist: `identifier=${MRN}|${mrn}` } },
        postEntry(urn(), condition(p, '44054006')),
        postEntry(urn(), observation(p)),
      ]),
    );
    expect(res.status).toBe(200);
    const [pr, cr, or] = responses(res);
    expect(pr.status).toMatch(/^200/);
    expect(pr.location).toBe(`Patient/${existing.id}/_history/1`);
    expect(pr.etag).toBe('W/"1"');
    expect(cr.status).toMatch(/^201/);
    expect((await read<Condition>(refOf(cr.location))).subject.reference).toBe('Patient/cc-1');
    expect((await read<Observation>(refOf(or.location))).subject!.reference).toBe('Patient/cc-1');
    expect(await historyTotal('Patient/_history')).toBe(patientsBefore);
  });

  test('no match: the Patient is created and references point at the new one', async () => {
    const mrn = randomUUID();
    const p = urn();
    const res = await post(
      transactionBundle([
        { fullUrl: p, resource: patient({ identifier: [{ system: MRN, value: mrn }] }), request: { method: 'POST', url: 'Patient', ifNoneExist: `identifier=${MRN}|${mrn}` } },
        postEntry(urn(), condition(p, '44054006')),
      ]),
    );
    expect(res.status).toBe(200);
    const [pr, cr] = responses(res);
    expect(pr.status).toMatch(/^201/);
    expect((await read<Condition>(refOf(cr.location))).subject.reference).toBe(refOf(pr.location));
  });

  test('two matches fail the whole transaction with 412; nothing is stored', async () => {
    const mrn = randomUUID();
    await put(patient({ id: 'cc-twin-1', identifier: [{ system: MRN, value: mrn }] }));
    await put(patient({ id: 'cc-twin-2', identifier: [{ system: MRN, value: mrn }] }));
    const p = urn();
    const oo = await expectRejected(
      () =>
        post(
          transactionBundle([
            postEntry(urn(), patient()),
            { fullUrl: p, resource: patient(), request: { method: 'POST', url: 'Patient', ifNoneExist: `identifier=${MRN}|${mrn}` } },
            postEntry(urn(), condition(p, '44054006')),
          ]),
        ),
      412,
    );
    expect(outcomeText(oo)).toContain('matched 2 resources');
    expect(outcomeExpressions(oo)).toEqual(['Bundle.entry[1]']);
  });
});

describe('transaction: conditional references', () => {
  test('Patient?identifier=system|value is resolved to the one match', async () => {
    const mrn = randomUUID();
    await put(patient({ id: 'cr-1', identifier: [{ system: MRN, value: mrn }] }));
    const res = await post(
      transactionBundle([
        postEntry(urn(), condition(`Patient?identifier=${MRN}|${mrn}`, '44054006')),
        postEntry(urn(), observation(`Patient?identifier=${MRN}|${mrn}`, { extension: [{ url: 'http://example.org/x', valueReference: { reference: `Patient?identifier=${MRN}|${mrn}` } }] })),
      ]),
    );
    expect(res.status).toBe(200);
    const [cr, or] = responses(res);
    expect((await read<Condition>(refOf(cr.location))).subject.reference).toBe('Patient/cr-1');
    const obs = await read<Observation>(refOf(or.location));
    expect(obs.subject!.reference).toBe('Patient/cr-1');
    expect(obs.extension![0].valueReference!.reference).toBe('Patient/cr-1');
  });

  test('no match fails the whole transaction (404); nothing is stored', async () => {
    const ref = `Patient?identifier=${MRN}|${randomUUID()}`;
    const oo = await expectRejected(() => post(transactionBundle([postEntry(urn(), patient()), postEntry(urn(), condition(ref, '44054006'))])), 404);
    expect(outcomeText(oo)).toContain(`Conditional reference '${ref}' matched 0 resources`);
    expect(outcomeExpressions(oo)).toEqual(['Bundle.entry[1]']);
  });

  test('two matches fail the whole transaction (412); nothing is stored', async () => {
    const mrn = randomUUID();
    await put(patient({ id: 'cr-twin-1', identifier: [{ system: MRN, value: mrn }] }));
    await put(patient({ id: 'cr-twin-2', identifier: [{ system: MRN, value: mrn }] }));
    const ref = `Patient?identifier=${MRN}|${mrn}`;
    const oo = await expectRejected(() => post(transactionBundle([postEntry(urn(), patient()), postEntry(urn(), condition(ref, '44054006'))])), 412);
    expect(outcomeText(oo)).toContain('matched 2 resources');
    expect(oo.issue![0].code).toBe('multiple-matches');
  });

  test('an unknown search parameter in a conditional reference is 400 naming it', async () => {
    const oo = await expectRejected(() => post(transactionBundle([postEntry(urn(), condition('Patient?nonsense=Ada', '44054006'))])), 400);
    expect(outcomeText(oo)).toContain("Unknown search parameter 'nonsense' for Patient");
  });

  test('a conditional reference may use any search parameter, e.g. name', async () => {
    await put(patient({ id: 'cr-named', name: [{ family: 'Quirkyname', given: ['Zed'] }] }));
    const res = await post(transactionBundle([postEntry(urn(), condition('Patient?name=quirkyname', '44054006'))]));
    expect(res.status).toBe(200);
    const location = res.body.entry[0].response.location as string;
    const stored = await server.request().get('/' + location.split('/_history')[0]);
    expect(stored.body.subject.reference).toBe('Patient/cr-named');
  });
});

describe('transaction: all or nothing', () => {
  test('one invalid entry stores nothing; the outcome names Bundle.entry[i] and the element', async () => {
    const p = urn();
    const oo = await expectRejected(
      () =>
        post(
          transactionBundle([
            postEntry(p, patient()),
            postEntry(urn(), condition(p, '44054006')),
            postEntry(urn(), observation(p, { status: 'bogus' as Observation['status'] })),
          ]),
        ),
      400,
    );
    expect(outcomeText(oo)).toContain('Bundle.entry[2]');
    expect(outcomeExpressions(oo)).toContain('Bundle.entry[2].resource.status');
  });

  test('a failing PUT processed after the POSTs rolls them back', async () => {
    const existing = await put(patient({ id: 'aon-1' }));
    const p = urn();
    const oo = await expectRejected(
      () =>
        post(
          transactionBundle([
            { resource: { ...existing, birthDate: '1961-01-01' }, request: { method: 'PUT', url: 'Patient/aon-1', ifMatch: 'W/"9"' } },
            postEntry(p, patient()),
            postEntry(urn(), condition(p, '44054006')),
          ]),
        ),
      412,
    );
    expect(outcomeExpressions(oo)).toEqual(['Bundle.entry[0]']);
    const after = await read<Patient>('Patient/aon-1');
    expect(after.meta!.versionId).toBe('1');
    expect(after.birthDate).toBe('1950-04-02');
  });

  test('a PATCH whose test op fails is 422 and rolls back the other entries', async () => {
    await put(patient({ id: 'aon-2', gender: 'female' }));
    const oo = await expectRejected(
      () =>
        post(
          transactionBundle([
            postEntry(urn(), patient()),
            { resource: patchBinary([{ op: 'test', path: '/gender', value: 'male' }, { op: 'replace', path: '/gender', value: 'other' }]), request: { method: 'PATCH', url: 'Patient/aon-2' } },
          ]),
        ),
      422,
    );
    expect(outcomeText(oo)).toContain('test failed');
    expect(outcomeExpressions(oo)).toEqual(['Bundle.entry[1]']);
    expect((await read<Patient>('Patient/aon-2')).meta!.versionId).toBe('1');
  });

  test('an entry without request is 400 naming Bundle.entry[1].request', async () => {
    const oo = await expectRejected(() => post(transactionBundle([postEntry(urn(), patient()), { fullUrl: urn(), resource: patient() }])), 400);
    expect(outcomeExpressions(oo)).toEqual(['Bundle.entry[1].request']);
  });

  test('a request.url on another server is 400', async () => {
    const oo = await expectRejected(
      () => post(transactionBundle([{ resource: patient({ id: 'x' }), request: { method: 'PUT', url: 'http://elsewhere.example/Patient/x' } }])),
      400,
    );
    expect(outcomeExpressions(oo)).toEqual(['Bundle.entry[0].request.url']);
  });

  test('the same resource changed by two entries (PUT and DELETE) is 400', async () => {
    await put(patient({ id: 'aon-3' }));
    const oo = await expectRejected(
      () =>
        post(
          transactionBundle([
            { resource: patient({ id: 'aon-3', gender: 'other' }), request: { method: 'PUT', url: 'Patient/aon-3' } },
            { request: { method: 'DELETE', url: 'Patient/aon-3' } },
          ]),
        ),
      400,
    );
    expect(outcomeText(oo)).toContain('Patient/aon-3');
    expect((await server.request().get('/Patient/aon-3')).status).toBe(200);
  });
});

describe('batch', () => {
  test('each entry gets its own status and outcome; the good entries are stored', async () => {
    const before = await historyTotal();
    const res = await post(
      transactionBundle(
        [
          { resource: patient({ gender: 'male' }), request: { method: 'POST', url: 'Patient' } },
          { resource: patient({ birthDate: 12 as unknown as string }), request: { method: 'POST', url: 'Patient' } },
          { request: { method: 'GET', url: 'Patient/batch-missing' } },
          { resource: patient({ id: 'batch-1' }), request: { method: 'PUT', url: 'Patient/batch-1' } },
          { resource: patient({ id: 'other' }), request: { method: 'PUT', url: 'Patient/batch-2' } },
          { request: { method: 'GET', url: 'Foo/1' } },
        ],
        'batch',
      ),
    );
    expect(res.status).toBe(200);
    expect(res.body.type).toBe('batch-response');
    const entries = (res.body as Bundle).entry!;
    expect(entries.map((e) => e.response!.status.slice(0, 3))).toEqual(['201', '400', '404', '201', '400', '404']);

    const created = entries[0].response!;
    expect(created.location).toMatch(/^Patient\/[0-9a-f-]{36}\/_history\/1$/);
    expect(created.etag).toBe('W/"1"');
    expect((await read<Patient>(refOf(created.location))).gender).toBe('male');
    expect(entries[3].response!.location).toBe('Patient/batch-1/_history/1');
    expect(entries[3].response!.etag).toBe('W/"1"');
    expect((await read<Patient>('Patient/batch-1')).id).toBe('batch-1');

    const bad = entries[1].response!.outcome as OperationOutcome;
    expect(bad.resourceType).toBe('OperationOutcome');
    expect(outcomeExpressions(bad)).toContain('Bundle.entry[1].resource.birthDate');
    expect(outcomeText(bad)).toContain('Bundle.entry[1]');
    expect(outcomeText(entries[2].response!.outcome as OperationOutcome)).toContain('Patient/batch-missing');
    expect(outcomeText(entries[4].response!.outcome as OperationOutcome)).toContain("The id 'other' in the body does not match");
    expect(outcomeText(entries[5].response!.outcome as OperationOutcome)).toContain("Unknown resource type 'Foo'");
    expect((await server.request().get('/Patient/batch-2')).status).toBe(404);
    expect(await historyTotal()).toBe(before + 2);
  });

  test('a PATCH entry in a batch applies its JSON Patch', async () => {
    await put(patient({ id: 'batch-3', gender: 'female' }));
    const res = await post(
      transactionBundle([{ resource: patchBinary([{ op: 'replace', path: '/gender', value: 'male' }]), request: { method: 'PATCH', url: 'Patient/batch-3' } }], 'batch'),
    );
    expect(res.status).toBe(200);
    expect(responses(res)[0]).toMatchObject({ status: expect.stringMatching(/^200/), location: 'Patient/batch-3/_history/2', etag: 'W/"2"' });
    expect((await read<Patient>('Patient/batch-3')).gender).toBe('male');
  });
});

describe('transaction: PUT and PATCH entries, response shape', () => {
  test('PUT and PATCH (a Binary with base64 JSON Patch) make new versions with location and etag', async () => {
    const p1 = await put(patient({ id: 'pp-1' }));
    await put(patient({ id: 'pp-2', gender: 'female' }));
    const res = await post(
      transactionBundle([
        { fullUrl: `${BASE_URL}/Patient/pp-1`, resource: { ...p1, gender: 'other' }, request: { method: 'PUT', url: 'Patient/pp-1', ifMatch: 'W/"1"' } },
        {
          resource: patchBinary([
            { op: 'test', path: '/gender', value: 'female' },
            { op: 'replace', path: '/gender', value: 'male' },
            { op: 'add', path: '/active', value: true },
          ]),
          request: { method: 'PATCH', url: 'Patient/pp-2' },
        },
        { resource: patient({ id: 'pp-3' }), request: { method: 'PUT', url: 'Patient/pp-3' } },
        postEntry(urn(), condition(`${BASE_URL}/Patient/pp-1`, '44054006')),
      ]),
    );
    expect(res.status).toBe(200);
    expect(res.body.type).toBe('transaction-response');
    const rs = responses(res);
    expect(rs[0]).toMatchObject({ status: expect.stringMatching(/^200/), location: 'Patient/pp-1/_history/2', etag: 'W/"2"' });
    expect(rs[1]).toMatchObject({ status: expect.stringMatching(/^200/), location: 'Patient/pp-2/_history/2', etag: 'W/"2"' });
    expect(rs[2]).toMatchObject({ status: expect.stringMatching(/^201/), location: 'Patient/pp-3/_history/1', etag: 'W/"1"' });
    expect((await read<Patient>('Patient/pp-1')).gender).toBe('other');
    const pp2 = await read<Patient>('Patient/pp-2');
    expect(pp2.gender).toBe('male');
    expect(pp2.active).toBe(true);
    expect(pp2.meta!.versionId).toBe('2');
    expect((await read<Condition>(refOf(rs[3].location))).subject.reference).toBe('Patient/pp-1');
  });

  test('entries carry no resource by default, and the resource with Prefer: return=representation', async () => {
    const minimal = await post(transactionBundle([postEntry(urn(), patient())]));
    expect(minimal.status).toBe(200);
    expect((minimal.body as Bundle).entry![0].resource).toBeUndefined();
    const full = await post(transactionBundle([postEntry(urn(), patient({ gender: 'male' }))]), 'return=representation');
    const entry = (full.body as Bundle).entry![0];
    expect(entry.resource).toMatchObject({ resourceType: 'Patient', gender: 'male', meta: { versionId: '1' } });
    expect(entry.fullUrl).toBe(`${BASE_URL}/Patient/${entry.resource!.id}`);
  });

  test('an empty transaction answers an empty transaction-response', async () => {
    const res = await post({ resourceType: 'Bundle', type: 'transaction' });
    expect(res.status).toBe(200);
    expect(res.body.type).toBe('transaction-response');
    expect(res.body.entry ?? []).toEqual([]);
  });
});

describe('POST / with something other than a batch or transaction', () => {
  test.each([['collection'], ['document'], ['searchset'], ['transaction-response']])('a Bundle of type %s is 400 naming Bundle.type', async (type) => {
    const oo = await expectRejected(() => post({ resourceType: 'Bundle', type, entry: [{ fullUrl: urn(), resource: patient() }] }), 400);
    expect(outcomeText(oo)).toContain(`got '${type}'`);
    expect(outcomeExpressions(oo)).toEqual(['Bundle.type']);
  });

  test('a Bundle without type, and a Patient, are 400', async () => {
    let oo = await expectRejected(() => post({ resourceType: 'Bundle', entry: [] }), 400);
    expect(outcomeExpressions(oo)).toEqual(['Bundle.type']);
    oo = await expectRejected(() => post(patient()), 400);
    expect(outcomeText(oo)).toContain('batch or transaction');
  });

  test('a structurally invalid transaction Bundle is 400 naming the element', async () => {
    const oo = await expectRejected(() => post({ resourceType: 'Bundle', type: 'transaction', entry: [{ resource: patient(), request: { method: 'FETCH', url: 'Patient' } }] }), 400);
    expect(outcomeExpressions(oo)).toContain('Bundle.entry[0].request.method');
  });
});
