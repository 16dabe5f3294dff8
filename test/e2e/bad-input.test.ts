/**
 * Hostile and malformed input: every case gets a 4xx OperationOutcome that names the problem, never
 * a 500, and nothing is stored (checked with the system history total before and after).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { OperationOutcome, OperationOutcomeIssue, Patient } from '@medplum/fhirtypes';
import type { Response } from 'supertest';
import { patient } from '../support/builders';
import { FHIR_JSON, startTestServer, type TestServer } from '../support/server';

const JSON_PATCH = 'application/json-patch+json';

/** The response is a 4xx OperationOutcome; returns its issues. */
function expectOutcome(res: Response, status: number): OperationOutcomeIssue[] {
  expect(res.status).toBe(status);
  expect(res.headers['content-type']).toBe('application/fhir+json; charset=utf-8');
  const oo = res.body as OperationOutcome;
  expect(oo.resourceType).toBe('OperationOutcome');
  expect(oo.issue?.length).toBeGreaterThan(0);
  for (const i of oo.issue ?? []) {
    expect(i.severity).toBe('error');
  }
  return oo.issue ?? [];
}

/** All diagnostics of an outcome, joined, for `toContain` checks. */
function diagnostics(issues: OperationOutcomeIssue[]): string {
  return issues.map((i) => i.diagnostics ?? i.details?.text ?? '').join('\n');
}

function expressions(issues: OperationOutcomeIssue[]): string[] {
  return issues.flatMap((i) => i.expression ?? []);
}

async function historyTotal(s: TestServer): Promise<number> {
  const res = await s.request().get('/_history').query({ _count: '1' });
  expect(res.status).toBe(200);
  return res.body.total as number;
}

