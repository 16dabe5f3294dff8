/**
 * The audit trail: every interaction, allowed or refused, and every token issuance and sign-in
 * leaves an AuditEvent (read back through `$audit-log`), with the interaction, action, outcome, the
 * user and client, this server as source, and the resource and patient as entities.
 */
import type { AuditEvent, Bundle, Patient } from '@medplum/fhirtypes';
import { observation, patient } from '../support/builders';
import { FHIR_JSON, startTestServer, type TestServer } from '../support/server';

let server: TestServer;
let patientA: string;
let patientB: string;

beforeAll(async () => {
  server = await startTestServer();
  const a = await server.request().post('/Patient').set('Content-Type', FHIR_JSON).send(patient({ name: [{ family: 'Auditwood' }] }));
  const b = await server.request().post('/Patient').set('Content-Type', FHIR_JSON).send(patient({ name: [{ family: 'Otherfield' }] }));
  patientA = (a.body as Patient).id as string;
  patientB = (b.body as Patient).id as string;
});

afterAll(async () => {
  await server.close();
});

async function auditLog(query = ''): Promise<AuditEvent[]> {
  const out: AuditEvent[] = [];
  let url: string | undefined = `/$audit-log?_count=1000${query}`;
  while (url) {
    const res = await server.request().get(url);
    expect(res.status).toBe(200);
    const bundle = res.body as Bundle<AuditEvent>;
    out.push(...(bundle.entry ?? []).map((e) => e.resource as AuditEvent));
    const next = bundle.link?.find((l) => l.relation === 'next')?.url;
    url = next ? next.replace(/^https?:\/\/[^/]+/, '') : undefined;
  }
  return out;
}

const subtype = (e: AuditEvent): string | undefined => e.subtype?.[0]?.code;
const client = (e: AuditEvent): string | undefined => e.agent?.find((a) => a.who?.identifier)?.who?.identifier?.value;
const user = (e: AuditEvent): string | undefined => e.agent?.find((a) => a.who?.reference)?.who?.reference;
const entities = (e: AuditEvent): string[] => (e.entity ?? []).map((x) => x.what?.reference ?? '');

