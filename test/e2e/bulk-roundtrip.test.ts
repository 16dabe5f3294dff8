/**
 * The Bulk Data issue's proof: load the 50 Synthea patients into server A, `$export` everything
 * over HTTP, import the NDJSON files into an empty server B with `POST /$import`, and compare the
 * two stores resource by resource (same ids per type; the same content apart from
 * meta.versionId and meta.lastUpdated, which the import writes anew).
 *
 * Also: `$import` reports bad lines by number and imports the others.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { OperationOutcome, Resource } from '@medplum/fhirtypes';
import { importPaths } from '../../src/import/importer';
import type { Store } from '../../src/store/api';
import { RESOURCE_TYPES } from '../../src/validation/schema';
import { BASE_URL, FHIR_JSON, startTestServer, type TestServer } from '../support/server';
import { asText, outcome } from '../support/http';

jest.setTimeout(300_000);

const SYNTHEA = join(__dirname, '..', '..', '..', 'shared', 'data', 'synthea');
const NDJSON = 'application/fhir+ndjson';
/** POST bodies stay well under the server's body limit (16 MB): big files go in several requests. */
const MAX_BODY_BYTES = 4 * 1024 * 1024;

interface Manifest {
  transactionTime: string;
  output: { type: string; url: string; count?: number }[];
  error: unknown[];
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const rel = (url: string): string => url.slice(BASE_URL.length);


/** JSON with keys in order, so that two equal resources give the same text whatever their key order. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) {
    return `[${value.map(canonical).join(',')}]`;
  }
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** A resource's content without what a new write changes (meta.versionId, meta.lastUpdated). */
function content(json: string): string {
  const r = JSON.parse(json) as Resource;
  if (r.meta) {
    const meta: Record<string, unknown> = { ...r.meta };
    delete meta.versionId;
    delete meta.lastUpdated;
    if (Object.keys(meta).length === 0) {
      delete r.meta;
    } else {
      r.meta = meta;
    }
  }
  return canonical(r);
}

/** Every current resource of a store: type -> id -> content (walked through the store's own search, not the export). */
async function everything(store: Store): Promise<Map<string, Map<string, string>>> {
  const out = new Map<string, Map<string, string>>();
  for (const type of [...RESOURCE_TYPES].sort()) {
    let after: unknown[] | undefined;
    for (;;) {
      const page = await store.search({ resourceType: type, filters: [], count: 1000, sort: [{ kind: 'id', descending: false }], after });
      for (const v of page.versions) {
        if (!out.has(type)) {
          out.set(type, new Map());
        }
        const byId = out.get(type) as Map<string, string>;
        if (byId.has(v.id)) {
          throw new Error(`${type}/${v.id} came twice from the store's search`);
        }
        byId.set(v.id, content(v.json as string));
      }
      if (!page.more) {
        break;
      }
      after = page.last;
    }
  }
  return out;
}

/** Splits NDJSON text into bodies of whole lines, each at most `max` bytes (a longer line goes alone). */
function chunks(text: string, max: number): string[] {
  const out: string[] = [];
  let current: string[] = [];
  let size = 0;
  for (const line of text.split('\n')) {
    if (line === '') {
      continue;
    }
    const bytes = Buffer.byteLength(line) + 1;
    if (size + bytes > max && current.length > 0) {
      out.push(current.join('\n') + '\n');
      current = [];
      size = 0;
    }
    current.push(line);
    size += bytes;
  }
  if (current.length > 0) {
    out.push(current.join('\n') + '\n');
  }
  return out;
}

const summaryOf = (oo: OperationOutcome): string => oo.issue?.[0]?.diagnostics ?? '';

describe('export from one store, import into another', () => {
  let a: TestServer;
  let b: TestServer;

  beforeAll(async () => {
    [a, b] = await Promise.all([startTestServer(), startTestServer()]);
  });

  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
  });

