/**
 * HTTP-level behaviour: content negotiation (406/415), _pretty, Prefer: return, _summary and
 * _elements, JSON Patch, HEAD and CORS (FHIR R4 http.html, search.html#summary).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { OperationOutcome, Patient } from '@medplum/fhirtypes';
import type { Response } from 'supertest';
import { patient } from '../support/builders';
import { BASE_URL, FHIR_JSON, startTestServer, type TestServer } from '../support/server';

const JSON_PATCH = 'application/json-patch+json';
const SUBSETTED = { system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue', code: 'SUBSETTED' };

let server: TestServer;
let stored: Patient;

/** A Patient with summary and non-summary elements (R4: name, gender, birthDate, identifier, active are Σ; text, maritalStatus, contact, communication, extension are not). */
const full = (): Patient =>
  patient({
    identifier: [{ system: 'http://example.org/mrn', value: 'neg-1' }],
    active: true,
    text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">Ada Testperson</div>' },
    extension: [{ url: 'http://example.org/fhir/StructureDefinition/eye-colour', valueString: 'green' }],
    maritalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-MaritalStatus', code: 'M' }] },
    contact: [{ name: { family: 'Contact' } }],
    communication: [{ language: { text: 'English' } }],
    _gender: { extension: [{ url: 'http://example.org/fhir/StructureDefinition/gender-note', valueString: 'self-reported' }] },
  } as Partial<Patient>);

beforeAll(async () => {
  server = await startTestServer();
  const res = await server.request().post('/Patient').set('Content-Type', FHIR_JSON).send(full());
  expect(res.status).toBe(201);
  stored = res.body as Patient;
});
afterAll(() => server.close());

function expectOutcome(res: Response, status: number): OperationOutcome {
  expect(res.status).toBe(status);
  expect(res.headers['content-type']).toBe('application/fhir+json; charset=utf-8');
  expect(res.body.resourceType).toBe('OperationOutcome');
  return res.body as OperationOutcome;
}

const text = (oo: OperationOutcome): string => (oo.issue ?? []).map((i) => i.diagnostics ?? '').join('\n');

async function historyTotal(): Promise<number> {
  return (await server.request().get('/_history?_count=1')).body.total as number;
}

describe('Accept and _format', () => {
  test.each([['application/fhir+xml'], ['application/xml'], ['text/xml'], ['application/fhir+json;q=0'], ['image/png']])(
    'Accept: %s is 406 with an OperationOutcome',
    async (accept) => {
      const oo = expectOutcome(await server.request().get(`/Patient/${stored.id}`).set('Accept', accept), 406);
      expect(oo.issue![0].code).toBe('not-supported');
      expect(text(oo)).toContain('application/fhir+json');
    },
  );

  test.each([['xml'], ['application/fhir+xml'], ['text/turtle'], ['ttl']])('_format=%s is 406', async (format) => {
    const oo = expectOutcome(await server.request().get(`/Patient/${stored.id}`).query({ _format: format }), 406);
    expect(text(oo)).toContain(`_format '${format}'`);
  });

  test('a 406 also applies to writes, and nothing is stored', async () => {
    const before = await historyTotal();
    expectOutcome(await server.request().post('/Patient').set('Content-Type', FHIR_JSON).set('Accept', 'application/fhir+xml').send(patient()), 406);
    expectOutcome(await server.request().post('/Patient').query({ _format: 'xml' }).set('Content-Type', FHIR_JSON).send(patient()), 406);
    expect(await historyTotal()).toBe(before);
  });

  test.each([
    ['application/json'],
    ['application/fhir+json'],
    ['application/json+fhir'],
    ['*/*'],
    ['application/*'],
    ['application/fhir+xml;q=0.9, application/fhir+json;q=0.5'],
    ['text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8'],
    ['application/fhir+json; fhirVersion=4.0'],
  ])('Accept: %s is 200 with FHIR JSON', async (accept) => {
    const res = await server.request().get(`/Patient/${stored.id}`).set('Accept', accept);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/fhir+json; charset=utf-8');
    expect(res.body.id).toBe(stored.id);
  });

  test.each([['json'], ['application/json'], ['application/fhir+json']])('_format=%s is 200 and overrides Accept', async (format) => {
    const res = await server.request().get(`/Patient/${stored.id}`).query({ _format: format }).set('Accept', 'application/fhir+xml');
    expect(res.status).toBe(200);
    expect(res.body.id).toBe(stored.id);
  });
});

