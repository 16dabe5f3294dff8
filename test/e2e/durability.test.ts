/**
 * Durability of the embedded store (PGlite files in --data-dir): every write the server has
 * acknowledged survives a `kill -9` of the server process right after the acknowledgement.
 *
 * Always runs on the embedded store (even when DATABASE_URL is set): it is about PGlite's files.
 * Runs the compiled CLI (`npm run build` first; `npm test` does it).
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Bundle, Patient } from '@medplum/fhirtypes';
import { patient } from '../support/builders';
import { FHIR_JSON } from '../support/server';
import { type ServeProcess, startServe } from '../support/process';


jest.setTimeout(180_000);

/**
 * `continuum serve --data-dir <dir>` on the embedded store, once GET /metadata answers. Without the
 * start-up deploy of bots/, so the store holds exactly the writes this test acknowledged.
 */
function serve(dataDir: string): Promise<ServeProcess> {
  return startServe(['--data-dir', dataDir, '--no-bots']);
}

/** The bearer token of the server being called (each server has its own base URL, the token's audience). */
let token = '';

async function call(
  base: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: Record<string, unknown> | undefined }> {
  const res = await fetch(`${base}/${path}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'Content-Type': FHIR_JSON }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : undefined };
}

interface Expected {
  versionId: string;
  /** History methods, newest first. */
  methods: string[];
  /** What the current version must contain; undefined when it is deleted. */
  given?: string;
}

let dataDir: string;
const running: ChildProcess[] = [];

beforeAll(() => {
  dataDir = mkdtempSync(join(tmpdir(), 'continuum-durability-'));
});

afterAll(() => {
  for (const c of running) {
    if (c.exitCode === null && c.signalCode === null) {
      c.kill('SIGKILL');
    }
  }
  rmSync(dataDir, { recursive: true, force: true });
});

test('every acknowledged write survives kill -9 of the server', async () => {
  const first = await serve(dataDir);
  running.push(first.child);
  const secret = first.devSecret as string;
  token = await first.token();
  const expected = new Map<string, Expected>();
  const ack = (what: string, res: { status: number; body?: Record<string, unknown> }, status: number): void => {
    if (res.status !== status) {
      throw new Error(`${what}: expected ${status}, got ${res.status} ${JSON.stringify(res.body)}\n${first.output()}`);
    }
  };

  // Creates, one after another...
  for (let i = 0; i < 20; i++) {
    const given = `Sequential${i}`;
    const res = await call(first.base, 'POST', 'Patient', patient({ name: [{ family: 'Durable', given: [given] }] }));
    ack(`create ${i}`, res, 201);
    expect((res.body!.meta as { versionId: string }).versionId).toBe('1');
    expected.set(`Patient/${res.body!.id as string}`, { versionId: '1', methods: ['POST'], given });
  }
  // ...and ten at once.
  const burst = await Promise.all(
    Array.from({ length: 10 }, (_, i) =>
      call(first.base, 'POST', 'Patient', patient({ name: [{ family: 'Durable', given: [`Concurrent${i}`] }] })),
    ),
  );
  burst.forEach((res, i) => {
    ack(`concurrent create ${i}`, res, 201);
    expected.set(`Patient/${res.body!.id as string}`, { versionId: '1', methods: ['POST'], given: `Concurrent${i}` });
  });

  // Update-as-create with a client-chosen id.
  const clientId = 'durable-client-id';
  ack('update-as-create', await call(first.base, 'PUT', `Patient/${clientId}`, patient({ id: clientId, name: [{ given: ['Client'] }] })), 201);
  expected.set(`Patient/${clientId}`, { versionId: '1', methods: ['PUT'], given: 'Client' });

  // A delete.
  const [deleted] = [...expected.keys()];
  ack('delete', await call(first.base, 'DELETE', deleted), 204);
  expected.set(deleted, { versionId: '2', methods: ['DELETE', 'POST'] });

  // One resource updated three times; the last update is the last acknowledged write.
  const updated = [...expected.keys()][5];
  const id = updated.split('/')[1];
  let last: { status: number; body?: Record<string, unknown> } = { status: 0 };
  for (let v = 2; v <= 4; v++) {
    last = await call(first.base, 'PUT', updated, patient({ id, name: [{ family: 'Durable', given: [`Updated${v}`] }] }));
    ack(`update to version ${v}`, last, 200);
    expect((last.body!.meta as { versionId: string }).versionId).toBe(String(v));
  }
  // kill -9 right after the acknowledgement: no graceful close, no checkpoint.
  first.child.kill('SIGKILL');
  expect(await first.exited).toEqual({ code: null, signal: 'SIGKILL' });
  expected.set(updated, { versionId: '4', methods: ['PUT', 'PUT', 'PUT', 'POST'], given: 'Updated4' });

  // Restart on the same data directory (crash recovery) and check every acknowledged write.
  expect(existsSync(join(dataDir, 'PG_VERSION'))).toBe(true);
  const second = await serve(dataDir);
  token = await second.token(secret);
  running.push(second.child);
  for (const [ref, want] of expected) {
    const read = await call(second.base, 'GET', ref);
    if (want.given === undefined) {
      expect({ ref, status: read.status }).toEqual({ ref, status: 410 });
    } else {
      expect({ ref, status: read.status }).toEqual({ ref, status: 200 });
      const p = read.body as unknown as Patient;
      expect({ ref, versionId: p.meta?.versionId, given: p.name?.[0]?.given?.[0] }).toEqual({
        ref,
        versionId: want.versionId,
        given: want.given,
      });
    }
    const history = await call(second.base, 'GET', `${ref}/_history`);
    expect(history.status).toBe(200);
    const h = history.body as unknown as Bundle;
    expect({
      ref,
      total: h.total,
      versions: h.entry?.map((e) => e.response?.etag),
      methods: h.entry?.map((e) => e.request?.method),
    }).toEqual({
      ref,
      total: want.methods.length,
      versions: want.methods.map((_, i) => `W/"${want.methods.length - i}"`),
      methods: want.methods,
    });
  }
  // Nothing more and nothing less than what was acknowledged: 30 + 1 creates, 1 delete, 3 updates
  // (of Patients: the server also stores the conformance resources of profiles/ at start).
  const all = await call(second.base, 'GET', 'Patient/_history?_count=1');
  expect((all.body as unknown as Bundle).total).toBe(35);

  // The recovered store takes new writes, and a graceful stop exits 0.
  const after = await call(second.base, 'POST', 'Patient', patient());
  expect(after.status).toBe(201);
  second.child.kill('SIGTERM');
  expect(await second.exited).toEqual({ code: 0, signal: null });
});
