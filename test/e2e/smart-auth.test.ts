/**
 * SMART App Launch 2.x (STU2) and Backend Services, checked over HTTP the way the Inferno SMART App
 * Launch test kit checks a server: discovery, standalone and EHR launch with PKCE, the patient
 * picker, OpenID Connect id tokens, refresh, revocation and introspection, confidential symmetric and
 * asymmetric clients, and the rate limit of the authorization server.
 *
 * Every check asserts what the SMART / OAuth / OpenID Connect specifications require, not what the
 * server happens to do; where a check goes beyond Inferno, its comment names the rule.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Bundle, Observation, Patient, Practitioner } from '@medplum/fhirtypes';
import type * as Jose from 'jose';
import type supertest from 'supertest';
import { observation, patient } from '../support/builders';
import { BASE_URL, FHIR_JSON, startTestServer, type TestServer } from '../support/server';

// jose 6 is ESM-only and jest cannot load it; Node's own require can (as src/auth/jose.ts does).
const jose = process.getBuiltinModule('node:module').createRequire(__filename)('jose') as typeof Jose;

type KeyLike = Awaited<ReturnType<typeof jose.generateKeyPair>>['privateKey'];

const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const TOKEN_URL = `${BASE_URL}/auth/token`;

const PUBLIC_APP = 'inferno-public';
const PUBLIC_REDIRECT = 'https://app.example/callback';
const OTHER_APP = 'inferno-public-2';
const OTHER_REDIRECT = 'https://other.example/callback';
const CONFIDENTIAL_APP = 'inferno-confidential';
const CONFIDENTIAL_REDIRECT = 'https://confidential.example/cb';
const APP_SCOPE = 'openid fhirUser profile launch launch/patient offline_access online_access patient/*.rs user/*.rs';

const PATIENT_USER = 'pat.a';
const PATIENT_PASSWORD = 'patient password A';
const DOCTOR_USER = 'dr.who';
const DOCTOR_PASSWORD = 'doctor password 1';

const STANDALONE_SCOPE = 'launch/patient openid fhirUser offline_access patient/*.rs';

let server: TestServer;
let patientA = '';
let patientB = '';
let patientC = '';
let practitionerId = '';
let confidentialSecret = '';

interface Backend {
  clientId: string;
  alg: 'RS384' | 'ES384';
  kid: string;
  privateKey: KeyLike;
}
const backends: Backend[] = [];
let publicJwks: Jose.JSONWebKeySet;

// ---------------------------------------------------------------------------------------------
// Helpers

/** RFC 7636: a 43-character code verifier. */
const makeVerifier = (): string => randomBytes(32).toString('base64url');
/** RFC 7636 S256: BASE64URL(SHA256(ASCII(verifier))). */
const s256 = (verifier: string): string => createHash('sha256').update(verifier, 'ascii').digest('base64url');

const anon = (): supertest.Agent => server.anonymous();
const bearer = (token: string): supertest.Agent => server.anonymous().set('Authorization', `Bearer ${token}`);
const basic = (id: string, secret: string): string => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

async function create<T extends Patient | Observation | Practitioner>(resource: T): Promise<T> {
  const res = await server.request().post(`/${resource.resourceType}`).set('Content-Type', FHIR_JSON).send(resource);
  if (res.status !== 201) {
    throw new Error(`creating a ${resource.resourceType} answered ${res.status}: ${JSON.stringify(res.body)}`);
  }
  return res.body as T;
}

interface AuthorizeInput {
  clientId?: string;
  redirectUri?: string;
  scope?: string;
  state?: string;
  aud?: string;
  launch?: string;
  nonce?: string;
  verifier?: string;
  /** Overrides (undefined removes a parameter). */
  extra?: Record<string, string | undefined>;
}

function authorizeParams(input: AuthorizeInput): { params: Record<string, string>; verifier: string } {
  const verifier = input.verifier ?? makeVerifier();
  const params: Record<string, string | undefined> = {
    response_type: 'code',
    client_id: input.clientId ?? PUBLIC_APP,
    redirect_uri: input.redirectUri ?? PUBLIC_REDIRECT,
    scope: input.scope ?? STANDALONE_SCOPE,
    state: input.state ?? randomUUID(),
    aud: input.aud ?? BASE_URL,
    code_challenge: s256(verifier),
    code_challenge_method: 'S256',
    launch: input.launch,
    nonce: input.nonce,
    ...(input.extra ?? {}),
  };
  const clean: Record<string, string> = {};
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined) {
      clean[k] = v;
    }
  }
  return { params: clean, verifier };
}

/** The hidden `request` input of the sign-in or picker page. */
function requestIdOf(html: string): string {
  const m = /<input type="hidden" name="request" value="([^"]+)">/.exec(html);
  if (!m) {
    throw new Error(`no hidden request input in the page:\n${html.slice(0, 2000)}`);
  }
  return m[1];
}

/** The query parameters of a 302's Location (which must go to `redirectUri`). */
function redirectParams(res: supertest.Response, redirectUri = PUBLIC_REDIRECT): URLSearchParams {
  expect(res.status).toBe(302);
  const location = res.headers.location as string | undefined;
  expect(location).toBeDefined();
  const to = new URL(location!);
  expect(`${to.origin}${to.pathname}`).toBe(redirectUri);
  return to.searchParams;
}

function login(requestId: string, form: Record<string, string>): supertest.Test {
  return anon()
    .post('/auth/login')
    .type('form')
    .send({ request: requestId, ...form });
}

interface Flow {
  code: string;
  verifier: string;
  state: string;
  redirectUri: string;
  clientId: string;
}

/** GET /auth/authorize, sign in (and pick a patient when asked), return the code. */
async function authorizeAndSignIn(
  input: AuthorizeInput & { username?: string; password?: string; pick?: string } = {},
): Promise<Flow> {
  const { params, verifier } = authorizeParams(input);
  const page = await anon().get('/auth/authorize').query(params);
  expect(page.status).toBe(200);
  expect(page.headers['content-type']).toMatch(/^text\/html/);
  const requestId = requestIdOf(page.text);
  let res = await login(requestId, {
    username: input.username ?? PATIENT_USER,
    password: input.password ?? PATIENT_PASSWORD,
    action: 'allow',
  });
  if (input.pick !== undefined) {
    expect(res.status).toBe(200);
    res = await login(requestIdOf(res.text), { action: 'pick', patient: input.pick });
  }
  const q = redirectParams(res, params.redirect_uri);
  expect(q.get('error')).toBeNull();
  expect(q.get('state')).toBe(params.state);
  const code = q.get('code');
  expect(code).toBeTruthy();
  return { code: code!, verifier, state: params.state, redirectUri: params.redirect_uri, clientId: params.client_id };
}

