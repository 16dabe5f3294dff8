/**
 * A trusted external identity provider (an EHR vendor's authorization server): its JWTs are
 * accepted when signed by a key of its JWKS with its issuer and this server's audience, and its
 * claims map onto scopes, patient, user and client. Anything else from it is refused (401).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Bundle, Observation, Patient } from '@medplum/fhirtypes';
import type * as Jose from 'jose';
import { observation, patient } from '../support/builders';
import { BASE_URL, FHIR_JSON, startTestServer, type TestServer } from '../support/server';

const jose = process.getBuiltinModule('node:module').createRequire(__filename)('jose') as typeof Jose;
type Key = Awaited<ReturnType<typeof jose.generateKeyPair>>['privateKey'];

const ISSUER = 'https://idp.ehr.example';
let jwksServer: Server;
let jwksUri: string;
let signingKey: Key;
let strangerKey: Key;
let server: TestServer;
let patientA: string;
let patientB: string;

beforeAll(async () => {
  const pair = await jose.generateKeyPair('RS256', { extractable: true });
  signingKey = pair.privateKey;
  strangerKey = (await jose.generateKeyPair('RS256')).privateKey;
  const jwk = { ...(await jose.exportJWK(pair.publicKey)), kid: 'ehr-1', alg: 'RS256', use: 'sig' };
  jwksServer = createServer((_req, res) => {
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
  jwksUri = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks`;
  server = await startTestServer({
    auth: {
      trustedIssuers: [{ issuer: ISSUER, jwksUri, scopeClaim: 'roles', scopeMap: { clinician: 'user/*.rs', 'patient-portal': 'patient/*.rs' }, patientClaim: 'ehr_patient' }],
    },
  });
  const a = await server.request().post('/Patient').set('Content-Type', FHIR_JSON).send(patient({ name: [{ family: 'Externa' }] }));
  const b = await server.request().post('/Patient').set('Content-Type', FHIR_JSON).send(patient({ name: [{ family: 'Internus' }] }));
  patientA = (a.body as Patient).id as string;
  patientB = (b.body as Patient).id as string;
  for (const p of [patientA, patientB]) {
    await server.request().post('/Observation').set('Content-Type', FHIR_JSON).send(observation(`Patient/${p}`));
  }
});

afterAll(async () => {
  await server.close();
  await new Promise((resolve) => jwksServer.close(resolve));
});

async function ehrToken(claims: Record<string, unknown>, options: { key?: Key; issuer?: string; audience?: string; kid?: string } = {}): Promise<string> {
  return new jose.SignJWT(claims)
    .setProtectedHeader({ alg: 'RS256', kid: options.kid ?? 'ehr-1' })
    .setIssuer(options.issuer ?? ISSUER)
    .setAudience(options.audience ?? BASE_URL)
    .setSubject('user-42')
    .setIssuedAt()
    .setExpirationTime('10m')
    .sign(options.key ?? signingKey);
}

const get = (path: string, token: string) => server.anonymous().get(path).set('Authorization', `Bearer ${token}`);

describe('trusted external issuer', () => {
  test('a clinician role maps to user/*.rs: both patients are visible', async () => {
    const token = await ehrToken({ roles: ['clinician'], fhirUser: 'Practitioner/dr-ext', azp: 'ehr-app' });
    const res = await get('/Observation', token);
    expect(res.status).toBe(200);
    expect((res.body as Bundle).total).toBe(2);
    expect((await get('/Patient', token)).status).toBe(200);
    // Read only: the mapped scope has no create.
    const create = await server.anonymous().post('/Patient').set('Authorization', `Bearer ${token}`).set('Content-Type', FHIR_JSON).send(patient());
    expect(create.status).toBe(403);
  });

  test('a portal role with a patient claim sees only that patient', async () => {
    const token = await ehrToken({ roles: 'patient-portal', ehr_patient: patientA });
    const res = await get('/Observation', token);
    expect(res.status).toBe(200);
    const subjects = ((res.body as Bundle<Observation>).entry ?? []).map((e) => e.resource?.subject?.reference);
    expect(subjects).toEqual([`Patient/${patientA}`]);
    expect((await get(`/Patient/${patientB}`, token)).status).toBe(404);
  });

  test('SMART scopes in the claim pass through; unknown values grant nothing', async () => {
    const smart = await ehrToken({ roles: 'system/Patient.rs' });
    expect((await get('/Patient', smart)).status).toBe(200);
    expect((await get('/Observation', smart)).status).toBe(403);
    const nothing = await ehrToken({ roles: ['admin', 'superuser'] });
    expect((await get('/Patient', nothing)).status).toBe(403);
  });

  test.each([
    ['signed by a key not in its JWKS', { key: 'stranger' }],
    ['for another audience', { audience: 'https://other.example/fhir' }],
    ['from an issuer not trusted', { issuer: 'https://evil.example' }],
    ['with an unknown kid', { kid: 'nope' }],
  ])('a token %s is 401', async (_label, variant) => {
    const { key, ...rest } = variant as { key?: string; issuer?: string; audience?: string; kid?: string };
    const token = await ehrToken({ roles: ['clinician'] }, { ...rest, key: key === 'stranger' ? strangerKey : undefined });
    const res = await get('/Patient', token);
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toMatch(/^Bearer /);
  });
});