describe('bad input (default limits)', () => {
  let server: TestServer;
  let existing: Patient;

  beforeAll(async () => {
    server = await startTestServer();
    const res = await server.request().post('/Patient').set('Content-Type', FHIR_JSON).send(patient());
    expect(res.status).toBe(201);
    existing = res.body as Patient;
  });
  afterAll(() => server.close());

  /** Runs `send`, expects `status` and that the store is unchanged; returns the issues. */
  async function rejected(send: () => Promise<Response>, status = 400): Promise<OperationOutcomeIssue[]> {
    const before = await historyTotal(server);
    const res = await send();
    const issues = expectOutcome(res, status);
    expect(await historyTotal(server)).toBe(before);
    const read = await server.request().get(`/Patient/${existing.id}`);
    expect(read.body).toEqual(existing);
    return issues;
  }

  describe('malformed JSON', () => {
    test.each([
      ['a truncated object', '{"resourceType": "Patient", "gender": '],
      ['a trailing comma', '{"resourceType": "Patient",}'],
      ['single quotes', "{'resourceType': 'Patient'}"],
      ['not JSON at all', 'resourceType=Patient'],
    ])('POST with %s is 400 naming the JSON error', async (_what, body) => {
      const issues = await rejected(() => server.request().post('/Patient').set('Content-Type', FHIR_JSON).send(body));
      expect(issues[0].code).toBe('invalid');
      expect(diagnostics(issues)).toContain('not valid JSON');
    });

    test('PUT with malformed JSON is 400 and the resource is unchanged', async () => {
      const issues = await rejected(() =>
        server.request().put(`/Patient/${existing.id}`).set('Content-Type', FHIR_JSON).send('{"resourceType": "Patient", "id": '),
      );
      expect(diagnostics(issues)).toContain('not valid JSON');
    });

    test('a JSON value that is not an object (array, string, number, null) is 400', async () => {
      for (const body of ['[]', '"Patient"', '42', 'null']) {
        const issues = await rejected(() => server.request().post('/Patient').set('Content-Type', FHIR_JSON).send(body));
        expect(diagnostics(issues)).toMatch(/must be a FHIR resource|JSON object/);
      }
    });

    test('POST without a body is 400', async () => {
      const issues = await rejected(() => server.request().post('/Patient').set('Content-Type', FHIR_JSON));
      expect(diagnostics(issues)).toContain('FHIR resource');
    });
  });

  describe('JSON nested deeper than the limit', () => {
    const deep = (n: number): string => '['.repeat(n) + ']'.repeat(n);

    test('10,000 nested arrays inside an extension: 400, no stack overflow, the server keeps serving', async () => {
      const body = `{"resourceType":"Patient","extension":[{"url":"http://example.org/x","valueString":${deep(10_000)}}]}`;
      const issues = await rejected(() => server.request().post('/Patient').set('Content-Type', FHIR_JSON).send(body));
      expect(diagnostics(issues)).toMatch(/nested more than \d+ levels/);
      // Still alive and well.
      expect((await server.request().get(`/Patient/${existing.id}`)).status).toBe(200);
    });

    test('100,000 nested objects are refused the same way', async () => {
      const n = 100_000;
      const body = `{"resourceType":"Patient","extension":[{"url":"http://example.org/x","valueString":${'{"a":'.repeat(n)}1${'}'.repeat(n)}}]}`;
      const issues = await rejected(() => server.request().post('/Patient').set('Content-Type', FHIR_JSON).send(body));
      expect(diagnostics(issues)).toMatch(/nested more than \d+ levels/);
    });

    test('deep nesting inside a transaction Bundle and a JSON Patch document is refused too', async () => {
      const bundle = `{"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"Patient","extension":[{"url":"x","valueString":${deep(10_000)}}]},"request":{"method":"POST","url":"Patient"}}]}`;
      let issues = await rejected(() => server.request().post('/').set('Content-Type', FHIR_JSON).send(bundle));
      expect(diagnostics(issues)).toMatch(/nested more than \d+ levels/);
      const patch = `[{"op":"add","path":"/extension","value":${deep(10_000)}}]`;
      issues = await rejected(() => server.request().patch(`/Patient/${existing.id}`).set('Content-Type', JSON_PATCH).send(patch));
      expect(diagnostics(issues)).toMatch(/nested more than \d+ levels/);
    });

    test('brackets inside strings do not count as nesting', async () => {
      const family = '[{'.repeat(200) + '\\"' + ']}'.repeat(200);
      const body = `{"resourceType":"Patient","name":[{"family":"${family}"}]}`;
      const res = await server.request().post('/Patient').set('Content-Type', FHIR_JSON).send(body);
      expect(res.status).toBe(201);
      expect(res.body.name[0].family).toBe('[{'.repeat(200) + '"' + ']}'.repeat(200));
    });
  });

  describe('prototype-polluting keys', () => {
    test.each([
      ['__proto__ at the top', '{"resourceType":"Patient","__proto__":{"admin":true}}', '__proto__'],
      ['constructor at the top', '{"resourceType":"Patient","constructor":{"prototype":{"admin":true}}}', 'constructor'],
      ['__proto__ nested in name[0]', '{"resourceType":"Patient","name":[{"family":"X","__proto__":{"admin":true}}]}', 'name[0].__proto__'],
      ['constructor nested in an extension', '{"resourceType":"Patient","extension":[{"url":"x","valueString":"y","constructor":1}]}', 'extension[0].constructor'],
      ['prototype nested deeper', '{"resourceType":"Patient","contact":[{"name":{"prototype":{"x":1}}}]}', 'contact[0].name.prototype'],
    ])('%s is 400 naming the key and where it is', async (_what, body, at) => {
      const issues = await rejected(() => server.request().post('/Patient').set('Content-Type', FHIR_JSON).send(body));
      const key = at.split('.').pop() as string;
      expect(diagnostics(issues)).toContain(`'${key}' is not allowed`);
      expect(diagnostics(issues)).toContain(at);
      expect(({} as Record<string, unknown>).admin).toBeUndefined();
    });

    test('a key spelled with unicode escapes ("\\u005f_proto__") is still refused', async () => {
      const body = '{"resourceType":"Patient","\\u005f_proto__":{"admin":true}}';
      const issues = await rejected(() => server.request().post('/Patient').set('Content-Type', FHIR_JSON).send(body));
      expect(diagnostics(issues)).toContain('__proto__');
      expect(({} as Record<string, unknown>).admin).toBeUndefined();
    });

    test('__proto__ inside a PUT and inside a JSON Patch value is refused', async () => {
      const put = JSON.stringify({ ...existing, gender: 'other' }).replace('{', '{"__proto__":{"admin":true},');
      let issues = await rejected(() => server.request().put(`/Patient/${existing.id}`).set('Content-Type', FHIR_JSON).send(put));
      expect(diagnostics(issues)).toContain('__proto__');
      const patch = '[{"op":"add","path":"/name/0","value":{"family":"Y","__proto__":{"admin":true}}}]';
      issues = await rejected(() => server.request().patch(`/Patient/${existing.id}`).set('Content-Type', JSON_PATCH).send(patch));
      expect(diagnostics(issues)).toContain('__proto__');
    });
  });

  describe('body and URL disagree', () => {
    test('resourceType in the body not matching the URL (POST and PUT) is 400', async () => {
      let issues = await rejected(() =>
        server.request().post('/Patient').set('Content-Type', FHIR_JSON).send({ resourceType: 'Observation', status: 'final', code: { text: 'x' } }),
      );
      expect(diagnostics(issues)).toContain("resourceType 'Observation' in the body does not match 'Patient' in the URL");
      expect(expressions(issues)).toEqual(['resourceType']);
      issues = await rejected(() =>
        server.request().put(`/Patient/${existing.id}`).set('Content-Type', FHIR_JSON).send({ ...existing, resourceType: 'Practitioner' }),
      );
      expect(diagnostics(issues)).toContain("'Practitioner'");
    });

    test('a body without resourceType is 400', async () => {
      const issues = await rejected(() => server.request().post('/Patient').set('Content-Type', FHIR_JSON).send({ gender: 'male' }));
      expect(diagnostics(issues)).toContain('no resourceType');
    });

    test('PUT with an id in the body not matching the URL is 400 naming Patient.id', async () => {
      const issues = await rejected(() =>
        server.request().put(`/Patient/${existing.id}`).set('Content-Type', FHIR_JSON).send({ ...existing, id: 'someone-else' }),
      );
      expect(diagnostics(issues)).toContain("The id 'someone-else' in the body does not match");
      expect(expressions(issues)).toEqual(['Patient.id']);
    });

    test('PUT without an id in the body is 400 naming Patient.id', async () => {
      const { id: _id, ...noId } = existing;
      const issues = await rejected(() => server.request().put(`/Patient/${existing.id}`).set('Content-Type', FHIR_JSON).send(noId));
      expect(expressions(issues)).toEqual(['Patient.id']);
    });
  });

  describe('invalid ids in the URL', () => {
    const tooLong = 'a'.repeat(65);

    test.each([
      ['65 characters', tooLong],
      ['a $ sign', 'a$b'],
      ['an underscore', 'a_b'],
      ['a space (encoded)', 'a%20b'],
      ['a colon', 'a:b'],
    ])('read, vread, history, PUT, PATCH and DELETE with an id containing %s are 400', async (_what, id) => {
      const decoded = decodeURIComponent(id);
      for (const res of [
        await server.request().get(`/Patient/${id}`),
        await server.request().get(`/Patient/${id}/_history/1`),
        await server.request().get(`/Patient/${id}/_history`),
        await server.request().delete(`/Patient/${id}`),
      ]) {
        const issues = expectOutcome(res, 400);
        expect(diagnostics(issues)).toContain(`Invalid id '${decoded}'`);
      }
      let issues = await rejected(() =>
        server.request().put(`/Patient/${id}`).set('Content-Type', FHIR_JSON).send(patient({ id: decoded })),
      );
      expect(diagnostics(issues)).toContain(`Invalid id '${decoded}'`);
      issues = await rejected(() =>
        server.request().patch(`/Patient/${id}`).set('Content-Type', JSON_PATCH).send([{ op: 'replace', path: '/gender', value: 'male' }]),
      );
      expect(diagnostics(issues)).toContain(`Invalid id '${decoded}'`);
    });

    test('64 characters is a valid id (update-as-create)', async () => {
      const id = 'b'.repeat(64);
      const res = await server.request().put(`/Patient/${id}`).set('Content-Type', FHIR_JSON).send(patient({ id }));
      expect(res.status).toBe(201);
    });

    test('broken percent-encoding in the path is 400', async () => {
      const issues = expectOutcome(await server.request().get('/Patient/%E0%A4%A'), 400);
      expect(diagnostics(issues)).toContain('percent-encoding');
    });
  });

  describe('unknown resource types', () => {
    test.each([
      ['GET', '/Foo/1'],
      ['GET', '/Foo/1/_history'],
      ['GET', '/Foo/1/_history/1'],
      ['GET', '/Foo/_history'],
      ['DELETE', '/Foo/1'],
    ])('%s %s is 404 naming the type', async (method, path) => {
      const res = await server.request()[method === 'GET' ? 'get' : 'delete'](path);
      const issues = expectOutcome(res, 404);
      expect(diagnostics(issues)).toContain("Unknown resource type 'Foo'");
    });

    test('POST /Foo and PUT /Foo/1 are 404 and store nothing', async () => {
      let issues = await rejected(() => server.request().post('/Foo').set('Content-Type', FHIR_JSON).send({ resourceType: 'Foo' }), 404);
      expect(diagnostics(issues)).toContain("Unknown resource type 'Foo'");
      issues = await rejected(() => server.request().put('/Foo/1').set('Content-Type', FHIR_JSON).send({ resourceType: 'Foo', id: '1' }), 404);
      expect(diagnostics(issues)).toContain("Unknown resource type 'Foo'");
    });

    test('GET /Foo (type level) is 404 naming the unknown type, not a 405', async () => {
      const issues = expectOutcome(await server.request().get('/Foo'), 404);
      expect(diagnostics(issues)).toContain("Unknown resource type 'Foo'");
    });

    test('a type that is not a resource (a datatype, lower case) is refused', async () => {
      const issues = expectOutcome(await server.request().get('/HumanName/1'), 404);
      expect(diagnostics(issues)).toContain("Unknown resource type 'HumanName'");
      expectOutcome(await server.request().get('/patient/1'), 404);
    });
  });

  describe('wrong element types', () => {
    test.each([
      ['birthDate as a number', 'Patient.birthDate', { birthDate: 12 }],
      ['birthDate not a date', 'Patient.birthDate', { birthDate: '02/04/1950' }],
      ['name as a string', 'Patient.name', { name: 'x' }],
      ['name[0].given as a string', 'Patient.name[0].given', { name: [{ given: 'Ada' }] }],
      ['gender outside its value set', 'Patient.gender', { gender: 'martian' }],
      ['active as a string', 'Patient.active', { active: 'yes' }],
      ['an unknown element foo', 'Patient.foo', { foo: 1 }],
      ['an unknown element inside name[0]', 'Patient.name[0].nickname', { name: [{ family: 'X', nickname: 'Y' }] }],
      ['an extension without url', 'Patient.extension[0].url', { extension: [{ valueString: 'x' }] }],
      ['a Reference as a string', 'Patient.managingOrganization', { managingOrganization: 'Organization/1' }],
      ['a HumanName as a string inside the array', 'Patient.name[0]', { name: ['Ada Testperson'] }],
      ['a CodeableConcept as a number', 'Patient.maritalStatus', { maritalStatus: 7 }],
    ])('%s: 400 with the issue expression %s', async (_what, expression, overrides) => {
      const body = { ...patient(), ...overrides };
      const issues = await rejected(() => server.request().post('/Patient').set('Content-Type', FHIR_JSON).send(body));
      expect(expressions(issues)).toContain(expression);
      expect(diagnostics(issues)).toContain(expression.split('.').pop()!.replace(/\[\d+\]$/, ''));
    });

    test('several problems are all reported, each with its own expression', async () => {
      const body = { ...patient(), birthDate: 12, foo: true, gender: 'martian' };
      const issues = await rejected(() => server.request().post('/Patient').set('Content-Type', FHIR_JSON).send(body));
      expect(expressions(issues)).toEqual(expect.arrayContaining(['Patient.birthDate', 'Patient.foo', 'Patient.gender']));
    });

    test.each([
      ['code as a string', 'Observation.code', { code: 'weight' }],
      ['subject as a string', 'Observation.subject', { subject: 'Patient/1' }],
      ['valueQuantity as a number', 'Observation.valueQuantity', { valueQuantity: 70 }],
    ])('Observation with %s: 400 with the issue expression %s', async (_what, expression, overrides) => {
      const body = { resourceType: 'Observation', status: 'final', code: { text: 'weight' }, ...overrides };
      const issues = await rejected(() => server.request().post('/Observation').set('Content-Type', FHIR_JSON).send(body));
      expect(expressions(issues)).toContain(expression);
    });

    test('a missing required element (Observation.status, 1..1) is 400 naming it', async () => {
      const body = { resourceType: 'Observation', code: { text: 'weight' }, valueQuantity: { value: 70, unit: 'kg' } };
      const issues = await rejected(() => server.request().post('/Observation').set('Content-Type', FHIR_JSON).send(body));
      expect(expressions(issues)).toContain('Observation.status');
    });

    test('a problem inside a contained resource is named by its path', async () => {
      const body = {
        ...patient(),
        contained: [{ resourceType: 'Organization', id: 'org', name: 12 }],
        managingOrganization: { reference: '#org' },
      };
      const issues = await rejected(() => server.request().post('/Patient').set('Content-Type', FHIR_JSON).send(body));
      expect(expressions(issues)).toContain('Patient.contained[0].name');
    });

    test('PUT with a wrong element type is 400 and leaves the resource unchanged', async () => {
      const issues = await rejected(() =>
        server.request().put(`/Patient/${existing.id}`).set('Content-Type', FHIR_JSON).send({ ...existing, birthDate: 12 }),
      );
      expect(expressions(issues)).toContain('Patient.birthDate');
    });
  });

  describe('unknown query parameters', () => {
    test.each([
      ['read', (id: string) => `/Patient/${id}`],
      ['vread', (id: string) => `/Patient/${id}/_history/1`],
      ['instance history', (id: string) => `/Patient/${id}/_history`],
      ['type history', () => '/Patient/_history'],
      ['system history', () => '/_history'],
    ])('on %s: 400 naming the parameter; accepted with Prefer: handling=lenient', async (_what, url) => {
      const path = url(existing.id!);
      const issues = expectOutcome(await server.request().get(path).query({ foo: 'bar' }), 400);
      expect(diagnostics(issues)).toContain("'foo'");
      const strict = await server.request().get(path).query({ foo: 'bar' }).set('Prefer', 'handling=strict');
      expectOutcome(strict, 400);
      const lenient = await server.request().get(path).query({ foo: 'bar' }).set('Prefer', 'handling=lenient');
      expect(lenient.status).toBe(200);
      expect(lenient.body.resourceType).toBe(path.includes('_history') && !path.endsWith('/1') ? 'Bundle' : 'Patient');
    });

    test('every unknown parameter is named', async () => {
      const issues = expectOutcome(await server.request().get(`/Patient/${existing.id}`).query({ foo: '1', bar: '2' }), 400);
      expect(diagnostics(issues)).toContain("'foo'");
      expect(diagnostics(issues)).toContain("'bar'");
    });
  });

  describe('malformed JSON Patch documents', () => {
    const patchWith = (body: unknown) => () =>
      server.request().patch(`/Patient/${existing.id}`).set('Content-Type', JSON_PATCH).send(JSON.stringify(body));

    test.each([
      ['an object instead of an array', { op: 'replace', path: '/gender', value: 'male' }, 'must be an array'],
      ['an unknown op', [{ op: 'frobnicate', path: '/gender', value: 'male' }], "unknown op 'frobnicate'"],
      ['a missing path', [{ op: 'remove' }], "string 'path'"],
      ['add without value', [{ op: 'add', path: '/active' }], "needs a 'value'"],
      ['move without from', [{ op: 'move', path: '/active' }], "needs a string 'from'"],
      ['a path that is not a JSON pointer', [{ op: 'replace', path: 'gender', value: 'male' }], 'not a JSON pointer'],
      ['a __proto__ path segment', [{ op: 'add', path: '/meta/__proto__', value: { admin: true } }], '__proto__'],
      ['a null operation', [null], 'Patch operation 0'],
    ])('%s is 400 naming the problem', async (_what, body, text) => {
      const issues = await rejected(patchWith(body));
      expect(diagnostics(issues)).toContain(text);
    });

    test('a JSON Patch body that is not JSON is 400', async () => {
      const issues = await rejected(() =>
        server.request().patch(`/Patient/${existing.id}`).set('Content-Type', JSON_PATCH).send('[{"op": "replace", '),
      );
      expect(diagnostics(issues)).toContain('not valid JSON');
    });

    test('a patch to a path that does not exist is 422', async () => {
      const issues = await rejected(patchWith([{ op: 'replace', path: '/telecom/3/value', value: 'x' }]), 422);
      expect(diagnostics(issues)).toContain("'telecom' does not exist");
    });

    test('a patch that makes the resource invalid is refused naming the element', async () => {
      const res = await patchWith([{ op: 'replace', path: '/birthDate', value: 12 }])();
      expect([400, 422]).toContain(res.status);
      expect(expressions(expectOutcome(res, res.status))).toContain('Patient.birthDate');
      expect((await server.request().get(`/Patient/${existing.id}`)).body).toEqual(existing);
    });

    test('a patch may not change the id', async () => {
      const issues = await rejected(patchWith([{ op: 'replace', path: '/id', value: 'other' }]));
      expect(diagnostics(issues)).toContain('may not change resourceType or id');
    });
  });

  describe('history parameters', () => {
    test.each([['-1'], ['abc'], ['1.5'], ['']])('_count=%p is 400 naming _count', async (count) => {
      const issues = expectOutcome(await server.request().get(`/Patient/${existing.id}/_history?_count=${count}`), 400);
      expect(diagnostics(issues)).toContain('_count');
      expectOutcome(await server.request().get(`/_history?_count=${count}`), 400);
    });

    test('_count=0 on history is a valid request for the total only', async () => {
      const res = await server.request().get('/_history?_count=0');
      expect(res.status).toBe(200);
      expect(res.body.total).toBeGreaterThan(0);
      expect(res.body.entry ?? []).toEqual([]);
    });

    test.each([
      ['a word', 'yesterday'],
      ['a date in another format', '01/02/2026'],
      ['month 13', '2026-13-01T00:00:00Z'],
      ['hour 25', '2026-01-01T25:00:00Z'],
      ['February 30th', '2026-02-30T00:00:00Z'],
      ['a time without time zone', '2026-01-01T10:00:00'],
    ])('_since as %s is 400 naming _since', async (_what, since) => {
      for (const path of ['/_history', '/Patient/_history', `/Patient/${existing.id}/_history`]) {
        const res = await server.request().get(path).query({ _since: since });
        const issues = expectOutcome(res, 400);
        expect(diagnostics(issues)).toContain('_since');
      }
    });

    test('a valid _since is accepted', async () => {
      const res = await server.request().get('/_history').query({ _since: '2000-01-01T00:00:00Z' });
      expect(res.status).toBe(200);
      expect(res.body.total).toBe(await historyTotal(server));
    });

    test.each([['2000'], ['2000-01'], ['2000-01-01'], ['2999'], ['2999-12']])(
      '_since=%s (a partial date the server accepts) is answered, never a 500',
      async (since) => {
        const res = await server.request().get('/_history').query({ _since: since });
        expect(res.status).toBe(200);
        expect(res.body.total).toBe(since.startsWith('2000') ? await historyTotal(server) : 0);
      },
    );

    test('a forged _cursor is 400', async () => {
      const issues = expectOutcome(await server.request().get('/_history').query({ _cursor: "1' OR 1=1" }), 400);
      expect(diagnostics(issues)).toContain('_cursor');
    });
  });
});