function exchange(flow: Flow, overrides: Record<string, string | undefined> = {}, authorization?: string): supertest.Test {
  const form: Record<string, string | undefined> = {
    grant_type: 'authorization_code',
    code: flow.code,
    redirect_uri: flow.redirectUri,
    client_id: flow.clientId,
    code_verifier: flow.verifier,
    ...overrides,
  };
  const req = anon().post('/auth/token').type('form');
  if (authorization) {
    req.set('Authorization', authorization);
  }
  return req.send(Object.fromEntries(Object.entries(form).filter(([, v]) => v !== undefined)));
}

interface TokenResponse {
  access_token: string;
  token_type: string;
  expires_in: number;
  scope: string;
  refresh_token?: string;
  id_token?: string;
  patient?: string;
  need_patient_banner?: boolean;
  smart_style_url?: string;
}

/** A full standalone launch as the Patient user; returns the token response. */
async function patientLaunch(scope = STANDALONE_SCOPE, clientId = PUBLIC_APP, redirectUri = PUBLIC_REDIRECT): Promise<TokenResponse> {
  const flow = await authorizeAndSignIn({ scope, clientId, redirectUri });
  const res = await exchange(flow);
  expect(res.status).toBe(200);
  return res.body as TokenResponse;
}

function refresh(refreshToken: string, clientId = PUBLIC_APP, scope?: string): supertest.Test {
  const form: Record<string, string> = { grant_type: 'refresh_token', refresh_token: refreshToken, client_id: clientId };
  if (scope !== undefined) {
    form.scope = scope;
  }
  return anon().post('/auth/token').type('form').send(form);
}

function expectOAuthError(res: supertest.Response, status: number, error: string | string[]): void {
  expect({ status: res.status, body: res.body as unknown }).toMatchObject({ status, body: { error: expect.any(String) } });
  const errors = Array.isArray(error) ? error : [error];
  expect(errors).toContain((res.body as { error: string }).error);
}

async function serverJwks(): Promise<ReturnType<typeof jose.createLocalJWKSet>> {
  const res = await anon().get('/auth/jwks');
  expect(res.status).toBe(200);
  return jose.createLocalJWKSet(res.body as Jose.JSONWebKeySet);
}

async function clientAssertion(
  b: Backend,
  opts: { key?: KeyLike; kid?: string; alg?: string; aud?: string; exp?: number; jti?: string | null; iss?: string; sub?: string } = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const jwt = new jose.SignJWT({})
    .setProtectedHeader({ alg: opts.alg ?? b.alg, kid: opts.kid ?? b.kid, typ: 'JWT' })
    .setIssuer(opts.iss ?? b.clientId)
    .setSubject(opts.sub ?? b.clientId)
    .setAudience(opts.aud ?? TOKEN_URL)
    .setIssuedAt(now)
    .setExpirationTime(opts.exp ?? now + 60);
  if (opts.jti !== null) {
    jwt.setJti(opts.jti ?? randomUUID());
  }
  return jwt.sign(opts.key ?? b.privateKey);
}

function clientCredentials(assertion: string, scope = 'system/Patient.rs', extra: Record<string, string> = {}): supertest.Test {
  return anon()
    .post('/auth/token')
    .type('form')
    .send({ grant_type: 'client_credentials', scope, client_assertion_type: ASSERTION_TYPE, client_assertion: assertion, ...extra });
}

// ---------------------------------------------------------------------------------------------
// Fixtures

beforeAll(async () => {
  // The default limit (300 a minute per address) is for people; this file makes many flows quickly.
  server = await startTestServer({ auth: { authRequestsPerMinute: 100_000 } });

  patientA = (await create(patient({ name: [{ family: 'Alpha', given: ['Ann'] }] }))).id!;
  patientB = (await create(patient({ name: [{ family: 'Bravo', given: ['Ben'] }] }))).id!;
  patientC = (await create(patient({ name: [{ family: 'Charlie', given: ['Cat'] }] }))).id!;
  for (const p of [patientA, patientB, patientB, patientC]) {
    await create(observation(`Patient/${p}`));
  }
  practitionerId = (await create<Practitioner>({ resourceType: 'Practitioner', name: [{ family: 'Who', given: ['Doctor'] }] })).id!;

  const auth = server.continuum.auth;
  await auth.users.add({ username: PATIENT_USER, password: PATIENT_PASSWORD, fhirUser: `Patient/${patientA}` });
  await auth.users.add({ username: DOCTOR_USER, password: DOCTOR_PASSWORD, fhirUser: `Practitioner/${practitionerId}` });
  await auth.clients.add({ clientId: PUBLIC_APP, name: 'Inferno public', type: 'public', redirectUris: [PUBLIC_REDIRECT], scope: APP_SCOPE });
  await auth.clients.add({ clientId: OTHER_APP, name: 'Another public app', type: 'public', redirectUris: [OTHER_REDIRECT], scope: APP_SCOPE });
  const conf = await auth.clients.add({
    clientId: CONFIDENTIAL_APP,
    name: 'Inferno confidential',
    type: 'confidential-symmetric',
    redirectUris: [CONFIDENTIAL_REDIRECT],
    scope: APP_SCOPE,
  });
  confidentialSecret = conf.secret!;

  const keys: Jose.JWK[] = [];
  for (const alg of ['RS384', 'ES384'] as const) {
    const { privateKey, publicKey } = await jose.generateKeyPair(alg, { extractable: true });
    const b: Backend = { clientId: `backend-${alg.toLowerCase()}`, alg, kid: `key-${alg.toLowerCase()}-1`, privateKey };
    const jwk = { ...(await jose.exportJWK(publicKey)), kid: b.kid, alg, use: 'sig' };
    keys.push(jwk);
    await auth.clients.add({ clientId: b.clientId, name: `Backend ${alg}`, type: 'confidential-asymmetric', scope: 'system/*.rs', jwks: { keys: [jwk] } });
    backends.push(b);
  }
  publicJwks = { keys };
});

afterAll(() => server.close());

// ---------------------------------------------------------------------------------------------
// 1. Discovery and the protected resource