describe('request Content-Type', () => {
  test.each([['text/plain'], ['application/xml'], ['application/fhir+xml'], ['multipart/form-data; boundary=x']])(
    'a POST body with Content-Type %s is 415; nothing is stored',
    async (type) => {
      const before = await historyTotal();
      const oo = expectOutcome(await server.request().post('/Patient').set('Content-Type', type).send(JSON.stringify(patient())), 415);
      expect(oo.issue![0].code).toBe('not-supported');
      expect(text(oo)).toContain(type.split(';')[0]);
      expect(await historyTotal()).toBe(before);
    },
  );

  test('a POST body without any Content-Type is 415; nothing is stored', async () => {
    const before = await historyTotal();
    const token = await server.token('system/*.cruds');
    const listener = server.continuum.app.listen(0, '127.0.0.1');
    await new Promise<void>((resolve) => listener.once('listening', () => resolve()));
    try {
      const { port } = listener.address() as AddressInfo;
      const body = JSON.stringify(patient());
      const res = await new Promise<{ status: number; text: string }>((resolve, reject) => {
        const headers = { 'Content-Length': Buffer.byteLength(body), Authorization: `Bearer ${token}` };
        const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/Patient', headers }, (r) => {
          let t = '';
          r.setEncoding('utf8');
          r.on('data', (c: string) => (t += c));
          r.on('end', () => resolve({ status: r.statusCode ?? 0, text: t }));
        });
        req.on('error', reject);
        req.end(body);
      });
      expect(res.status).toBe(415);
      const oo = JSON.parse(res.text) as OperationOutcome;
      expect(oo.resourceType).toBe('OperationOutcome');
      expect(text(oo)).toContain('Content-Type');
    } finally {
      await new Promise<void>((resolve) => listener.close(() => resolve()));
    }
    expect(await historyTotal()).toBe(before);
  });

  test('PUT with Content-Type text/plain is 415 and the resource is unchanged', async () => {
    expectOutcome(await server.request().put(`/Patient/${stored.id}`).set('Content-Type', 'text/plain').send(JSON.stringify({ ...stored, gender: 'male' })), 415);
    expect((await server.request().get(`/Patient/${stored.id}`)).body).toEqual(stored);
  });

  test.each([['application/fhir+json; charset=utf-8'], ['application/json'], ['application/json+fhir'], ['APPLICATION/FHIR+JSON'], ['application/fhir+json; fhirVersion=4.0']])(
    'Content-Type %s is accepted',
    async (type) => {
      const res = await server.request().post('/Patient').set('Content-Type', type).send(JSON.stringify(patient()));
      expect(res.status).toBe(201);
    },
  );
});

describe('_pretty', () => {
  test('_pretty=true indents the JSON of a read, a create and a Bundle', async () => {
    const read = await server.request().get(`/Patient/${stored.id}`).query({ _pretty: 'true' });
    expect(read.status).toBe(200);
    expect(read.text).toBe(JSON.stringify(stored, null, 2));
    const created = await server.request().post('/Patient').query({ _pretty: 'true' }).set('Content-Type', FHIR_JSON).send(patient());
    expect(created.status).toBe(201);
    expect(created.text).toBe(JSON.stringify(created.body, null, 2));
    const history = await server.request().get(`/Patient/${stored.id}/_history`).query({ _pretty: 'true' });
    expect(history.text).toContain('\n  "resourceType": "Bundle"');
  });

  test('without _pretty (or _pretty=false) the JSON is compact', async () => {
    for (const q of [{}, { _pretty: 'false' }]) {
      const res = await server.request().get(`/Patient/${stored.id}`).query(q);
      expect(res.text).not.toContain('\n');
    }
  });

  test('an OperationOutcome for an error is indented with _pretty=true too', async () => {
    const res = await server.request().get('/Patient/does-not-exist').query({ _pretty: 'true' });
    expect(res.status).toBe(404);
    expect(res.text).toBe(JSON.stringify(res.body, null, 2));
  });
});

