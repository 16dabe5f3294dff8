/**
 * Bulk Data Access 2.0 `$export` (https://hl7.org/fhir/uv/bulkdata/export.html): kick-off at the
 * system, `Patient` and `Group/[id]` levels, its parameters and their errors, status polling and the
 * manifest, the NDJSON files, the snapshot at `transactionTime`, cancellation, one export per
 * client (429), who may export (403 / 401 / 404 for another client's job), file expiry, and a job
 * that survives its process (picked up by the background runner's sweep).
 *
 * The main store holds a Practitioner, an Organization, Patients A, B and C with Observations
 * (A: heart rate, weight, glucose; B: heart rate, weight; C: glucose), Conditions of A and B, an
 * Encounter of A, an Observation without a subject (in nobody's compartment) and Group G whose
 * members are A, C and the Practitioner. After the set-up, B's Condition gets a second version
 * (the `_since` tests). Tests that change data, and the expiry test, use servers of their own.
 *
 * Each test exports as a client of its own (one export per client at a time).
 */
import { randomUUID } from 'node:crypto';
import type { Bundle, BundleEntry, Resource } from '@medplum/fhirtypes';
import type supertest from 'supertest';
import type { ExportJob } from '../../src/store/api';
import { BASE_URL, FHIR_JSON, startTestServer, type TestServer } from '../support/server';
import { asText, outcome } from '../support/http';

jest.setTimeout(60_000);

const NDJSON = 'application/fhir+ndjson';
const LOINC = 'http://loinc.org';
const HEART_RATE = '8867-4';
const WEIGHT = '29463-7';
const GLUCOSE = '2339-0';

interface OutputEntry {
  type: string;
  url: string;
  count?: number;
}

interface Manifest {
  transactionTime: string;
  request: string;
  requiresAccessToken: boolean;
  output: OutputEntry[];
  error: unknown[];
}

type Files = Map<string, Resource[]>;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const rel = (url: string): string => {
  if (!url.startsWith(`${BASE_URL}/`)) {
    throw new Error(`not an absolute URL on ${BASE_URL}: ${url}`);
  }
  return url.slice(BASE_URL.length);
};
const keys = (resources: Resource[]): string[] => resources.map((r) => `${r.resourceType}/${r.id as string}`).sort();
const sorted = (xs: string[]): string[] => [...xs].sort();
const q = encodeURIComponent;



/** A client of its own (an export each) with the given scopes. */
const client = (server: TestServer, scope = 'system/*.rs', extra: { patient?: string; fhirUser?: string } = {}): Promise<supertest.Agent> =>
  server.as(scope, { clientId: `bulk-${randomUUID().slice(0, 8)}`, ...extra });