describe('discovery', () => {
  const REQUIRED_CAPABILITIES = [
    'launch-ehr',
    'launch-standalone',
    'client-public',
    'client-confidential-symmetric',
    'client-confidential-asymmetric',
    'sso-openid-connect',
    'context-ehr-patient',
    'context-standalone-patient',
    'permission-offline',
    'permission-patient',
    'permission-user',
    'permission-v1',
    'permission-v2',
    'authorize-post',
  ];

  const expectAbsoluteUrl = (v: unknown): void => {
    expect(typeof v).toBe('string');
    const u = new URL(v as string);
    expect(['http:', 'https:']).toContain(u.protocol);
  };

  /** A URL the configuration names, as a path on this server (so the test can call it). */
  const pathOf = (v: unknown): string => {
    const u = new URL(v as string);
    expect(u.origin).toBe(new URL(BASE_URL).origin);
    return u.pathname;
  };

  test('/.well-known/smart-configuration is public JSON with CORS', async () => {
    const res = await anon().get('/.well-known/smart-configuration').set('Accept', 'application/json');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.headers['access-control-allow-origin']).toBeDefined();
  });

  test('smart-configuration has every required field with the right type (Inferno well_known_capabilities_stu2)', async () => {
    const c = (await anon().get('/.well-known/smart-configuration')).body as Record<string, unknown>;
    expectAbsoluteUrl(c.authorization_endpoint);
    expectAbsoluteUrl(c.token_endpoint);
    expect(Array.isArray(c.capabilities)).toBe(true);
    expect((c.capabilities as unknown[]).every((x) => typeof x === 'string')).toBe(true);
    expect(Array.isArray(c.grant_types_supported)).toBe(true);
    expect(c.grant_types_supported).toEqual(expect.arrayContaining(['authorization_code', 'client_credentials']));
    // PKCE: S256 and never plain.
    expect(c.code_challenge_methods_supported).toEqual(['S256']);
    // sso-openid-connect makes issuer and jwks_uri required.
    expect(c.capabilities).toContain('sso-openid-connect');
    expect(c.issuer).toBe(BASE_URL);
    expectAbsoluteUrl(c.jwks_uri);
    expect(c.capabilities).toEqual(expect.arrayContaining(REQUIRED_CAPABILITIES));
  });

  test('smart-configuration has the recommended and Backend Services fields', async () => {
    const c = (await anon().get('/.well-known/smart-configuration')).body as Record<string, unknown>;
    expect(Array.isArray(c.scopes_supported)).toBe(true);
    expect(c.scopes_supported).toEqual(expect.arrayContaining(['openid', 'fhirUser', 'launch', 'launch/patient', 'offline_access']));
    expect(c.response_types_supported).toEqual(expect.arrayContaining(['code']));
    expectAbsoluteUrl(c.introspection_endpoint);
    expectAbsoluteUrl(c.revocation_endpoint);
    // Backend Services: private_key_jwt with RS384 and ES384.
    expect(c.token_endpoint_auth_methods_supported).toEqual(expect.arrayContaining(['client_secret_basic', 'private_key_jwt']));
    expect(c.token_endpoint_auth_signing_alg_values_supported).toEqual(expect.arrayContaining(['RS384', 'ES384']));
    // Every endpoint it names is served here.
    for (const key of ['authorization_endpoint', 'token_endpoint', 'introspection_endpoint', 'revocation_endpoint', 'jwks_uri']) {
      pathOf(c[key]);
    }
  });

  test('/.well-known/openid-configuration has the OpenID Connect required fields and RS256', async () => {
    const res = await anon().get('/.well-known/openid-configuration');
    expect(res.status).toBe(200);
    expect(res.headers['access-control-allow-origin']).toBeDefined();
    const o = res.body as Record<string, unknown>;
    const smart = (await anon().get('/.well-known/smart-configuration')).body as Record<string, unknown>;
    for (const f of ['issuer', 'authorization_endpoint', 'token_endpoint', 'jwks_uri', 'response_types_supported', 'subject_types_supported', 'id_token_signing_alg_values_supported']) {
      expect(o).toHaveProperty(f);
    }
    expect(o.issuer).toBe(smart.issuer);
    expect(o.jwks_uri).toBe(smart.jwks_uri);
    expect(o.id_token_signing_alg_values_supported).toContain('RS256');
    expect(o.code_challenge_methods_supported ?? ['S256']).not.toContain('plain');
  });

  test('the JWKS publishes public RS256 signing keys only', async () => {
    const c = (await anon().get('/.well-known/smart-configuration')).body as Record<string, unknown>;
    const res = await anon().get(pathOf(c.jwks_uri));
    expect(res.status).toBe(200);
    const keys = (res.body as Jose.JSONWebKeySet).keys;
    expect(keys.length).toBeGreaterThan(0);
    for (const k of keys) {
      expect(k).toMatchObject({ kty: 'RSA', kid: expect.any(String) });
      for (const secret of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k']) {
        expect(k).not.toHaveProperty(secret);
      }
    }
  });

  test('a CORS preflight to the token endpoint is answered (browser apps exchange codes cross-origin)', async () => {
    const res = await anon()
      .options('/auth/token')
      .set('Origin', 'https://app.example')
      .set('Access-Control-Request-Method', 'POST')
      .set('Access-Control-Request-Headers', 'content-type');
    expect(res.status).toBeLessThan(300);
    expect(res.headers['access-control-allow-origin']).toBeDefined();
  });

  test('/metadata needs no token and names SMART-on-FHIR security with the oauth-uris extension', async () => {
    const res = await anon().get('/metadata');
    expect(res.status).toBe(200);
    expect(res.body.resourceType).toBe('CapabilityStatement');
    const security = res.body.rest[0].security as { service: { coding: { code: string }[] }[]; extension: { url: string; extension: { url: string; valueUri: string }[] }[] };
    expect(security.service[0].coding[0].code).toBe('SMART-on-FHIR');
    const uris = security.extension.find((e) => e.url === 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris')?.extension ?? [];
    const smart = (await anon().get('/.well-known/smart-configuration')).body as Record<string, string>;
    expect(uris.find((u) => u.url === 'authorize')?.valueUri).toBe(smart.authorization_endpoint);
    expect(uris.find((u) => u.url === 'token')?.valueUri).toBe(smart.token_endpoint);
  });

  test('a FHIR read without a token is 401 with WWW-Authenticate: Bearer and an OperationOutcome', async () => {
    const res = await anon().get(`/Patient/${patientA}`);
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toMatch(/^Bearer\b/);
    expect(res.body.resourceType).toBe('OperationOutcome');
  });

  test.each([
    ['garbage', (): Promise<string> => Promise.resolve('not-a-token')],
    ['expired', (): Promise<string> => server.continuum.auth.issueToken(BASE_URL, { clientId: 'x', scope: 'system/*.rs' }, -60)],
    ['for another server (aud)', (): Promise<string> => server.continuum.auth.issueToken('http://elsewhere.test', { clientId: 'x', scope: 'system/*.rs' })],
    [
      'signed by someone else with the server kid',
      async (): Promise<string> => {
        const real = jose.decodeProtectedHeader(await server.token('system/*.rs'));
        const { privateKey } = await jose.generateKeyPair('RS256');
        const now = Math.floor(Date.now() / 1000);
        return new jose.SignJWT({ client_id: 'x', scope: 'system/*.cruds' })
          .setProtectedHeader({ alg: 'RS256', kid: real.kid, typ: 'at+jwt' })
          .setIssuer(BASE_URL)
          .setAudience(BASE_URL)
          .setSubject('x')
          .setJti(randomUUID())
          .setIssuedAt(now)
          .setExpirationTime(now + 300)
          .sign(privateKey);
      },
    ],
  ])('a %s token is 401', async (_name, make) => {
    const res = await bearer(await make()).get(`/Patient/${patientA}`);
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toMatch(/^Bearer\b/);
    expect(res.body.resourceType).toBe('OperationOutcome');
  });
});