describe('Prefer: return', () => {
  test('return=minimal on create: 201, empty body, Location and ETag', async () => {
    const res = await server.request().post('/Patient').set('Content-Type', FHIR_JSON).set('Prefer', 'return=minimal').send(patient());
    expect(res.status).toBe(201);
    expect(res.text ?? '').toBe('');
    expect(res.headers.location).toMatch(new RegExp(`^${BASE_URL}/Patient/[0-9a-f-]{36}/_history/1$`));
    expect(res.headers.etag).toBe('W/"1"');
    const read = await server.request().get(res.headers.location.slice(BASE_URL.length));
    expect(read.status).toBe(200);
  });

  test('return=minimal on update: 200, empty body, ETag of the new version', async () => {
    const created = (await server.request().post('/Patient').set('Content-Type', FHIR_JSON).send(patient())).body as Patient;
    const res = await server.request().put(`/Patient/${created.id}`).set('Content-Type', FHIR_JSON).set('Prefer', 'return=minimal').send({ ...created, gender: 'male' });
    expect(res.status).toBe(200);
    expect(res.text ?? '').toBe('');
    expect(res.headers.etag).toBe('W/"2"');
  });

  test('return=OperationOutcome gives an informational OperationOutcome', async () => {
    const res = await server.request().post('/Patient').set('Content-Type', FHIR_JSON).set('Prefer', 'return=OperationOutcome').send(patient());
    expect(res.status).toBe(201);
    expect(res.body.resourceType).toBe('OperationOutcome');
    expect(res.body.issue[0].severity).toBe('information');
    expect(res.body.issue[0].diagnostics).toMatch(/^Created Patient\//);
    expect(res.headers.location).toMatch(/\/_history\/1$/);
  });

  test('return=representation (and no Prefer) gives the stored resource', async () => {
    for (const prefer of ['return=representation', undefined]) {
      const req = server.request().post('/Patient').set('Content-Type', FHIR_JSON);
      const res = await (prefer ? req.set('Prefer', prefer) : req).send(patient());
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({ resourceType: 'Patient', meta: { versionId: '1' } });
    }
  });
});

describe('_summary and _elements on read', () => {
  test('_summary=true keeps summary elements only and tags meta SUBSETTED', async () => {
    const res = await server.request().get(`/Patient/${stored.id}`).query({ _summary: 'true' });
    expect(res.status).toBe(200);
    const p = res.body as Patient;
    expect(p.name).toEqual(stored.name);
    expect(p.gender).toBe('female');
    expect(p.birthDate).toBe('1950-04-02');
    expect(p.identifier).toEqual(stored.identifier);
    expect(p.active).toBe(true);
    for (const dropped of ['text', 'extension', 'maritalStatus', 'contact', 'communication']) {
      expect(p).not.toHaveProperty(dropped);
    }
    expect(p.meta!.tag).toContainEqual(SUBSETTED);
    expect(p.meta!.versionId).toBe(stored.meta!.versionId);
  });

  test('_summary=text keeps text (plus id and meta) only; _summary=data drops text only', async () => {
    const t = (await server.request().get(`/Patient/${stored.id}`).query({ _summary: 'text' })).body as Patient;
    expect(Object.keys(t).sort()).toEqual(['id', 'meta', 'resourceType', 'text']);
    expect(t.meta!.tag).toContainEqual(SUBSETTED);
    const d = (await server.request().get(`/Patient/${stored.id}`).query({ _summary: 'data' })).body as Patient;
    expect(d).not.toHaveProperty('text');
    expect(d.contact).toEqual(stored.contact);
    expect(d.meta!.tag).toContainEqual(SUBSETTED);
  });

  test('_summary=false returns the whole resource untagged', async () => {
    const res = await server.request().get(`/Patient/${stored.id}`).query({ _summary: 'false' });
    expect(res.body).toEqual(stored);
  });

  test('_elements=gender keeps gender (and its _gender extension) plus id, meta and resourceType', async () => {
    const res = await server.request().get(`/Patient/${stored.id}`).query({ _elements: 'gender' });
    expect(res.status).toBe(200);
    expect(Object.keys(res.body).sort()).toEqual(['_gender', 'gender', 'id', 'meta', 'resourceType']);
    expect(res.body.gender).toBe('female');
    expect(res.body.meta.tag).toContainEqual(SUBSETTED);
  });

  test('_elements with several and type-qualified names', async () => {
    const res = await server.request().get(`/Patient/${stored.id}`).query({ _elements: 'Patient.birthDate,name' });
    expect(Object.keys(res.body).sort()).toEqual(['birthDate', 'id', 'meta', 'name', 'resourceType']);
  });

  test('subsetting works on vread too and never changes what is stored', async () => {
    const res = await server.request().get(`/Patient/${stored.id}/_history/1`).query({ _elements: 'gender' });
    expect(Object.keys(res.body).sort()).toEqual(['_gender', 'gender', 'id', 'meta', 'resourceType']);
    expect((await server.request().get(`/Patient/${stored.id}`)).body).toEqual(stored);
  });

  test.each([
    [{ _summary: 'bogus' }, '_summary'],
    [{ _summary: 'count' }, '_summary=count'],
    [{ _elements: 'name;drop table' }, '_elements'],
  ])('%p is 400', async (query, named) => {
    const oo = expectOutcome(await server.request().get(`/Patient/${stored.id}`).query(query), 400);
    expect(text(oo)).toContain(named);
  });
});

describe('PATCH with JSON Patch', () => {
  test('application/json-patch+json: 200, a new version, ETag and the patched resource', async () => {
    const created = (await server.request().post('/Patient').set('Content-Type', FHIR_JSON).send(patient())).body as Patient;
    const res = await server
      .request()
      .patch(`/Patient/${created.id}`)
      .set('Content-Type', JSON_PATCH)
      .send(JSON.stringify([
        { op: 'test', path: '/gender', value: 'female' },
        { op: 'replace', path: '/gender', value: 'male' },
        { op: 'add', path: '/name/0/given/-', value: 'Augusta' },
      ]));
    expect(res.status).toBe(200);
    expect(res.headers.etag).toBe('W/"2"');
    expect(res.headers['content-location']).toBe(`${BASE_URL}/Patient/${created.id}/_history/2`);
    expect(res.body.gender).toBe('male');
    expect(res.body.name[0].given).toEqual(['Ada', 'Augusta']);
    expect(res.body.meta.versionId).toBe('2');
    const read = await server.request().get(`/Patient/${created.id}`);
    expect(read.body).toEqual(res.body);
  });

  test('If-Match on PATCH: the current version works, a stale one is 412', async () => {
    const created = (await server.request().post('/Patient').set('Content-Type', FHIR_JSON).send(patient())).body as Patient;
    const ok = await server.request().patch(`/Patient/${created.id}`).set('Content-Type', JSON_PATCH).set('If-Match', 'W/"1"').send(JSON.stringify([{ op: 'add', path: '/active', value: true }]));
    expect(ok.status).toBe(200);
    const stale = await server.request().patch(`/Patient/${created.id}`).set('Content-Type', JSON_PATCH).set('If-Match', 'W/"1"').send(JSON.stringify([{ op: 'add', path: '/active', value: false }]));
    expectOutcome(stale, 412);
    expect((await server.request().get(`/Patient/${created.id}`)).body.active).toBe(true);
  });

  test('a failing test op is 422 and nothing is stored', async () => {
    const created = (await server.request().post('/Patient').set('Content-Type', FHIR_JSON).send(patient())).body as Patient;
    const oo = expectOutcome(
      await server
        .request()
        .patch(`/Patient/${created.id}`)
        .set('Content-Type', JSON_PATCH)
        .send(JSON.stringify([{ op: 'test', path: '/gender', value: 'male' }, { op: 'replace', path: '/gender', value: 'other' }])),
      422,
    );
    expect(text(oo)).toContain('test failed');
    expect((await server.request().get(`/Patient/${created.id}`)).body).toEqual(created);
  });

  test('PATCH with a FHIR JSON Content-Type is 415', async () => {
    const oo = expectOutcome(
      await server.request().patch(`/Patient/${stored.id}`).set('Content-Type', FHIR_JSON).send(JSON.stringify([{ op: 'add', path: '/active', value: false }])),
      415,
    );
    expect(text(oo)).toContain('application/json-patch+json');
    expect((await server.request().get(`/Patient/${stored.id}`)).body).toEqual(stored);
  });

  test('PATCH of a missing resource is 404', async () => {
    expectOutcome(await server.request().patch('/Patient/nobody').set('Content-Type', JSON_PATCH).send('[]'), 404);
  });
});

describe('HEAD and OPTIONS', () => {
  test('HEAD on a read: 200, the headers of a GET, no body', async () => {
    const res = await server.request().head(`/Patient/${stored.id}`);
    expect(res.status).toBe(200);
    expect(res.headers.etag).toBe('W/"1"');
    expect(res.headers['content-type']).toBe('application/fhir+json; charset=utf-8');
    expect(res.text ?? '').toBe('');
    expect(res.body).toEqual({});
  });

  test('HEAD on a missing resource is 404 without body', async () => {
    const res = await server.request().head('/Patient/nobody');
    expect(res.status).toBe(404);
    expect(res.text ?? '').toBe('');
  });

  test('OPTIONS answers a CORS preflight', async () => {
    const res = await server
      .request()
      .options(`/Patient/${stored.id}`)
      .set('Origin', 'https://app.example.org')
      .set('Access-Control-Request-Method', 'PUT')
      .set('Access-Control-Request-Headers', 'content-type, if-match');
    expect(res.status).toBe(204);
    expect(res.headers['access-control-allow-origin']).toBe('*');
    for (const m of ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']) {
      expect(res.headers['access-control-allow-methods']).toContain(m);
    }
    const allowed = (res.headers['access-control-allow-headers'] as string).toLowerCase();
    for (const h of ['content-type', 'if-match', 'prefer', 'authorization', 'if-none-exist']) {
      expect(allowed).toContain(h);
    }
  });

  test("paths under the authorization server's prefixes that it does not serve reach the FHIR API", async () => {
    // Its own routes answer in OAuth's JSON; anything else there is the FHIR API's 404, with the common headers.
    const res = await server.request().get('/auth/no-such-endpoint');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['access-control-allow-origin']).toBe('*');
    expect(expectOutcome(res, 404).issue?.[0].diagnostics).toContain('auth/no-such-endpoint');
    const discovery = await server.request().get('/.well-known/smart-configuration');
    expect(discovery.status).toBe(200);
    expect(discovery.headers['x-content-type-options']).toBe('nosniff');
    expect((discovery.body as { token_endpoint?: string }).token_endpoint).toMatch(/\/auth\/token$/);
  });

  test('ordinary responses carry CORS and safety headers and expose ETag and Location', async () => {
    const res = await server.request().get(`/Patient/${stored.id}`).set('Origin', 'https://app.example.org');
    expect(res.headers['access-control-allow-origin']).toBe('*');
    expect(res.headers['access-control-expose-headers']).toContain('ETag');
    expect(res.headers['access-control-expose-headers']).toContain('Location');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['x-powered-by']).toBeUndefined();
  });
});