describe('bad input: body over the size limit', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer({ limits: { maxBodyBytes: 10_000 } });
  });
  afterAll(() => server.close());

  const big = (): Patient => patient({ text: { status: 'generated', div: `<div xmlns="http://www.w3.org/1999/xhtml">${'x'.repeat(20_000)}</div>` } });

  test('POST, PUT and transaction bodies over the limit are 413 naming the limit; nothing is stored', async () => {
    for (const send of [
      () => server.request().post('/Patient').set('Content-Type', FHIR_JSON).send(big()),
      () => server.request().put('/Patient/big').set('Content-Type', FHIR_JSON).send({ ...big(), id: 'big' }),
      () =>
        server
          .request()
          .post('/')
          .set('Content-Type', FHIR_JSON)
          .send({ resourceType: 'Bundle', type: 'transaction', entry: [{ resource: big(), request: { method: 'POST', url: 'Patient' } }] }),
    ]) {
      const issues = expectOutcome(await send(), 413);
      expect(issues[0].code).toBe('too-costly');
      expect(diagnostics(issues)).toContain('larger than the limit of 10000 bytes');
    }
    expect(await historyTotal(server)).toBe(0);
  });

  test('a body just under the limit is accepted', async () => {
    const p = patient({ text: { status: 'generated', div: `<div xmlns="http://www.w3.org/1999/xhtml">${'x'.repeat(5_000)}</div>` } });
    const res = await server.request().post('/Patient').set('Content-Type', FHIR_JSON).send(p);
    expect(res.status).toBe(201);
  });

  test('a chunked body without Content-Length is cut off at the limit with 413', async () => {
    const before = await historyTotal(server);
    const token = await server.token('system/*.cruds');
    const listener = server.continuum.app.listen(0, '127.0.0.1');
    await new Promise<void>((resolve) => listener.once('listening', () => resolve()));
    try {
      const { port } = listener.address() as AddressInfo;
      const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = http.request(
          { host: '127.0.0.1', port, method: 'POST', path: '/Patient', headers: { 'Content-Type': FHIR_JSON, 'Transfer-Encoding': 'chunked', Authorization: `Bearer ${token}` } },
          (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (c: string) => (text += c));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
          },
        );
        req.on('error', reject);
        const json = JSON.stringify(big());
        for (let i = 0; i < json.length; i += 1000) {
          req.write(json.slice(i, i + 1000));
        }
        req.end();
      });
      expect(status).toBe(413);
      const oo = JSON.parse(body) as OperationOutcome;
      expect(oo.resourceType).toBe('OperationOutcome');
      expect(oo.issue?.[0].diagnostics).toContain('larger than the limit of 10000 bytes');
    } finally {
      await new Promise<void>((resolve) => listener.close(() => resolve()));
    }
    expect(await historyTotal(server)).toBe(before);
  });
});

describe('NUL characters', () => {
  test('in a resource: 400, nothing stored', async () => {
    const server2 = await startTestServer();
    try {
      const res = await server2.request().post('/Patient').set('Content-Type', 'application/fhir+json').send('{"resourceType":"Patient","name":[{"family":"a\\u0000b"}]}');
      expect(res.status).toBe(400);
      expect(res.body.issue[0].diagnostics).toContain('NUL character');
      expect((await server2.request().get('/Patient/_history')).body.total).toBe(0);
    } finally {
      await server2.close();
    }
  });
});