// ---------------------------------------------------------------------------------------------
// 2. Standalone launch, public client, PKCE

describe('standalone launch (public client, PKCE S256)', () => {
  test('a Patient user gets a code, then a token response with the patient, an id token and a refresh token', async () => {
    const nonce = randomUUID();
    const flow = await authorizeAndSignIn({ nonce });
    const res = await exchange(flow);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.headers['cache-control']).toMatch(/no-store/);
    expect(res.headers.pragma).toBe('no-cache');
    const body = res.body as TokenResponse;
    expect(typeof body.access_token).toBe('string');
    expect(body.token_type.toLowerCase()).toBe('bearer');
    expect(typeof body.expires_in).toBe('number');
    expect(body.expires_in).toBeGreaterThan(0);
    expect(body.expires_in).toBeLessThanOrEqual(3600);
    expect(typeof body.scope).toBe('string');
    expect(body.scope.split(' ').sort()).toEqual(STANDALONE_SCOPE.split(' ').sort());
    expect(body.patient).toBe(patientA);
    expect(typeof body.refresh_token).toBe('string');
    expect(typeof body.id_token).toBe('string');

    // The id token: RS256, a key of the JWKS, iss = the server, aud = the client, a fhirUser claim.
    const header = jose.decodeProtectedHeader(body.id_token!);
    expect(header.alg).toBe('RS256');
    const { payload } = await jose.jwtVerify(body.id_token!, await serverJwks(), { issuer: BASE_URL, audience: PUBLIC_APP, algorithms: ['RS256'] });
    expect(payload.sub).toEqual(expect.any(String));
    expect(payload.exp).toEqual(expect.any(Number));
    expect(payload.iat).toEqual(expect.any(Number));
    expect(payload.nonce).toBe(nonce);
    expect(payload.fhirUser).toBe(`${BASE_URL}/Patient/${patientA}`);

    // The access token reads the patient in context, and the fhirUser resource resolves with it.
    const read = await bearer(body.access_token).get(`/Patient/${patientA}`);
    expect(read.status).toBe(200);
    expect(read.body.id).toBe(patientA);
    const me = await bearer(body.access_token).get(new URL(payload.fhirUser as string).pathname);
    expect(me.status).toBe(200);
    expect(me.body.resourceType).toBe('Patient');
  });

  test('the authorization request may be POSTed (authorize-post)', async () => {
    const { params, verifier } = authorizeParams({});
    const page = await anon().post('/auth/authorize').type('form').send(params);
    expect(page.status).toBe(200);
    const res = await login(requestIdOf(page.text), { username: PATIENT_USER, password: PATIENT_PASSWORD, action: 'allow' });
    const q = redirectParams(res);
    expect(q.get('state')).toBe(params.state);
    const token = await exchange({ code: q.get('code')!, verifier, state: params.state, redirectUri: PUBLIC_REDIRECT, clientId: PUBLIC_APP });
    expect(token.status).toBe(200);
    expect(token.body.patient).toBe(patientA);
  });

  test('without offline_access or online_access there is no refresh token; without openid no id token', async () => {
    const body = await patientLaunch('launch/patient patient/*.rs');
    expect(body.refresh_token).toBeUndefined();
    expect(body.id_token).toBeUndefined();
    expect(body.patient).toBe(patientA);
  });

  test('openid alone still yields an id token (OpenID Connect Core 3.1.3.3: id_token is REQUIRED)', async () => {
    const body = await patientLaunch('launch/patient openid patient/*.rs');
    expect(typeof body.id_token).toBe('string');
    const { payload } = await jose.jwtVerify(body.id_token!, await serverJwks(), { issuer: BASE_URL, audience: PUBLIC_APP });
    expect(payload.sub).toEqual(expect.any(String));
  });

  test('the patient-context token cannot read another patient', async () => {
    const body = await patientLaunch();
    const other = await bearer(body.access_token).get(`/Patient/${patientB}`);
    expect([403, 404]).toContain(other.status);
  });
});

// ---------------------------------------------------------------------------------------------
// 3. PKCE and authorization request negatives