describe('audit trail', () => {
  test('an allowed read names the interaction, action R, success, the user, the client, the resource and the patient', async () => {
    const agent = await server.as('patient/*.rs', { patient: patientA, fhirUser: `Patient/${patientA}`, clientId: 'audit-app' });
    expect((await agent.get(`/Patient/${patientA}`)).status).toBe(200);
    const events = (await auditLog(`&client=audit-app`)).filter((e) => subtype(e) === 'read');
    expect(events).toHaveLength(1);
    const e = events[0];
    expect(e.type?.code).toBe('rest');
    expect(e.action).toBe('R');
    expect(e.outcome).toBe('0');
    expect(user(e)).toBe(`Patient/${patientA}`);
    expect(client(e)).toBe('audit-app');
    expect(entities(e)).toContain(`Patient/${patientA}`);
    expect(e.source?.observer?.display).toBe('Continuum');
    expect(Date.now() - Date.parse(e.recorded as string)).toBeLessThan(60_000);
  });

  test('refusals are audited: no token (401), a scope that does not cover the type (403), another patient (404)', async () => {
    const none = await server.anonymous().get(`/Patient/${patientB}`);
    expect(none.status).toBe(401);
    const obsOnly = await server.as('patient/Observation.rs', { patient: patientA, clientId: 'audit-refused' });
    expect((await obsOnly.get('/Condition')).status).toBe(403);
    const mine = await server.as('patient/*.rs', { patient: patientA, clientId: 'audit-refused' });
    expect((await mine.get(`/Patient/${patientB}`)).status).toBe(404);

    const all = await auditLog();
    const unauthenticated = all.filter((e) => e.outcome === '4' && client(e) === undefined && entities(e).includes(`Patient/${patientB}`));
    expect(unauthenticated.length).toBeGreaterThanOrEqual(1);
    expect(unauthenticated[0].outcomeDesc).toContain('access token');
    const refused = all.filter((e) => client(e) === 'audit-refused');
    expect(refused.map((e) => [subtype(e), e.outcome])).toEqual([
      ['search-type', '4'],
      ['read', '4'],
    ]);
  });

  test('writes carry their action and the created resource; a failed create is a minor failure', async () => {
    const agent = await server.as('system/*.cruds', { clientId: 'audit-writer' });
    const created = await agent.post('/Observation').set('Content-Type', FHIR_JSON).send(observation(`Patient/${patientA}`));
    expect(created.status).toBe(201);
    const id = (created.body as { id: string }).id;
    expect((await agent.delete(`/Observation/${id}`)).status).toBe(204);
    const bad = await agent.post('/Observation').set('Content-Type', FHIR_JSON).send({ resourceType: 'Observation', status: 42 });
    expect(bad.status).toBe(400);
    const events = await auditLog('&client=audit-writer');
    expect(events.map((e) => [subtype(e), e.action, e.outcome])).toEqual([
      ['create', 'C', '0'],
      ['delete', 'D', '0'],
      ['create', 'C', '4'],
    ]);
    expect(entities(events[0])).toEqual([`Observation/${id}`, `Patient/${patientA}`]);
  });

  test('each entry of a batch is audited, and the batch itself', async () => {
    const agent = await server.as('system/*.cruds', { clientId: 'audit-batch' });
    const res = await agent
      .post('/')
      .set('Content-Type', FHIR_JSON)
      .send({
        resourceType: 'Bundle',
        type: 'batch',
        entry: [{ request: { method: 'GET', url: `Patient/${patientA}` } }, { request: { method: 'GET', url: 'Patient/no-such-id' } }],
      });
    expect(res.status).toBe(200);
    const events = await auditLog('&client=audit-batch');
    expect(events.map((e) => [subtype(e), e.outcome]).sort()).toEqual([
      ['batch', '0'],
      ['read', '0'],
      ['read', '4'],
    ].sort());
  });

  test('token issuance and sign-in failures are audited as user authentication events', async () => {
    const { secret } = await server.continuum.auth.clients.add({ clientId: 'audit-backend', type: 'confidential-symmetric', scope: 'system/*.rs' });
    const basic = `Basic ${Buffer.from(`audit-backend:${secret as string}`).toString('base64')}`;
    const ok = await server.anonymous().post('/auth/token').set('Authorization', basic).type('form').send({ grant_type: 'client_credentials', scope: 'system/Patient.rs' });
    expect(ok.status).toBe(200);
    const wrong = await server.anonymous().post('/auth/token').type('form').send({ grant_type: 'client_credentials', client_id: 'audit-backend' });
    expect(wrong.status).toBe(401);
    const events = (await auditLog('&client=audit-backend')).filter((e) => e.type?.code === '110114');
    expect(events.map((e) => [subtype(e), e.outcome])).toEqual([
      ['token', '0'],
      ['token', '4'],
    ]);
    expect(events[1].outcomeDesc).toContain('invalid_client');
  });

  test("a patient's token reads only the audit events about that patient", async () => {
    const agent = await server.as('patient/*.rs', { patient: patientA, clientId: 'audit-self' });
    const res = await agent.get('/$audit-log?_count=1000');
    expect(res.status).toBe(200);
    const events = ((res.body as Bundle<AuditEvent>).entry ?? []).map((e) => e.resource as AuditEvent);
    expect(events.length).toBeGreaterThan(0);
    for (const e of events) {
      expect(entities(e)).toContain(`Patient/${patientA}`);
    }
    const other = await agent.get(`/$audit-log?patient=${patientB}`);
    expect((other.body as Bundle).entry ?? []).toHaveLength(0);
    const noAudit = await server.as('patient/Observation.rs', { patient: patientA });
    expect((await noAudit.get('/$audit-log')).status).toBe(403);
  });

  test('$audit-log pages with next links that neither skip nor repeat', async () => {
    const all = await auditLog();
    const paged: AuditEvent[] = [];
    let url: string | undefined = '/$audit-log?_count=3';
    while (url) {
      const res = await server.request().get(url);
      const bundle = res.body as Bundle<AuditEvent>;
      paged.push(...(bundle.entry ?? []).map((e) => e.resource as AuditEvent));
      const next = bundle.link?.find((l) => l.relation === 'next')?.url;
      url = next ? next.replace(/^https?:\/\/[^/]+/, '') : undefined;
    }
    // The paging requests are audited too, so the trail grew: the first `all.length` must match.
    expect(paged.slice(0, all.length).map((e) => e.id)).toEqual(all.map((e) => e.id));
    expect(new Set(paged.map((e) => e.id)).size).toBe(paged.length);
  });
});