async function kickOff(agent: supertest.Agent, url: string): Promise<string> {
  const res = await agent.get(url).set('Accept', FHIR_JSON).set('Prefer', 'respond-async');
  expect(outcome(res)).toMatchObject({ status: 202 });
  const location = res.headers['content-location'] as string | undefined;
  expect(location).toMatch(/^http:\/\/continuum\.test\/\$export-status\/[^/?#]+$/);
  return location as string;
}

/** Polls until the manifest comes (202s must carry X-Progress); returns it and how many 202s came first. */
async function poll(agent: supertest.Agent, statusUrl: string, timeoutMs = 30_000): Promise<{ manifest: Manifest; accepted: number }> {
  const deadline = Date.now() + timeoutMs;
  let accepted = 0;
  for (;;) {
    const res = await agent.get(rel(statusUrl)).set('Accept', 'application/json');
    if (res.status === 200) {
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      return { manifest: res.body as Manifest, accepted };
    }
    expect(outcome(res)).toMatchObject({ status: 202 });
    expect(res.headers['x-progress']).toEqual(expect.any(String));
    accepted++;
    if (Date.now() > deadline) {
      throw new Error(`the export at ${statusUrl} did not complete within ${timeoutMs} ms (last X-Progress: ${String(res.headers['x-progress'])})`);
    }
    await sleep(50);
  }
}

/** GET one file: NDJSON, one resource of the file's type per line. */
async function file(agent: supertest.Agent, entry: OutputEntry): Promise<Resource[]> {
  const res = await agent.get(rel(entry.url)).set('Accept', NDJSON).buffer(true).parse(asText);
  expect(outcome(res)).toMatchObject({ status: 200 });
  expect(res.headers['content-type']).toMatch(/^application\/fhir\+ndjson/);
  const text = res.body as string;
  expect(text === '' || text.endsWith('\n')).toBe(true);
  const lines = text.split('\n').filter((l) => l !== '');
  const resources = lines.map((l) => JSON.parse(l) as Resource);
  for (const r of resources) {
    expect(r.resourceType).toBe(entry.type);
    expect(r.id).toEqual(expect.any(String));
  }
  return resources;
}

/** Downloads every file of a manifest, checking counts and that nothing comes twice. */
async function download(agent: supertest.Agent, manifest: Manifest, label = manifest.request): Promise<Files> {
  const files: Files = new Map();
  for (const entry of manifest.output) {
    expect(files.has(entry.type)).toBe(false); // one file per type
    const resources = await file(agent, entry);
    if (entry.count !== undefined) {
      expect({ label, type: entry.type, count: resources.length }).toEqual({ label, type: entry.type, count: entry.count });
    }
    const ids = resources.map((r) => r.id as string);
    expect(new Set(ids).size).toBe(ids.length);
    files.set(entry.type, resources);
  }
  return files;
}

/** Kick-off, poll, download. */
async function exportAll(agent: supertest.Agent, url: string): Promise<{ manifest: Manifest; files: Files; statusUrl: string }> {
  const statusUrl = await kickOff(agent, url);
  const { manifest } = await poll(agent, statusUrl);
  return { manifest, files: await download(agent, manifest), statusUrl };
}

/** type -> sorted "Type/id" keys of a download. */
const contents = (files: Files): Record<string, string[]> => Object.fromEntries([...files].map(([type, rs]) => [type, keys(rs)]));

function checkManifest(manifest: Manifest, url: string, startedAt: number): void {
  expect(manifest.requiresAccessToken).toBe(true);
  expect(manifest.error).toEqual([]);
  expect(decodeURIComponent(manifest.request)).toBe(`${BASE_URL}${url}`);
  const tx = Date.parse(manifest.transactionTime);
  expect(manifest.transactionTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/);
  expect(tx).toBeGreaterThanOrEqual(startedAt - 1);
  expect(tx).toBeLessThanOrEqual(Date.now());
  for (const o of manifest.output) {
    expect(o.url).toMatch(/^http:\/\/continuum\.test\/\S+$/);
  }
  const types = manifest.output.map((o) => o.type);
  expect(new Set(types).size).toBe(types.length);
}

// ---------------------------------------------------------------------------------------------
// The main data set

let server: TestServer;
const ids: Record<string, string> = {};
/** Type -> "Type/id" of everything stored (before B's Condition's second version). */
let all: Record<string, string[]>;
/** An instant between the set-up and the second version of B's Condition. */
let sinceMark: string;

function observation(subject: string | undefined, code: string): Resource {
  return {
    resourceType: 'Observation',
    status: 'final',
    code: { coding: [{ system: LOINC, code }] },
    ...(subject ? { subject: { reference: subject } } : {}),
    valueQuantity: { value: 70, unit: 'x', system: 'http://unitsofmeasure.org', code: '1' },
  };
}

beforeAll(async () => {
  server = await startTestServer();
  // Ids are known before the transaction: urn:uuid full URLs, resolved by the server.
  const plan: [string, Resource][] = [];
  const urn: Record<string, string> = {};
  const add = (key: string, build: (ref: (k: string) => string) => Resource): void => {
    urn[key] = `urn:uuid:${randomUUID()}`;
    plan.push([key, build((k) => urn[k])]);
  };
  add('practitioner', () => ({ resourceType: 'Practitioner', name: [{ family: 'Doctor' }] }));
  add('organization', () => ({ resourceType: 'Organization', name: 'Clinic' }));
  for (const p of ['A', 'B', 'C']) {
    add(`patient${p}`, (ref) => ({ resourceType: 'Patient', name: [{ family: `Patient${p}` }], generalPractitioner: [{ reference: ref('practitioner') }] }));
  }
  add('obsA-hr', (ref) => observation(ref('patientA'), HEART_RATE));
  add('obsA-weight', (ref) => observation(ref('patientA'), WEIGHT));
  add('obsA-glucose', (ref) => observation(ref('patientA'), GLUCOSE));
  add('obsB-hr', (ref) => observation(ref('patientB'), HEART_RATE));
  add('obsB-weight', (ref) => observation(ref('patientB'), WEIGHT));
  add('obsC-glucose', (ref) => observation(ref('patientC'), GLUCOSE));
  add('obs-nobody', () => observation(undefined, HEART_RATE));
  add('conditionA', (ref) => ({ resourceType: 'Condition', subject: { reference: ref('patientA') }, code: { text: 'Hypertension' } }));
  add('conditionB', (ref) => ({ resourceType: 'Condition', subject: { reference: ref('patientB') }, code: { text: 'Diabetes' } }));
  add('encounterA', (ref) => ({
    resourceType: 'Encounter',
    status: 'finished',
    class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' },
    subject: { reference: ref('patientA') },
    serviceProvider: { reference: ref('organization') },
  }));
  add('group', (ref) => ({
    resourceType: 'Group',
    type: 'person',
    actual: true,
    member: [{ entity: { reference: ref('patientA') } }, { entity: { reference: ref('patientC') } }, { entity: { reference: ref('practitioner') } }],
  }));
  const bundle: Bundle = {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: plan.map(([key, resource]): BundleEntry => ({ fullUrl: urn[key], resource, request: { method: 'POST', url: resource.resourceType } })),
  };
  const res = await server.request().post('/').set('Content-Type', FHIR_JSON).send(bundle);
  if (res.status !== 200) {
    throw new Error(`set-up transaction answered ${res.status}: ${JSON.stringify(res.body)}`);
  }
  const answers = (res.body as Bundle).entry ?? [];
  plan.forEach(([key], i) => {
    const location = answers[i]?.response?.location ?? '';
    ids[key] = location.split('/')[1];
  });
  const ref = (key: string): string => {
    const type = plan.find(([k]) => k === key)?.[1].resourceType as string;
    return `${type}/${ids[key]}`;
  };
  all = {};
  for (const [key, resource] of plan) {
    (all[resource.resourceType] ??= []).push(ref(key));
  }
  for (const t of Object.keys(all)) {
    all[t].sort();
  }
  // B's Condition changes after sinceMark.
  await sleep(20);
  sinceMark = new Date().toISOString();
  await sleep(20);
  const put = await server
    .request()
    .put(`/Condition/${ids.conditionB}`)
    .set('Content-Type', FHIR_JSON)
    .send({ resourceType: 'Condition', id: ids.conditionB, subject: { reference: `Patient/${ids.patientB}` }, code: { text: 'Diabetes type 2' } });
  if (put.status !== 200) {
    throw new Error(`set-up update answered ${put.status}: ${JSON.stringify(put.body)}`);
  }
});

afterAll(async () => {
  await server?.close();
});

const refOf = (type: string, key: string): string => `${type}/${ids[key]}`;

// ---------------------------------------------------------------------------------------------

describe('kick-off', () => {
  test.each([
    ['system', '/$export'],
    ['Patient', '/Patient/$export'],
    ['Group', '/Group/<group>/$export'],
  ])('%s level with Prefer: respond-async: 202 and an absolute Content-Location', async (_level, template) => {
    const agent = await client(server);
    const url = template.replace('<group>', ids.group);
    const statusUrl = await kickOff(agent, url);
    // And the job it names is the caller's and completes.
    const { manifest } = await poll(agent, statusUrl);
    expect(manifest.output.length).toBeGreaterThan(0);
  });

  test('the parameters may also be sent as _outputFormat=application/fhir+ndjson (and its short forms)', async () => {
    for (const format of [NDJSON, 'application/ndjson', 'ndjson']) {
      const agent = await client(server);
      await poll(agent, await kickOff(agent, `/$export?_type=Patient&_outputFormat=${q(format)}`));
    }
  });

  test.each([
    ['system', '/$export'],
    ['Patient', '/Patient/$export'],
    ['Group', '/Group/<group>/$export'],
  ])('%s level without Prefer: respond-async: 400', async (_level, template) => {
    const agent = await client(server);
    const res = await agent.get(template.replace('<group>', ids.group)).set('Accept', FHIR_JSON);
    expect(outcome(res)).toMatchObject({ status: 400, body: { resourceType: 'OperationOutcome' } });
  });

  test.each([
    ['an unknown parameter', '/$export?_count=10'],
    ['an unknown parameter at Patient level', '/Patient/$export?foo=bar'],
    ['a bad _outputFormat', `/$export?_outputFormat=${q('application/fhir+json')}`],
    ['another bad _outputFormat', '/$export?_outputFormat=text/csv'],
    ['an unknown _type', '/$export?_type=Patient,Spaceship'],
    ['a _typeFilter for a type not exported', `/$export?_type=Patient&_typeFilter=${q(`Observation?code=${LOINC}|${HEART_RATE}`)}`],
    ['a _typeFilter with an unknown search parameter', `/$export?_type=Observation&_typeFilter=${q('Observation?no-such-param=1')}`],
    ['a _typeFilter with a malformed value', `/$export?_type=Observation&_typeFilter=${q('Observation?date=not-a-date')}`],
    ['a _typeFilter with an unknown modifier', `/$export?_type=Observation&_typeFilter=${q('Observation?code:bogus=1')}`],
    ['a malformed _since', '/$export?_since=yesterday'],
  ])('%s: 400 with an OperationOutcome', async (_what, url) => {
    const agent = await client(server);
    const res = await agent.get(url).set('Accept', FHIR_JSON).set('Prefer', 'respond-async');
    expect(outcome(res)).toMatchObject({ status: 400, body: { resourceType: 'OperationOutcome' } });
  });

  test('a Group that does not exist: 404', async () => {
    const agent = await client(server);
    const res = await agent.get(`/Group/${randomUUID()}/$export`).set('Accept', FHIR_JSON).set('Prefer', 'respond-async');
    expect(outcome(res)).toMatchObject({ status: 404 });
  });
});

describe('status and manifest', () => {
  test('a system export: 200 with transactionTime, request, requiresAccessToken, one output per type, error []', async () => {
    const agent = await client(server);
    const startedAt = Date.now();
    const statusUrl = await kickOff(agent, '/$export');
    const { manifest } = await poll(agent, statusUrl);
    checkManifest(manifest, '/$export', startedAt);
    expect(sorted(manifest.output.map((o) => o.type))).toEqual(sorted(Object.keys(all)));
    // Polling again answers the same manifest, and says until when the files stay (an hour by default).
    const again = await agent.get(rel(statusUrl)).set('Accept', 'application/json');
    expect(outcome(again)).toMatchObject({ status: 200, body: manifest });
    const expires = Date.parse(again.headers['expires'] as string);
    expect(expires).toBeGreaterThan(Date.now() + 50 * 60_000);
    expect(expires).toBeLessThanOrEqual(Date.now() + 61 * 60_000);
  });

  test('a job that has not run yet: 202 with X-Progress, then 200 once it has run', async () => {
    // A job held by another (simulated) process: it stays queued until its lease lapses.
    const clientId = `bulk-${randomUUID().slice(0, 8)}`;
    const agent = await server.as('system/*.rs', { clientId });
    const job = queuedJob(clientId, { types: ['Patient'] });
    await server.continuum.store.exportJobs.create(job);
    expect(await server.continuum.store.exportJobs.claim(job.id, 'someone-else', 60_000)).toBe(true);
    const statusPath = `/$export-status/${job.id}`;
    const waiting = await agent.get(statusPath).set('Accept', 'application/json');
    expect(outcome(waiting)).toMatchObject({ status: 202 });
    expect(waiting.headers['x-progress']).toEqual(expect.any(String));
    // No file while it runs.
    const early = await agent.get(`/$export-file/${job.id}/Patient`).set('Accept', NDJSON);
    expect(outcome(early)).toMatchObject({ status: 404 });
    // The other process lets go: this server's runner takes the job over (it sweeps every 2 s).
    expect(await server.continuum.store.exportJobs.claim(job.id, 'someone-else', 1)).toBe(true);
    const { manifest, accepted } = await poll(agent, `${BASE_URL}${statusPath}`);
    expect(accepted).toBeGreaterThan(0);
    const files = await download(agent, manifest);
    expect(contents(files)).toEqual({ Patient: all.Patient });
  });
});

describe('files', () => {
  test('a system export: every stored resource, once, in the file of its type, as read', async () => {
    const agent = await client(server);
    const { files } = await exportAll(agent, '/$export');
    expect(contents(files)).toEqual(all);
    // Each line is the resource as the server serves it (current version).
    for (const [type, resources] of files) {
      for (const r of resources) {
        const read = await server.request().get(`/${type}/${r.id as string}`).set('Accept', FHIR_JSON);
        expect(read.body).toEqual(r);
      }
    }
  });

  test('a file needs the token (requiresAccessToken: true): 401 without one', async () => {
    const agent = await client(server);
    const { manifest } = await exportAll(agent, '/$export?_type=Patient');
    const res = await server.anonymous().get(rel(manifest.output[0].url)).set('Accept', NDJSON);
    expect(res.status).toBe(401);
  });

  test('a type the export has no file for: 404', async () => {
    const agent = await client(server);
    const { manifest } = await exportAll(agent, '/$export?_type=Patient');
    const jobId = rel(manifest.output[0].url).split('/')[2];
    const res = await agent.get(`/$export-file/${jobId}/Observation`).set('Accept', NDJSON);
    expect(outcome(res)).toMatchObject({ status: 404 });
  });
});

describe('parameters restrict the export', () => {
  test('_type: only the types named, one file each', async () => {
    const agent = await client(server);
    const { manifest, files } = await exportAll(agent, '/$export?_type=Patient,Condition');
    expect(sorted(manifest.output.map((o) => o.type))).toEqual(['Condition', 'Patient']);
    expect(contents(files)).toEqual({ Patient: all.Patient, Condition: all.Condition });
  });

  test('_type repeated: the union', async () => {
    const agent = await client(server);
    const { files } = await exportAll(agent, '/$export?_type=Patient&_type=Encounter');
    expect(contents(files)).toEqual({ Patient: all.Patient, Encounter: all.Encounter });
  });

  test('_since: only what changed since (B\'s Condition, in its new version)', async () => {
    const agent = await client(server);
    const { files } = await exportAll(agent, `/$export?_since=${q(sinceMark)}`);
    expect(contents(files)).toEqual({ Condition: [refOf('Condition', 'conditionB')] });
    expect((files.get('Condition')?.[0] as { code?: { text?: string } }).code?.text).toBe('Diabetes type 2');
  });

  test('_since before everything: everything', async () => {
    const agent = await client(server);
    const { files } = await exportAll(agent, '/$export?_since=2000-01-01T00:00:00Z');
    expect(contents(files)).toEqual(all);
  });

  test('_since with _type', async () => {
    const agent = await client(server);
    const { manifest } = await exportAll(agent, `/$export?_type=Patient,Observation&_since=${q(sinceMark)}`);
    expect(manifest.output).toEqual([]);
  });

  test('_typeFilter=Observation?code=...: only the matching Observations', async () => {
    const agent = await client(server);
    const { files } = await exportAll(agent, `/$export?_type=Observation&_typeFilter=${q(`Observation?code=${LOINC}|${HEART_RATE}`)}`);
    expect(contents(files)).toEqual({ Observation: sorted(['obsA-hr', 'obsB-hr', 'obs-nobody'].map((k) => refOf('Observation', k))) });
  });

  test('several _typeFilters for one type are OR-ed (comma-separated or repeated)', async () => {
    const expected = sorted(['obsA-hr', 'obsB-hr', 'obs-nobody', 'obsA-glucose', 'obsC-glucose'].map((k) => refOf('Observation', k)));
    const hr = `Observation?code=${LOINC}|${HEART_RATE}`;
    const glucose = `Observation?code=${LOINC}|${GLUCOSE}`;
    for (const url of [`/$export?_type=Observation&_typeFilter=${q(`${hr},${glucose}`)}`, `/$export?_type=Observation&_typeFilter=${q(hr)}&_typeFilter=${q(glucose)}`]) {
      const agent = await client(server);
      const { files } = await exportAll(agent, url);
      expect(contents(files)).toEqual({ Observation: expected });
    }
  });

  test('a _typeFilter with several parameters ANDs them; other types stay whole', async () => {
    const agent = await client(server);
    const filter = `Observation?code=${LOINC}|${HEART_RATE}&subject=Patient/${ids.patientB}`;
    const { files } = await exportAll(agent, `/$export?_type=Observation,Patient&_typeFilter=${q(filter)}`);
    expect(contents(files)).toEqual({ Observation: [refOf('Observation', 'obsB-hr')], Patient: all.Patient });
  });

  test('a _typeFilter query whose own value holds a comma (an OR inside one parameter)', async () => {
    const agent = await client(server);
    const filter = `Observation?code=${LOINC}|${WEIGHT},${LOINC}|${GLUCOSE}`;
    const { files } = await exportAll(agent, `/$export?_type=Observation&_typeFilter=${q(filter)}`);
    expect(contents(files)).toEqual({ Observation: sorted(['obsA-weight', 'obsB-weight', 'obsA-glucose', 'obsC-glucose'].map((k) => refOf('Observation', k))) });
  });
});

describe('levels', () => {
  /** What a Patient-level export of all three patients holds (Group is in the Patient compartment through `member`). */
  const patientLevel = (): Record<string, string[]> => ({
    Patient: all.Patient,
    Observation: sorted(['obsA-hr', 'obsA-weight', 'obsA-glucose', 'obsB-hr', 'obsB-weight', 'obsC-glucose'].map((k) => refOf('Observation', k))),
    Condition: all.Condition,
    Encounter: all.Encounter,
    Group: all.Group,
  });

  test('Patient level: only Patient-compartment types, and only resources of some patient', async () => {
    const agent = await client(server);
    const startedAt = Date.now();
    const { manifest, files } = await exportAll(agent, '/Patient/$export');
    checkManifest(manifest, '/Patient/$export', startedAt);
    // Not the Practitioner or the Organization (no compartment), not the Observation of nobody.
    expect(contents(files)).toEqual(patientLevel());
  });

  test('Patient level with _type and _typeFilter', async () => {
    const agent = await client(server);
    const { files } = await exportAll(agent, `/Patient/$export?_type=Observation&_typeFilter=${q(`Observation?code=${LOINC}|${HEART_RATE}`)}`);
    expect(contents(files)).toEqual({ Observation: sorted(['obsA-hr', 'obsB-hr'].map((k) => refOf('Observation', k))) });
  });

  test('Patient level: _type naming a type outside the compartment is refused', async () => {
    const agent = await client(server);
    const res = await agent.get('/Patient/$export?_type=Practitioner').set('Accept', FHIR_JSON).set('Prefer', 'respond-async');
    expect(outcome(res)).toMatchObject({ status: 400 });
  });

  test('Group level: only the member patients and their compartments', async () => {
    const agent = await client(server);
    const url = `/Group/${ids.group}/$export`;
    const startedAt = Date.now();
    const { manifest, files } = await exportAll(agent, url);
    checkManifest(manifest, url, startedAt);
    expect(contents(files)).toEqual({
      Patient: sorted([refOf('Patient', 'patientA'), refOf('Patient', 'patientC')]),
      Observation: sorted(['obsA-hr', 'obsA-weight', 'obsA-glucose', 'obsC-glucose'].map((k) => refOf('Observation', k))),
      Condition: [refOf('Condition', 'conditionA')],
      Encounter: all.Encounter,
      Group: all.Group,
    });
  });

  test('Group level with _type and _since', async () => {
    const agent = await client(server);
    const { manifest } = await exportAll(agent, `/Group/${ids.group}/$export?_type=Condition&_since=${q(sinceMark)}`);
    // B's Condition changed, but B is not a member.
    expect(manifest.output).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------

function queuedJob(clientId: string, params: Partial<ExportJob['params']>, status: ExportJob['status'] = 'accepted'): ExportJob {
  const now = new Date().toISOString();
  return {
    id: randomUUID(),
    clientId,
    status,
    request: `${BASE_URL}/$export`,
    params: { level: 'system', types: ['Patient'], typeFilters: {}, ...params },
    transactionTime: now,
    progress: status === 'in-progress' ? 'Patient (1 of 1 types), 0 resources' : 'queued',
    createdAt: now,
  };
}

describe('jobs', () => {
  test('DELETE on the status URL: 202, then the status and the files are 404', async () => {
    const agent = await client(server);
    const { manifest, statusUrl } = await exportAll(agent, '/$export?_type=Patient');
    const del = await agent.delete(rel(statusUrl)).set('Accept', FHIR_JSON);
    expect(outcome(del)).toMatchObject({ status: 202 });
    expect(outcome(await agent.get(rel(statusUrl)).set('Accept', 'application/json'))).toMatchObject({ status: 404 });
    expect(outcome(await agent.get(rel(manifest.output[0].url)).set('Accept', NDJSON))).toMatchObject({ status: 404 });
    // A new export may start at once.
    await poll(agent, await kickOff(agent, '/$export?_type=Patient'));
  });

  test('DELETE while the export runs: 202, and the job never comes back (status 404 after it would have finished)', async () => {
    const agent = await client(server);
    const statusUrl = await kickOff(agent, '/$export');
    const del = await agent.delete(rel(statusUrl)).set('Accept', FHIR_JSON);
    expect(outcome(del)).toMatchObject({ status: 202 });
    expect(outcome(await agent.get(rel(statusUrl)).set('Accept', 'application/json'))).toMatchObject({ status: 404 });
    // Long enough for the runner to finish walking every type.
    await sleep(1500);
    const later = await agent.get(rel(statusUrl)).set('Accept', 'application/json');
    expect(outcome(later)).toMatchObject({ status: 404 });
  });

  test('DELETE of a job that has not started: 202, and it never runs', async () => {
    const clientId = `bulk-${randomUUID().slice(0, 8)}`;
    const agent = await server.as('system/*.rs', { clientId });
    const job = queuedJob(clientId, {});
    await server.continuum.store.exportJobs.create(job);
    expect(await server.continuum.store.exportJobs.claim(job.id, 'someone-else', 60_000)).toBe(true);
    expect(outcome(await agent.delete(`/$export-status/${job.id}`).set('Accept', FHIR_JSON))).toMatchObject({ status: 202 });
    expect(await server.continuum.store.exportJobs.claim(job.id, 'someone-else', 1)).toBe(false); // cancelled: nobody may take it
    await sleep(2500); // a sweep
    expect(outcome(await agent.get(`/$export-status/${job.id}`).set('Accept', 'application/json'))).toMatchObject({ status: 404 });
    // The client is free to export again.
    await poll(agent, await kickOff(agent, '/$export?_type=Patient'));
  });

  test('a second export from the same client while one is active: 429 with Retry-After; other clients are not held up', async () => {
    const clientId = `bulk-${randomUUID().slice(0, 8)}`;
    const agent = await server.as('system/*.rs', { clientId });
    const job = queuedJob(clientId, {});
    await server.continuum.store.exportJobs.create(job);
    expect(await server.continuum.store.exportJobs.claim(job.id, 'someone-else', 60_000)).toBe(true);
    const res = await agent.get('/$export').set('Accept', FHIR_JSON).set('Prefer', 'respond-async');
    expect(outcome(res)).toMatchObject({ status: 429, body: { resourceType: 'OperationOutcome' } });
    expect(res.headers['retry-after']).toMatch(/^\d+$/);
    // Another client exports meanwhile.
    const other = await client(server);
    await poll(other, await kickOff(other, '/$export?_type=Patient'));
    // Once the first job is done, the first client may start another.
    expect(await server.continuum.store.exportJobs.claim(job.id, 'someone-else', 1)).toBe(true);
    await poll(agent, `${BASE_URL}/$export-status/${job.id}`);
    await poll(agent, await kickOff(agent, '/$export?_type=Patient'));
  });

  test("another client's token on the status, cancel and file URLs: 404, and the job is untouched", async () => {
    const owner = await client(server);
    const { manifest, statusUrl } = await exportAll(owner, '/$export?_type=Patient');
    const intruder = await client(server, 'system/*.cruds');
    expect(outcome(await intruder.get(rel(statusUrl)).set('Accept', 'application/json'))).toMatchObject({ status: 404 });
    expect(outcome(await intruder.get(rel(manifest.output[0].url)).set('Accept', NDJSON))).toMatchObject({ status: 404 });
    expect(outcome(await intruder.delete(rel(statusUrl)).set('Accept', FHIR_JSON))).toMatchObject({ status: 404 });
    expect(outcome(await owner.get(rel(statusUrl)).set('Accept', 'application/json'))).toMatchObject({ status: 200 });
    expect((await file(owner, manifest.output[0])).length).toBe(all.Patient.length);
  });

  test('an unknown job: 404', async () => {
    const agent = await client(server);
    expect(outcome(await agent.get(`/$export-status/${randomUUID()}`).set('Accept', 'application/json'))).toMatchObject({ status: 404 });
    expect(outcome(await agent.get('/$export-status/not-a-uuid').set('Accept', 'application/json'))).toMatchObject({ status: 404 });
    expect(outcome(await agent.get(`/$export-file/${randomUUID()}/Patient`).set('Accept', NDJSON))).toMatchObject({ status: 404 });
  });
});

describe('who may export', () => {
  test.each([
    ['patient/*.rs (bounded to patient A)', 'patient/*.rs', { patient: 'A' }, ['/$export', '/Patient/$export', '/Group/<group>/$export']],
    ['system/Patient.rs for every type', 'system/Patient.rs', {}, ['/$export', '/Patient/$export', '/$export?_type=Patient,Observation']],
    ['user/*.rs of a Patient user', 'user/*.rs', { fhirUser: 'A' }, ['/$export', '/Patient/$export', '/Group/<group>/$export']],
    ['a token that may read but not search', 'system/*.r', {}, ['/$export', '/Patient/$export']],
    ['a granular system/Observation.rs?category=...', 'system/Patient.rs system/Observation.rs?category=vital-signs', {}, ['/$export?_type=Patient,Observation']],
  ])('%s: 403 at kick-off', async (_what, scope, context: { patient?: string; fhirUser?: string }, urls) => {
    const agent = await client(server, scope, {
      patient: context.patient ? ids[`patient${context.patient}`] : undefined,
      fhirUser: context.fhirUser ? `Patient/${ids[`patient${context.fhirUser}`]}` : undefined,
    });
    for (const url of urls) {
      const res = await agent.get(url.replace('<group>', ids.group)).set('Accept', FHIR_JSON).set('Prefer', 'respond-async');
      expect({ url, ...outcome(res) }).toMatchObject({ url, status: 403 });
    }
  });

  test('system/Patient.rs may export Patients (_type=Patient); system/*.read (SMART v1) may export everything', async () => {
    const narrow = await client(server, 'system/Patient.rs');
    const { files } = await exportAll(narrow, '/$export?_type=Patient');
    expect(contents(files)).toEqual({ Patient: all.Patient });
    const v1 = await client(server, 'system/*.read');
    expect(contents((await exportAll(v1, '/$export')).files)).toEqual(all);
  });

  test('no token: 401 at kick-off, status and file', async () => {
    const agent = await client(server);
    const { manifest, statusUrl } = await exportAll(agent, '/$export?_type=Patient');
    for (const path of ['/$export', '/Patient/$export', `/Group/${ids.group}/$export`, rel(statusUrl), rel(manifest.output[0].url)]) {
      const res = await server.anonymous().get(path).set('Accept', FHIR_JSON).set('Prefer', 'respond-async');
      expect({ path, status: res.status }).toEqual({ path, status: 401 });
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Servers of their own

describe('snapshot at transactionTime', () => {
  let snap: TestServer;
  const made: Record<string, string> = {};

  beforeAll(async () => {
    snap = await startTestServer();
    const post = async (key: string, resource: Resource): Promise<void> => {
      const res = await snap.request().post(`/${resource.resourceType}`).set('Content-Type', FHIR_JSON).send(resource);
      expect(outcome(res)).toMatchObject({ status: 201 });
      made[key] = (res.body as Resource).id as string;
    };
    await post('p1', { resourceType: 'Patient', name: [{ family: 'Before' }] });
    await post('p2', { resourceType: 'Patient', name: [{ family: 'DeletedLater' }] });
    await post('o1', observation(`Patient/${made.p1}`, HEART_RATE));
    await post('o2', observation(`Patient/${made.p1}`, WEIGHT));
  });

  afterAll(async () => {
    await snap?.close();
  });

  test('resources updated or deleted after kick-off come as they were at transactionTime; ones created after do not come', async () => {
    const system = await client(snap);
    const patientLevel = await client(snap);
    const systemStatus = await kickOff(system, '/$export?_type=Patient,Observation');
    const patientStatus = await kickOff(patientLevel, '/Patient/$export?_type=Patient,Observation');
    await sleep(10); // strictly after transactionTime
    const admin = snap.request();
    const update = async (path: string, body: Resource): Promise<void> => {
      expect(outcome(await admin.put(path).set('Content-Type', FHIR_JSON).send(body))).toMatchObject({ status: 200 });
    };
    await update(`/Patient/${made.p1}`, { resourceType: 'Patient', id: made.p1, name: [{ family: 'After' }] });
    expect((await admin.delete(`/Patient/${made.p2}`)).status).toBe(204);
    await update(`/Observation/${made.o1}`, { ...observation(`Patient/${made.p1}`, HEART_RATE), id: made.o1, valueQuantity: { value: 99 } } as Resource);
    expect((await admin.delete(`/Observation/${made.o2}`)).status).toBe(204);
    const p3 = await admin.post('/Patient').set('Content-Type', FHIR_JSON).send({ resourceType: 'Patient', name: [{ family: 'CreatedAfter' }] });
    const o3 = await admin.post('/Observation').set('Content-Type', FHIR_JSON).send(observation(`Patient/${made.p1}`, GLUCOSE));
    expect([p3.status, o3.status]).toEqual([201, 201]);

    for (const [agent, statusUrl, level] of [
      [system, systemStatus, 'system'],
      [patientLevel, patientStatus, 'Patient'],
    ] as const) {
      const { manifest } = await poll(agent, statusUrl);
      const files = await download(agent, manifest);
      const byId = new Map([...files.values()].flat().map((r) => [`${r.resourceType}/${r.id as string}`, r]));
      const got = {
        level,
        contents: contents(files),
        p1: (byId.get(`Patient/${made.p1}`) as { name?: { family?: string }[] } | undefined)?.name?.[0]?.family,
        o1: (byId.get(`Observation/${made.o1}`) as { valueQuantity?: { value?: number } } | undefined)?.valueQuantity?.value,
        p1Version: byId.get(`Patient/${made.p1}`)?.meta?.versionId,
      };
      expect(got).toEqual({
        level,
        contents: {
          Patient: sorted([`Patient/${made.p1}`, `Patient/${made.p2}`]),
          Observation: sorted([`Observation/${made.o1}`, `Observation/${made.o2}`]),
        },
        p1: 'Before',
        o1: 70,
        p1Version: '1',
      });
      // Nothing in the files was modified after transactionTime.
      for (const r of byId.values()) {
        expect(Date.parse(r.meta?.lastUpdated as string)).toBeLessThanOrEqual(Date.parse(manifest.transactionTime));
      }
    }
  });

  test('_typeFilter is applied to the resources as they were at transactionTime, not as they are now', async () => {
    const admin = snap.request();
    const patient = await admin.post('/Patient').set('Content-Type', FHIR_JSON).send({ resourceType: 'Patient', name: [{ family: 'Filtered' }] });
    const subject = `Patient/${(patient.body as Resource).id as string}`;
    const wasHeartRate = await admin.post('/Observation').set('Content-Type', FHIR_JSON).send(observation(subject, HEART_RATE));
    const wasGlucose = await admin.post('/Observation').set('Content-Type', FHIR_JSON).send(observation(subject, GLUCOSE));
    const hrId = (wasHeartRate.body as Resource).id as string;
    const glucoseId = (wasGlucose.body as Resource).id as string;
    const agent = await client(snap);
    const filter = `Observation?subject=${subject}&code=${LOINC}|${HEART_RATE}`;
    const statusUrl = await kickOff(agent, `/$export?_type=Observation&_typeFilter=${q(filter)}`);
    await sleep(10);
    // After kick-off the two swap codes.
    for (const [id, code] of [
      [hrId, GLUCOSE],
      [glucoseId, HEART_RATE],
    ]) {
      const res = await admin.put(`/Observation/${id}`).set('Content-Type', FHIR_JSON).send({ ...observation(subject, code), id });
      expect(outcome(res)).toMatchObject({ status: 200 });
    }
    const { manifest } = await poll(agent, statusUrl);
    const files = await download(agent, manifest);
    const got = (files.get('Observation') ?? []).map((r) => ({ id: r.id, code: (r as { code?: { coding?: { code?: string }[] } }).code?.coding?.[0]?.code }));
    expect(got).toEqual([{ id: hrId, code: HEART_RATE }]);
  });
});

describe('expiry', () => {
  let short: TestServer;

  beforeAll(async () => {
    // A second is long enough for the client to see the manifest on a loaded machine.
    short = await startTestServer({ export: { retentionMs: 1000 } });
    const res = await short.request().post('/Patient').set('Content-Type', FHIR_JSON).send({ resourceType: 'Patient', name: [{ family: 'Brief' }] });
    expect(res.status).toBe(201);
  });

  afterAll(async () => {
    await short?.close();
  });

  test('after the retention time, the status and the files are 404', async () => {
    const agent = await client(short);
    const statusUrl = await kickOff(agent, '/$export?_type=Patient');
    const { manifest } = await poll(agent, statusUrl);
    expect(manifest.output.map((o) => o.type)).toEqual(['Patient']);
    await sleep(1500);
    expect(outcome(await agent.get(rel(statusUrl)).set('Accept', 'application/json'))).toMatchObject({ status: 404 });
    expect(outcome(await agent.get(rel(manifest.output[0].url)).set('Accept', NDJSON))).toMatchObject({ status: 404 });
    // And the client may export again.
    await poll(agent, await kickOff(agent, '/$export?_type=Patient'));
  });
});

describe('durability', () => {
  test('a job left in progress by a process that died (no lease) is picked up by the runner and completes', async () => {
    const clientId = `bulk-${randomUUID().slice(0, 8)}`;
    const agent = await server.as('system/*.rs', { clientId });
    const job = queuedJob(clientId, { types: ['Observation', 'Patient'], typeFilters: { Observation: [`code=${LOINC}|${GLUCOSE}`] } }, 'in-progress');
    await server.continuum.store.exportJobs.create(job);
    const { manifest } = await poll(agent, `${BASE_URL}/$export-status/${job.id}`, 15_000);
    expect(manifest.transactionTime).toBe(job.transactionTime);
    const files = await download(agent, manifest);
    expect(contents(files)).toEqual({
      Observation: sorted(['obsA-glucose', 'obsC-glucose'].map((k) => refOf('Observation', k))),
      Patient: all.Patient,
    });
  });

  test('a job of a Group level export survives the same way (members fixed at kick-off)', async () => {
    const clientId = `bulk-${randomUUID().slice(0, 8)}`;
    const agent = await server.as('system/*.rs', { clientId });
    const job = queuedJob(clientId, { level: 'group', groupId: ids.group, patients: [ids.patientB], types: ['Patient', 'Condition'] }, 'in-progress');
    await server.continuum.store.exportJobs.create(job);
    const { manifest } = await poll(agent, `${BASE_URL}/$export-status/${job.id}`, 15_000);
    const files = await download(agent, manifest);
    // B's Condition in its version at transactionTime (the second: the job was made after the update).
    expect(contents(files)).toEqual({ Patient: [refOf('Patient', 'patientB')], Condition: [refOf('Condition', 'conditionB')] });
  });
});