describe('PKCE and authorization errors', () => {
  test.each([
    ['missing', { code_verifier: undefined }, ['invalid_request', 'invalid_grant']],
    ['blank', { code_verifier: '' }, ['invalid_request', 'invalid_grant']],
    ['wrong', { code_verifier: makeVerifier() }, ['invalid_grant']],
  ])('a %s code_verifier is 400', async (_name, overrides, errors) => {
    const flow = await authorizeAndSignIn();
    const res = await exchange(flow, overrides);
    expectOAuthError(res, 400, errors);
    expect(res.body.access_token).toBeUndefined();
  });

  test('sending the code_challenge as the code_verifier is 400 invalid_grant', async () => {
    const flow = await authorizeAndSignIn();
    const res = await exchange(flow, { code_verifier: s256(flow.verifier) });
    expectOAuthError(res, 400, 'invalid_grant');
  });

  test.each([
    ['code_challenge_method=plain', (v: string) => ({ code_challenge: v, code_challenge_method: 'plain' })],
    ['no code_challenge', () => ({ code_challenge: undefined, code_challenge_method: undefined })],
    ['a code_challenge without a method', () => ({ code_challenge_method: undefined })],
  ])('authorize with %s redirects with invalid_request and no code', async (_name, extra) => {
    const verifier = makeVerifier();
    const { params } = authorizeParams({ verifier, extra: extra(verifier) });
    const q = redirectParams(await anon().get('/auth/authorize').query(params));
    expect(q.get('error')).toBe('invalid_request');
    expect(q.get('code')).toBeNull();
    expect(q.get('state')).toBe(params.state);
  });

  test('an unknown code is 400 invalid_grant', async () => {
    const flow = await authorizeAndSignIn();
    expectOAuthError(await exchange(flow, { code: randomBytes(32).toString('base64url') }), 400, 'invalid_grant');
  });

  test('a code works once', async () => {
    const flow = await authorizeAndSignIn();
    expect((await exchange(flow)).status).toBe(200);
    expectOAuthError(await exchange(flow), 400, 'invalid_grant');
  });

  test('a code with another redirect_uri than the authorization request is 400 invalid_grant', async () => {
    const flow = await authorizeAndSignIn();
    expectOAuthError(await exchange(flow, { redirect_uri: 'https://app.example/other' }), 400, 'invalid_grant');
  });

  test('a code redeemed by another client is 400 invalid_grant', async () => {
    const flow = await authorizeAndSignIn();
    expectOAuthError(await exchange(flow, { client_id: OTHER_APP, redirect_uri: flow.redirectUri }), 400, 'invalid_grant');
  });

  test('an unknown client at the token endpoint is 401 invalid_client', async () => {
    const flow = await authorizeAndSignIn();
    expectOAuthError(await exchange(flow, { client_id: 'no-such-client' }), 401, 'invalid_client');
  });

  test.each([
    ['an unknown client', { clientId: 'no-such-client' }],
    ['an unregistered redirect_uri', { redirectUri: 'https://evil.example/steal' }],
    ['no redirect_uri', { extra: { redirect_uri: undefined } }],
  ])('authorize with %s is a 400 page, never a redirect', async (_name, input: AuthorizeInput) => {
    const { params } = authorizeParams(input);
    const res = await anon().get('/auth/authorize').query(params);
    expect(res.status).toBe(400);
    expect(res.headers.location).toBeUndefined();
    expect(res.headers['content-type']).toMatch(/^text\/html/);
  });

  test.each([
    ['another server', 'https://fhir.elsewhere.example'],
    ['missing', undefined],
  ])('authorize with aud %s redirects with an error and no code', async (_name, aud) => {
    const { params } = authorizeParams({ extra: { aud } });
    const q = redirectParams(await anon().get('/auth/authorize').query(params));
    expect(q.get('error')).toBeTruthy();
    expect(q.get('code')).toBeNull();
  });

  test('response_type other than code redirects with unsupported_response_type', async () => {
    const { params } = authorizeParams({ extra: { response_type: 'token' } });
    const q = redirectParams(await anon().get('/auth/authorize').query(params));
    expect(q.get('error')).toBe('unsupported_response_type');
    expect(q.get('code')).toBeNull();
  });

  test('a wrong password is a 401 page (no redirect) that can be retried', async () => {
    const { params } = authorizeParams({});
    const page = await anon().get('/auth/authorize').query(params);
    const requestId = requestIdOf(page.text);
    const res = await login(requestId, { username: PATIENT_USER, password: 'wrong password', action: 'allow' });
    expect(res.status).toBe(401);
    expect(res.headers.location).toBeUndefined();
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    const retry = await login(requestIdOf(res.text), { username: PATIENT_USER, password: PATIENT_PASSWORD, action: 'allow' });
    expect(redirectParams(retry).get('code')).toBeTruthy();
  });

  test('an unknown user is a 401 page', async () => {
    const { params } = authorizeParams({});
    const page = await anon().get('/auth/authorize').query(params);
    const res = await login(requestIdOf(page.text), { username: 'nobody', password: 'whatever123', action: 'allow' });
    expect(res.status).toBe(401);
    expect(res.headers.location).toBeUndefined();
  });

  test('action=deny redirects with access_denied and the state', async () => {
    const { params } = authorizeParams({});
    const page = await anon().get('/auth/authorize').query(params);
    const q = redirectParams(await login(requestIdOf(page.text), { action: 'deny' }));
    expect(q.get('error')).toBe('access_denied');
    expect(q.get('state')).toBe(params.state);
    expect(q.get('code')).toBeNull();
  });

  test('the sign-in page cannot be framed (RFC 9700 4.16: authorization servers MUST prevent clickjacking)', async () => {
    const { params } = authorizeParams({});
    const page = await anon().get('/auth/authorize').query(params);
    expect(page.status).toBe(200);
    const xfo = String(page.headers['x-frame-options'] ?? '').toUpperCase();
    const csp = String(page.headers['content-security-policy'] ?? '');
    expect(['DENY', 'SAMEORIGIN'].includes(xfo) || /frame-ancestors\s+('none'|'self')/.test(csp)).toBe(true);
  });

  test('an unsupported grant_type is 400 unsupported_grant_type', async () => {
    const res = await anon().post('/auth/token').type('form').send({ grant_type: 'password', client_id: PUBLIC_APP, username: 'a', password: 'b' });
    expectOAuthError(res, 400, 'unsupported_grant_type');
    expect(res.headers['cache-control']).toMatch(/no-store/);
  });
});

// ---------------------------------------------------------------------------------------------
// 4. Refresh

describe('refresh', () => {
  test('refresh without scope gives a new working access token with the same scope', async () => {
    const first = await patientLaunch();
    const res = await refresh(first.refresh_token!);
    expect(res.status).toBe(200);
    expect(res.headers['cache-control']).toMatch(/no-store/);
    const body = res.body as TokenResponse;
    expect(body.access_token).not.toBe(first.access_token);
    expect(body.token_type.toLowerCase()).toBe('bearer');
    expect(body.expires_in).toBeLessThanOrEqual(3600);
    expect(body.scope.split(' ').sort()).toEqual(first.scope.split(' ').sort());
    expect(body.patient).toBe(patientA);
    const read = await bearer(body.access_token).get(`/Patient/${patientA}`);
    expect(read.status).toBe(200);
  });

  test('refresh with a narrower scope gives exactly that scope', async () => {
    const first = await patientLaunch();
    const res = await refresh(first.refresh_token!, PUBLIC_APP, 'patient/Patient.rs');
    expect(res.status).toBe(200);
    const body = res.body as TokenResponse;
    expect(body.scope).toBe('patient/Patient.rs');
    expect((await bearer(body.access_token).get(`/Patient/${patientA}`)).status).toBe(200);
    expect((await bearer(body.access_token).get('/Observation')).status).toBe(403);
  });

  test('refresh asking for a scope outside the original grant is 400 invalid_scope', async () => {
    const first = await patientLaunch();
    expectOAuthError(await refresh(first.refresh_token!, PUBLIC_APP, 'patient/*.cruds'), 400, 'invalid_scope');
    expectOAuthError(await refresh(first.refresh_token!, PUBLIC_APP, 'patient/Patient.rs user/*.rs'), 400, 'invalid_scope');
  });

  test('a refresh token presented by another client is 400 invalid_grant', async () => {
    const first = await patientLaunch();
    expectOAuthError(await refresh(first.refresh_token!, OTHER_APP), 400, 'invalid_grant');
  });

  test('an unknown refresh token is 400 invalid_grant', async () => {
    expectOAuthError(await refresh(randomBytes(32).toString('base64url')), 400, 'invalid_grant');
  });
});

