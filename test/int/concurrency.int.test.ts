/**
 * Several Continuum processes on one PostgreSQL database (DATABASE_URL): what one writes the other
 * reads, version-aware and update-as-create races between them keep one history without gaps or
 * duplicates, and instances starting at once on an empty schema migrate it once.
 *
 * The processes are real: `node dist/src/cli.js serve --database-url ...` (`npm run build` first;
 * `npm test` does it). Without DATABASE_URL the embedded store is checked to serialise the same
 * conflicting writes instead, so this file always asserts something.
 */
import type { ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import type { Bundle, Patient } from '@medplum/fhirtypes';
import { Client } from 'pg';
import { createContinuum, type Continuum } from '../../src/server';
import { MIGRATIONS_DIR } from '../../src/store/postgres/migrate';
import { patient } from '../support/builders';
import { FHIR_JSON, freshSchema, startTestServer, usingPostgres } from '../support/server';
import { startServe } from '../support/process';

const MIGRATIONS = readdirSync(MIGRATIONS_DIR)
  .filter((f) => f.endsWith('.sql'))
  .sort();

jest.setTimeout(120_000);

interface Reply {
  status: number;
  body: Record<string, unknown>;
}

type Call = (method: string, path: string, body?: unknown, headers?: Record<string, string>) => Promise<Reply>;

interface Served {
  name: string;
  call: Call;
  output: () => string;
  child: ChildProcess;
  /** The development client's secret, if this process registered it. */
  devSecret?: string;
  /** Gets this process a token from the development client. */
  authorize: (secret: string) => Promise<void>;
}

/** `continuum serve --database-url <url>` on a free port, once GET /metadata answers. */
async function serve(name: string, databaseUrl: string): Promise<Served> {
  const { child, base, output, devSecret, token } = await startServe(['--database-url', databaseUrl], { label: name });
  let bearer = '';
  const out = output;
  const call: Call = async (method, path, body, headers = {}) => {
    const auth = { Authorization: `Bearer ${bearer}`, ...headers };
    const res = await fetch(`${base}/${path}`, {
      method,
      headers: body === undefined ? auth : { 'Content-Type': FHIR_JSON, ...auth },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (res.status >= 500) {
      throw new Error(`${name}: ${method} ${path} answered ${res.status} ${text}\n${out()}`);
    }
    return { status: res.status, body: (text ? JSON.parse(text) : {}) as Record<string, unknown> };
  };
  return {
    name,
    call,
    output,
    child,
    devSecret,
    authorize: async (secret) => {
      bearer = await token(secret);
    },
  };
}

const versionOf = (r: Reply): string | undefined => (r.body.meta as { versionId?: string } | undefined)?.versionId;
const birthDateOf = (r: Reply): string | undefined => r.body.birthDate as string | undefined;

/** Every version of Patient/<id>, oldest first: [versionId, birthDate]. */
async function versions(call: Call, id: string): Promise<[string, string | undefined][]> {
  const h = await call('GET', `Patient/${id}/_history?_count=1000`);
  expect(h.status).toBe(200);
  const b = h.body as unknown as Bundle;
  expect(b.total).toBe(b.entry?.length ?? 0);
  return (b.entry ?? [])
    .map((e): [string, string | undefined] => [e.response!.etag!.replace(/^W\/"|"$/g, ''), (e.resource as Patient).birthDate])
    .reverse();
}

/**
 * N concurrent PUTs of Patient/<id>, alternating between `calls`; each carries its own birthDate
 * so the winner can be told apart.
 */
function racePuts(calls: Call[], id: string, n: number, ifMatch?: string): Promise<Reply[]> {
  return Promise.all(
    Array.from({ length: n }, (_, i) =>
      calls[i % calls.length](
        'PUT',
        `Patient/${id}`,
        patient({ id, birthDate: `19${String(10 + i).padStart(2, '0')}-01-01` }),
        ifMatch ? { 'If-Match': ifMatch } : {},
      ),
    ),
  );
}

/** Checks an update-as-create race: one 201, the rest 200 or 409, versions 1..k without gaps. */
async function checkCreateRace(calls: Call[], id: string, replies: Reply[], allowConflict: boolean): Promise<void> {
  const statuses = replies.map((r) => r.status);
  expect(statuses.filter((s) => s === 201)).toHaveLength(1);
  expect(statuses.filter((s) => ![201, 200, ...(allowConflict ? [409] : [])].includes(s))).toEqual([]);
  for (const r of replies.filter((x) => x.status === 409)) {
    expect(r.body.resourceType).toBe('OperationOutcome');
  }
  const ok = replies.filter((r) => r.status === 200 || r.status === 201);
  // Each success got its own version number; together they are exactly 1..k.
  const got = ok.map(versionOf).map(Number).sort((a, b) => a - b);
  expect(got).toEqual(Array.from({ length: ok.length }, (_, i) => i + 1));
  expect(replies.find((r) => r.status === 201)!.body.meta).toMatchObject({ versionId: '1' });
  for (const call of calls) {
    const history = await versions(call, id);
    expect(history.map(([v]) => v)).toEqual(got.map(String));
    // Each stored version is the body of the request that was told it got that version.
    for (const r of ok) {
      expect(history[Number(versionOf(r)) - 1][1]).toBe(birthDateOf(r));
    }
    const current = await call('GET', `Patient/${id}`);
    expect(versionOf(current)).toBe(String(ok.length));
  }
}

if (usingPostgres()) {
  describe('two Continuum processes on one PostgreSQL schema', () => {
    let url: string;
    let drop: () => Promise<void>;
    let a: Served;
    let b: Served;

    beforeAll(async () => {
      const s = await freshSchema();
      url = s.url;
      drop = s.drop;
      // Both start at once on the empty schema: they race to migrate it.
      [a, b] = await Promise.all([serve('A', url), serve('B', url)]);
      // Exactly one of them registered the development client (and printed its secret).
      expect([a.devSecret, b.devSecret].filter(Boolean)).toHaveLength(1);
      const secret = (a.devSecret ?? b.devSecret) as string;
      await a.authorize(secret);
      await b.authorize(secret);
    });

    afterAll(async () => {
      for (const s of [a, b]) {
        if (s && s.child.exitCode === null) {
          s.child.kill('SIGTERM');
          await new Promise((r) => s.child.once('exit', r));
        }
      }
      await drop?.();
    });

    test('two processes starting at once on an empty schema migrate it exactly once', async () => {
      const c = new Client({ connectionString: url });
      await c.connect();
      try {
        const rows = await c.query<{ name: string }>('SELECT name FROM schema_migration ORDER BY name');
        expect(rows.rows.map((r) => r.name)).toEqual(MIGRATIONS);
      } finally {
        await c.end();
      }
      expect(a.output()).not.toMatch(/error/i);
      expect(b.output()).not.toMatch(/error/i);
    });

    test('several instances opening one fresh schema at once all start (in process, one pool each)', async () => {
      const s = await freshSchema();
      const opened: Continuum[] = [];
      try {
        const results = await Promise.allSettled(
          Array.from({ length: 5 }, () => createContinuum({ databaseUrl: s.url, logError: () => undefined })),
        );
        for (const r of results) {
          if (r.status === 'fulfilled') {
            opened.push(r.value);
          }
        }
        expect(results.map((r) => (r.status === 'rejected' ? String(r.reason) : 'ok'))).toEqual(Array(5).fill('ok'));
        // And they share one store: a write through one is read through another.
        const created = await opened[0].store.transaction((w) => w.create({ resourceType: 'Patient', id: 'migrated-once' }));
        expect(created.versionId).toBe('1');
        expect((await opened[4].store.read('Patient', 'migrated-once'))?.versionId).toBe('1');
      } finally {
        await Promise.all(opened.map((c) => c.close()));
        await s.drop();
      }
    });

    test('a write through one process is readable through the other', async () => {
      const created = await a.call('POST', 'Patient', patient());
      expect(created.status).toBe(201);
      const id = created.body.id as string;
      const read = await b.call('GET', `Patient/${id}`);
      expect(read.status).toBe(200);
      expect(read.body).toEqual(created.body);

      const updated = await b.call('PUT', `Patient/${id}`, { ...created.body, gender: 'other' }, { 'If-Match': 'W/"1"' });
      expect(updated.status).toBe(200);
      expect(versionOf(updated)).toBe('2');
      const again = await a.call('GET', `Patient/${id}`);
      expect(again.body).toEqual(updated.body);
      expect((await a.call('GET', `Patient/${id}/_history/1`)).body).toEqual(created.body);

      expect((await b.call('DELETE', `Patient/${id}`)).status).toBe(204);
      expect((await a.call('GET', `Patient/${id}`)).status).toBe(410);
      expect((await a.call('GET', `Patient/${id}/_history`)).body.total).toBe(3);
    });

    test('concurrent PUTs with the same If-Match through both: exactly one succeeds, the rest 412', async () => {
      for (let round = 0; round < 5; round++) {
        const created = await a.call('POST', 'Patient', patient());
        expect(created.status).toBe(201);
        const id = created.body.id as string;
        const replies = await racePuts([a.call, b.call], id, 8, 'W/"1"');
        expect(replies.map((r) => r.status).sort()).toEqual([200, 412, 412, 412, 412, 412, 412, 412]);
        const winner = replies.find((r) => r.status === 200)!;
        expect(versionOf(winner)).toBe('2');
        for (const call of [a.call, b.call]) {
          expect(await versions(call, id)).toEqual([
            ['1', '1950-04-02'],
            ['2', birthDateOf(winner)],
          ]);
        }
      }
    });

    test('concurrent update-as-create of one new id through both: one 201, others 200 or 409, no duplicate versions', async () => {
      for (let round = 0; round < 5; round++) {
        const id = `race-create-${round}-${Date.now()}`;
        const replies = await racePuts([a.call, b.call], id, 8);
        await checkCreateRace([a.call, b.call], id, replies, true);
      }
    });
  });
} else {
  test('the embedded store serialises concurrent conflicting updates', async () => {
    const server = await startTestServer();
    try {
      const call: Call = async (method, path, body, headers = {}) => {
        let req = server.request().put(`/${path}`).set('Content-Type', FHIR_JSON);
        for (const [k, v] of Object.entries(headers)) {
          req = req.set(k, v);
        }
        expect(method).toBe('PUT');
        const res = await req.send(body as object);
        return { status: res.status, body: res.body as Record<string, unknown> };
      };
      const read: Call = async (_method, path) => {
        const res = await server.request().get(`/${path}`);
        return { status: res.status, body: res.body as Record<string, unknown> };
      };

      // Version-aware updates: exactly one wins.
      const created = await server.request().post('/Patient').set('Content-Type', FHIR_JSON).send(patient());
      expect(created.status).toBe(201);
      const id = created.body.id as string;
      const replies = await racePuts([call], id, 8, 'W/"1"');
      expect(replies.map((r) => r.status).sort()).toEqual([200, 412, 412, 412, 412, 412, 412, 412]);
      expect(await versions(read, id)).toEqual([
        ['1', '1950-04-02'],
        ['2', birthDateOf(replies.find((r) => r.status === 200)!)],
      ]);

      // Update-as-create of one new id: serialised, so one 201 and then plain updates (no 409).
      const fresh = `race-create-${Date.now()}`;
      const creates = await racePuts([call], fresh, 8);
      await checkCreateRace([read], fresh, creates, false);
    } finally {
      await server.close();
    }
  });
}