  const haveSynthea = existsSync(SYNTHEA) && readdirSync(SYNTHEA).some((f) => /\.json(\.gz)?$/.test(f));
  (haveSynthea ? test : test.skip)('the 50 Synthea patients: A -> $export -> NDJSON -> $import -> B, and B equals A resource by resource', async () => {
    const timings: string[] = [];
    let t0 = Date.now();
    const lap = (what: string): void => {
      timings.push(`${what} ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      t0 = Date.now();
    };

    // 1. Load A in process.
    const loaded = await importPaths([SYNTHEA], a.continuum.context(), { progress: null });
    expect({ failed: loaded.failed, errors: loaded.errors }).toEqual({ failed: 0, errors: [] });
    expect(loaded.resources).toBeGreaterThan(10_000);
    lap(`load A (${loaded.resources} resources)`);

    // 2. Export everything from A over HTTP.
    const agent = await a.as('system/*.rs', { clientId: 'roundtrip' });
    const kick = await agent.get('/$export').set('Accept', FHIR_JSON).set('Prefer', 'respond-async');
    expect(outcome(kick)).toMatchObject({ status: 202 });
    const statusPath = rel(kick.headers['content-location'] as string);
    let manifest: Manifest | undefined;
    for (let i = 0; !manifest; i++) {
      const res = await agent.get(statusPath).set('Accept', 'application/json');
      if (res.status === 200) {
        manifest = res.body as Manifest;
      } else {
        expect(outcome(res)).toMatchObject({ status: 202 });
        if (i > 1200) {
          throw new Error(`export still running after 2 minutes: ${String(res.headers['x-progress'])}`);
        }
        await sleep(100);
      }
    }
    expect(manifest.error).toEqual([]);
    lap('export A (kick-off to manifest)');
    const files = new Map<string, string>();
    let exported = 0;
    for (const entry of manifest.output) {
      const res = await agent.get(rel(entry.url)).set('Accept', NDJSON).buffer(true).parse(asText);
      expect(outcome(res)).toMatchObject({ status: 200 });
      const text = res.body as string;
      const lines = text.split('\n').filter((l) => l !== '').length;
      expect({ type: entry.type, lines }).toEqual({ type: entry.type, lines: entry.count ?? lines });
      exported += lines;
      files.set(entry.type, text);
    }
    expect(exported).toBe(loaded.resources);
    lap(`download ${manifest.output.length} files (${exported} resources, ${([...files.values()].reduce((n, t) => n + Buffer.byteLength(t), 0) / 1e6).toFixed(1)} MB)`);

    // 3. Import every file into the empty B.
    let imported = 0;
    let requests = 0;
    const importer = b.request();
    for (const [type, text] of files) {
      for (const body of chunks(text, MAX_BODY_BYTES)) {
        requests++;
        const res = await importer.post('/$import').set('Content-Type', NDJSON).set('Accept', FHIR_JSON).send(body);
        expect(outcome(res)).toMatchObject({ status: 200, body: { resourceType: 'OperationOutcome' } });
        const oo = res.body as OperationOutcome;
        const m = /Imported (\d+) resource\(s\); (\d+) line\(s\) failed/.exec(summaryOf(oo));
        expect({ type, summary: summaryOf(oo), errors: (oo.issue ?? []).slice(1, 4) }).toEqual({ type, summary: expect.stringMatching(/; 0 line\(s\) failed/), errors: [] });
        imported += Number(m?.[1] ?? 0);
      }
    }
    expect(imported).toBe(exported);
    lap(`import into B (${requests} POST /$import)`);

    // 4. Compare the stores.
    const [inA, inB] = await Promise.all([everything(a.continuum.store), everything(b.continuum.store)]);
    lap('read both stores');
    const idsOf = (m: Map<string, Map<string, string>>): Record<string, string[]> => Object.fromEntries([...m].map(([type, byId]) => [type, [...byId.keys()].sort()]));
    expect(idsOf(inB)).toEqual(idsOf(inA));
    const different: string[] = [];
    for (const [type, byId] of inA) {
      for (const [id, json] of byId) {
        if (inB.get(type)?.get(id) !== json) {
          different.push(`${type}/${id}`);
        }
      }
    }
    expect({ different: different.length, first: different.slice(0, 5) }).toEqual({ different: 0, first: [] });
    const total = [...inA.values()].reduce((n, m) => n + m.size, 0);
    expect(total).toBe(loaded.resources);
    // Where the time went (the issue asks for the figures; shown with --verbose).
    console.log(`bulk round trip, ${total} resources in ${inA.size} types: ${timings.join('; ')}`);
  });
});

describe('$import', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer();
  });

  afterAll(async () => {
    await server?.close();
  });

  test('bad lines are reported by number and the good ones are imported', async () => {
    const body = [
      JSON.stringify({ resourceType: 'Patient', id: 'good-1', name: [{ family: 'One' }] }),
      '{"resourceType": "Patient", "id": "broken", ',
      JSON.stringify({ resourceType: 'Patient', id: 'invalid', gender: 42 }),
      JSON.stringify({ resourceType: 'Patient', id: 'good-2', name: [{ family: 'Two' }] }),
      '',
    ].join('\n');
    const res = await server.request().post('/$import').set('Content-Type', NDJSON).set('Accept', FHIR_JSON).send(body);
    expect(outcome(res)).toMatchObject({ status: 200, body: { resourceType: 'OperationOutcome' } });
    const oo = res.body as OperationOutcome;
    expect(summaryOf(oo)).toMatch(/Imported 2 resource\(s\); 2 line\(s\) failed/);
    const errors = (oo.issue ?? []).slice(1);
    expect(errors.map((i) => ({ severity: i.severity, line: /^line (\d+):/.exec(i.diagnostics ?? '')?.[1] }))).toEqual([
      { severity: 'error', line: '2' },
      { severity: 'error', line: '3' },
    ]);
    for (const [id, status] of [
      ['good-1', 200],
      ['good-2', 200],
      ['broken', 404],
      ['invalid', 404],
    ] as const) {
      const read = await server.request().get(`/Patient/${id}`).set('Accept', FHIR_JSON);
      expect({ id, status: read.status }).toEqual({ id, status });
    }
  });

  test('ids are kept: importing the same line again updates the resource (a new version), creating nothing', async () => {
    const line = JSON.stringify({ resourceType: 'Observation', id: 'obs-kept', status: 'final', code: { text: 'x' } });
    for (const expectedVersion of ['1', '2']) {
      const res = await server.request().post('/$import').set('Content-Type', NDJSON).set('Accept', FHIR_JSON).send(line + '\n');
      expect(summaryOf(res.body as OperationOutcome)).toMatch(/Imported 1 resource\(s\); 0 line\(s\) failed/);
      const read = await server.request().get('/Observation/obs-kept').set('Accept', FHIR_JSON);
      expect((read.body as Resource).meta?.versionId).toBe(expectedVersion);
    }
  });

  test('a body that is not NDJSON: 4xx; a token that may not create: 403', async () => {
    const json = await server.request().post('/$import').set('Content-Type', FHIR_JSON).set('Accept', FHIR_JSON).send({ resourceType: 'Patient' });
    expect(json.status).toBe(400);
    const reader = await server.as('system/*.rs');
    const refused = await reader.post('/$import').set('Content-Type', NDJSON).set('Accept', FHIR_JSON).send(JSON.stringify({ resourceType: 'Patient', id: 'nope' }) + '\n');
    expect(refused.status).toBe(403);
    expect((await server.request().get('/Patient/nope').set('Accept', FHIR_JSON)).status).toBe(404);
  });
});