// ---------------------------------------------------------------------------------------------
// 5. Revocation and introspection

describe('state', () => {
  test('an authorization request without state is refused with a redirect carrying invalid_request and no code', async () => {
    const { params } = authorizeParams({});
    delete (params as Record<string, unknown>).state;
    const q = redirectParams(await anon().get('/auth/authorize').query(params));
    expect(q.get('error')).toBe('invalid_request');
    expect(q.get('code')).toBeNull();
  });
});

describe('management endpoint', () => {
  test('smart-configuration names it; a user signs in, sees the apps with lasting access and revokes one', async () => {
    const c = (await anon().get('/.well-known/smart-configuration')).body as Record<string, string>;
    expect(c.management_endpoint).toBe(`${BASE_URL}/auth/manage`);
    const t = await patientLaunch();
    expect(t.refresh_token).toBeDefined();
    expect((await anon().get('/auth/manage')).status).toBe(200);
    const wrong = await anon().post('/auth/manage').type('form').send({ action: 'login', username: PATIENT_USER, password: 'not it' });
    expect(wrong.status).toBe(401);
    const page = await anon().post('/auth/manage').type('form').send({ action: 'login', username: PATIENT_USER, password: PATIENT_PASSWORD });
    expect(page.status).toBe(200);
    expect(page.headers['x-frame-options']).toBe('DENY');
    expect(page.text).toContain(PUBLIC_APP);
    const session = /name="session" value="([^"]+)"/.exec(page.text)?.[1];
    const grants = [...page.text.matchAll(/name="grant" value="([^"]+)"/g)].map((m) => m[1]);
    expect(session).toBeDefined();
    expect(grants.length).toBeGreaterThan(0);
    // Revoke every grant listed; the refresh token then stops working.
    for (const grant of grants) {
      const r = await anon().post('/auth/manage').type('form').send({ action: 'revoke', session, grant });
      expect(r.status).toBe(200);
    }
    const after = await refresh(t.refresh_token!);
    expectOAuthError(after, 400, 'invalid_grant');
    // A forged session gets nothing.
    const forged = await anon().post('/auth/manage').type('form').send({ action: 'revoke', session: 'forged', grant: grants[0] });
    expect(forged.status).toBe(401);
  });
});

describe('revocation and introspection', () => {
  const introspect = (token: string): supertest.Test => server.request().post('/auth/introspect').type('form').send({ token });

  test('a live access token introspects as active with scope, client_id, exp, patient and fhirUser', async () => {
    const t = await patientLaunch();
    const res = await introspect(t.access_token);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      active: true,
      scope: t.scope,
      client_id: PUBLIC_APP,
      exp: expect.any(Number),
      patient: patientA,
    });
    expect(res.body.exp).toBeGreaterThan(Date.now() / 1000);
    // SMART 2.x token introspection: fhirUser when the fhirUser scope was granted (as in the id token).
    expect([`Patient/${patientA}`, `${BASE_URL}/Patient/${patientA}`]).toContain(res.body.fhirUser);
  });

  test('a confidential client may introspect with HTTP Basic', async () => {
    const t = await patientLaunch();
    const res = await anon().post('/auth/introspect').set('Authorization', basic(CONFIDENTIAL_APP, confidentialSecret)).type('form').send({ token: t.access_token });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ active: true, client_id: PUBLIC_APP });
  });

  test('introspection without any authentication is refused', async () => {
    const t = await patientLaunch();
    const res = await anon().post('/auth/introspect').type('form').send({ token: t.access_token });
    expect(res.status).toBe(401);
    expect(res.body.active).toBeUndefined();
  });

  test('a garbage token introspects as {active: false}', async () => {
    const res = await introspect('garbage');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ active: false });
  });

  test('a revoked access token gets 401 on the FHIR API and introspects as inactive', async () => {
    const t = await patientLaunch();
    expect((await bearer(t.access_token).get(`/Patient/${patientA}`)).status).toBe(200);
    const res = await anon().post('/auth/revoke').type('form').send({ token: t.access_token, client_id: PUBLIC_APP });
    expect(res.status).toBe(200);
    const after = await bearer(t.access_token).get(`/Patient/${patientA}`);
    expect(after.status).toBe(401);
    expect(after.headers['www-authenticate']).toMatch(/^Bearer\b/);
    expect((await introspect(t.access_token)).body).toEqual({ active: false });
  });

  test('a revoked refresh token cannot be used and introspects as inactive', async () => {
    const t = await patientLaunch();
    expect((await introspect(t.refresh_token!)).body.active).toBe(true);
    const res = await anon().post('/auth/revoke').type('form').send({ token: t.refresh_token!, token_type_hint: 'refresh_token', client_id: PUBLIC_APP });
    expect(res.status).toBe(200);
    expectOAuthError(await refresh(t.refresh_token!), 400, 'invalid_grant');
    expect((await introspect(t.refresh_token!)).body).toEqual({ active: false });
  });

  test('revoking an unknown token is 200 (RFC 7009)', async () => {
    const res = await anon().post('/auth/revoke').type('form').send({ token: 'no-such-token', client_id: PUBLIC_APP });
    expect(res.status).toBe(200);
  });

  test("a client cannot revoke another client's token", async () => {
    const t = await patientLaunch();
    const res = await anon().post('/auth/revoke').type('form').send({ token: t.access_token, client_id: OTHER_APP });
    // RFC 7009 2.1 lets the server refuse with an error or (2.2) answer 200; either way nothing is revoked.
    expect([200, 400, 401, 403]).toContain(res.status);
    expect((await bearer(t.access_token).get(`/Patient/${patientA}`)).status).toBe(200);
  });
});

// ---------------------------------------------------------------------------------------------
// 6. Confidential symmetric client

describe('confidential symmetric client (client_secret_basic)', () => {
  const confFlow = (): Promise<Flow> => authorizeAndSignIn({ clientId: CONFIDENTIAL_APP, redirectUri: CONFIDENTIAL_REDIRECT });

  test('the code exchange with HTTP Basic works', async () => {
    const flow = await confFlow();
    const res = await exchange(flow, { client_id: undefined }, basic(CONFIDENTIAL_APP, confidentialSecret));
    expect(res.status).toBe(200);
    expect(res.body.patient).toBe(patientA);
    expect((await bearer(res.body.access_token as string).get(`/Patient/${patientA}`)).status).toBe(200);
  });

  test('the code exchange without client authentication is 401 invalid_client', async () => {
    const flow = await confFlow();
    expectOAuthError(await exchange(flow), 401, 'invalid_client');
  });

  test('a wrong secret is 401 invalid_client with WWW-Authenticate: Basic', async () => {
    const flow = await confFlow();
    const res = await exchange(flow, { client_id: undefined }, basic(CONFIDENTIAL_APP, 'not the secret'));
    expectOAuthError(res, 401, 'invalid_client');
    expect(res.headers['www-authenticate']).toMatch(/^Basic\b/);
  });

  test('malformed Basic credentials are 401 invalid_client, not a server error', async () => {
    const flow = await confFlow();
    // RFC 6749 2.3.1: id and secret are form-urlencoded inside Basic; a broken escape is a client error.
    const res = await exchange(flow, { client_id: undefined }, `Basic ${Buffer.from(`${CONFIDENTIAL_APP}:%zz`).toString('base64')}`);
    expectOAuthError(res, 401, 'invalid_client');
  });
});

// ---------------------------------------------------------------------------------------------
// 7. Backend Services (client_credentials, private_key_jwt)

describe('Backend Services', () => {
  const backend = (alg: string): Backend => {
    const b = backends.find((x) => x.alg === alg);
    if (!b) {
      throw new Error(`no ${alg} backend client`);
    }
    return b;
  };

  test('both test clients are registered (fixture)', () => {
    expect(backends.map((b) => b.alg)).toEqual(['RS384', 'ES384']);
    expect(publicJwks.keys).toHaveLength(2);
  });

  test.each(['RS384', 'ES384'])('a %s client assertion gets a system token that searches Patient only, read-only', async (alg) => {
    const res = await clientCredentials(await clientAssertion(backend(alg)));
    expect(res.status).toBe(200);
    expect(res.headers['cache-control']).toMatch(/no-store/);
    const body = res.body as TokenResponse;
    expect(typeof body.access_token).toBe('string');
    expect(body.token_type.toLowerCase()).toBe('bearer');
    expect(body.expires_in).toBeGreaterThan(0);
    expect(body.expires_in).toBeLessThanOrEqual(300);
    expect(body.scope).toBe('system/Patient.rs');
    expect(body.refresh_token).toBeUndefined();

    const search = await bearer(body.access_token).get('/Patient');
    expect(search.status).toBe(200);
    expect((search.body as Bundle).entry?.length ?? 0).toBeGreaterThanOrEqual(3);
    const created = await bearer(body.access_token).post('/Patient').set('Content-Type', FHIR_JSON).send(patient());
    expect(created.status).toBe(403);
    expect((await bearer(body.access_token).get('/Observation')).status).toBe(403);
  });

  type Bad = (b: Backend) => Promise<string>;
  const now = (): number => Math.floor(Date.now() / 1000);
  const negatives: [string, Bad][] = [
    [
      'signed by another key with the same kid',
      async (b) => clientAssertion(b, { key: (await jose.generateKeyPair(b.alg)).privateKey }),
    ],
    ['with a wrong aud', (b) => clientAssertion(b, { aud: `${BASE_URL}/auth/authorize` })],
    ['with exp more than five minutes ahead', (b) => clientAssertion(b, { exp: now() + 600 })],
    ['already expired', (b) => clientAssertion(b, { exp: now() - 60 })],
    ['with an unknown kid', (b) => clientAssertion(b, { kid: 'no-such-kid' })],
    ['signed HS256', (b) => clientAssertion(b, { alg: 'HS256', key: randomBytes(32) as unknown as KeyLike })],
    ['without jti', (b) => clientAssertion(b, { jti: null })],
    ['with sub other than iss', (b) => clientAssertion(b, { sub: 'someone-else' })],
    ['naming an unknown client', (b) => clientAssertion(b, { iss: 'no-such-backend', sub: 'no-such-backend' })],
  ];

  describe.each(['RS384', 'ES384'])('%s client', (alg) => {
    test.each(negatives)('an assertion %s is 401 invalid_client', async (_name, make) => {
      const res = await clientCredentials(await make(backend(alg)));
      expectOAuthError(res, 401, 'invalid_client');
      expect(res.body.access_token).toBeUndefined();
    });

    test('a replayed assertion (same jti) is refused the second time', async () => {
      const a = await clientAssertion(backend(alg));
      expect((await clientCredentials(a)).status).toBe(200);
      expectOAuthError(await clientCredentials(a), 401, 'invalid_client');
    });
  });

  test('a wrong client_assertion_type is refused (Inferno accepts 400 or 401)', async () => {
    const b = backends[0];
    const res = await clientCredentials(await clientAssertion(b), 'system/Patient.rs', { client_assertion_type: 'not_an_assertion_type' });
    expect([400, 401]).toContain(res.status);
    expect(['invalid_request', 'invalid_client']).toContain(res.body.error);
  });

  test('a scope outside the registration is 400 invalid_scope', async () => {
    const res = await clientCredentials(await clientAssertion(backends[0]), 'system/Patient.cruds');
    expectOAuthError(res, 400, 'invalid_scope');
  });

  test('client_credentials for a public client is 401 invalid_client', async () => {
    const res = await anon().post('/auth/token').type('form').send({ grant_type: 'client_credentials', client_id: PUBLIC_APP, scope: 'system/Patient.rs' });
    expectOAuthError(res, 401, 'invalid_client');
  });
});

// ---------------------------------------------------------------------------------------------
// 8. Patient picker (standalone launch/patient by a Practitioner)

describe('patient picker', () => {
  test('a Practitioner picks a patient; the token has that patient and patient/ search sees only theirs', async () => {
    const { params, verifier } = authorizeParams({ scope: 'launch/patient openid fhirUser patient/*.rs' });
    const page = await anon().get('/auth/authorize').query(params);
    const signedIn = await login(requestIdOf(page.text), { username: DOCTOR_USER, password: DOCTOR_PASSWORD, action: 'allow' });
    expect(signedIn.status).toBe(200);
    expect(signedIn.headers.location).toBeUndefined();
    expect(signedIn.text).toMatch(/<input type="radio" name="patient"/);
    expect(signedIn.text).toContain(`value="${patientB}"`);

    const picked = await login(requestIdOf(signedIn.text), { action: 'pick', patient: patientB });
    const q = redirectParams(picked);
    expect(q.get('state')).toBe(params.state);
    const res = await exchange({ code: q.get('code')!, verifier, state: params.state, redirectUri: PUBLIC_REDIRECT, clientId: PUBLIC_APP });
    expect(res.status).toBe(200);
    const body = res.body as TokenResponse;
    expect(body.patient).toBe(patientB);
    const { payload } = await jose.jwtVerify(body.id_token!, await serverJwks(), { issuer: BASE_URL, audience: PUBLIC_APP });
    expect(payload.fhirUser).toBe(`${BASE_URL}/Practitioner/${practitionerId}`);

    const search = await bearer(body.access_token).get('/Observation');
    expect(search.status).toBe(200);
    const subjects = ((search.body as Bundle<Observation>).entry ?? []).map((e) => e.resource?.subject?.reference);
    expect(subjects).toHaveLength(2);
    expect(new Set(subjects)).toEqual(new Set([`Patient/${patientB}`]));
  });

  test('picking a patient that does not exist shows the picker again', async () => {
    const { params } = authorizeParams({ scope: 'launch/patient patient/*.rs' });
    const page = await anon().get('/auth/authorize').query(params);
    const signedIn = await login(requestIdOf(page.text), { username: DOCTOR_USER, password: DOCTOR_PASSWORD, action: 'allow' });
    const res = await login(requestIdOf(signedIn.text), { action: 'pick', patient: 'no-such-patient' });
    expect(res.status).toBe(200);
    expect(res.headers.location).toBeUndefined();
    expect(res.text).toMatch(/name="patient"/);
  });
});

// ---------------------------------------------------------------------------------------------
// 9. EHR launch

describe('EHR launch', () => {
  const doctorToken = (): Promise<string> => server.token('user/*.cruds launch', { fhirUser: `Practitioner/${practitionerId}` });

  async function newLaunch(patientId: string, asJson = false): Promise<string> {
    const req = bearer(await doctorToken()).post('/auth/launch');
    const res = asJson ? await req.send({ patient: patientId }) : await req.type('form').send({ patient: patientId });
    expect(res.status).toBe(201);
    expect(typeof res.body.launch).toBe('string');
    return res.body.launch as string;
  }

  test.each([
    ['a form', false],
    ['a JSON', true],
  ])('a launch made with %s body opens straight to its patient, no picker', async (_kind, asJson) => {
    const launch = await newLaunch(patientC, asJson);
    const flow = await authorizeAndSignIn({ launch, scope: 'launch patient/*.rs openid fhirUser', username: DOCTOR_USER, password: DOCTOR_PASSWORD });
    const res = await exchange(flow);
    expect(res.status).toBe(200);
    const body = res.body as TokenResponse;
    expect(body.patient).toBe(patientC);
    const { payload } = await jose.jwtVerify(body.id_token!, await serverJwks(), { issuer: BASE_URL, audience: PUBLIC_APP });
    expect(payload.fhirUser).toBe(`${BASE_URL}/Practitioner/${practitionerId}`);
    expect((await bearer(body.access_token).get(`/Patient/${patientC}`)).status).toBe(200);
  });

  test('a launch with an encounter puts the encounter in the token response; a launch id works once', async () => {
    const enc = await server.request().post('/Encounter').set('Content-Type', FHIR_JSON).send({ resourceType: 'Encounter', status: 'in-progress', class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' }, subject: { reference: `Patient/${patientC}` } });
    expect(enc.status).toBe(201);
    const made = await bearer(await doctorToken()).post('/auth/launch').type('form').send({ patient: patientC, encounter: enc.body.id as string });
    expect(made.status).toBe(201);
    const launch = made.body.launch as string;
    const flow = await authorizeAndSignIn({ launch, scope: 'launch patient/*.rs', username: DOCTOR_USER, password: DOCTOR_PASSWORD });
    const body = (await exchange(flow)).body as TokenResponse & { encounter?: string };
    expect(body.patient).toBe(patientC);
    expect(body.encounter).toBe(enc.body.id);
    const { params } = authorizeParams({ launch, scope: 'launch patient/*.rs' });
    const again = redirectParams(await anon().get('/auth/authorize').query(params));
    expect(again.get('error')).toBe('invalid_request');
    expect(again.get('code')).toBeNull();
  });

  test('an unknown launch redirects with an error and no code', async () => {
    const { params } = authorizeParams({ launch: 'no-such-launch', scope: 'launch patient/*.rs' });
    const q = redirectParams(await anon().get('/auth/authorize').query(params));
    expect(q.get('error')).toBeTruthy();
    expect(q.get('code')).toBeNull();
    expect(q.get('state')).toBe(params.state);
  });

  test('a Patient user cannot create a launch (403)', async () => {
    const token = await server.token('patient/*.rs launch', { patient: patientA, fhirUser: `Patient/${patientA}` });
    const res = await bearer(token).post('/auth/launch').type('form').send({ patient: patientA });
    expect(res.status).toBe(403);
  });

  test('creating a launch needs a token (401)', async () => {
    const res = await anon().post('/auth/launch').type('form').send({ patient: patientA });
    expect(res.status).toBe(401);
  });

  test('a launch for a patient that does not exist is 400', async () => {
    const res = await bearer(await doctorToken()).post('/auth/launch').type('form').send({ patient: 'no-such-patient' });
    expect(res.status).toBe(400);
  });

  test('the launch context honours the advertised context-banner and context-style capabilities', async () => {
    const config = (await anon().get('/.well-known/smart-configuration')).body as { capabilities: string[] };
    const launch = await newLaunch(patientC);
    const flow = await authorizeAndSignIn({ launch, scope: 'launch patient/*.rs', username: DOCTOR_USER, password: DOCTOR_PASSWORD });
    const body = (await exchange(flow)).body as TokenResponse;
    if (config.capabilities.includes('context-banner')) {
      expect(typeof body.need_patient_banner).toBe('boolean');
    }
    // SMART 2.x Conformance: context-style = "support for SMART's style URL launch context parameter".
    if (config.capabilities.includes('context-style')) {
      expect(typeof body.smart_style_url).toBe('string');
      expect(() => new URL(body.smart_style_url!)).not.toThrow();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// 10. Rate limiting

describe('rate limiting', () => {
  let limited: TestServer;
  beforeAll(async () => {
    limited = await startTestServer({ auth: { authRequestsPerMinute: 5 } });
  });
  afterAll(() => limited.close());

  test('the 6th token request in a minute is 429 with Retry-After', async () => {
    const post = (): supertest.Test => limited.anonymous().post('/auth/token').type('form').send({ grant_type: 'client_credentials', client_id: 'nobody' });
    for (let i = 0; i < 5; i++) {
      expect((await post()).status).toBe(401);
    }
    const res = await post();
    expect(res.status).toBe(429);
    const retryAfter = Number(res.headers['retry-after']);
    expect(Number.isInteger(retryAfter)).toBe(true);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    // Discovery is not an /auth request and stays reachable.
    expect((await limited.anonymous().get('/.well-known/smart-configuration')).status).toBe(200);
  });
});
