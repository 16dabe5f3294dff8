/**
 * The `continuum` command as users run it: the compiled CLI (`npm run build` first; `npm test`
 * does it) in a child process. Imports go to the store under test: a fresh schema when
 * DATABASE_URL is set, else an embedded data directory; a `serve` on the same store then reads
 * what was imported.
 */
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { Bundle, Observation, Patient } from '@medplum/fhirtypes';
import { freshSchema, usingPostgres } from '../support/server';
import { type CliRun, cliScratch, runCli, startServe } from '../support/process';

const ROOT = join(__dirname, '..', '..');
const FIXTURES = join(ROOT, 'fixtures', 'import');

jest.setTimeout(120_000);

/** Children run in a scratch folder so that a stray default ./data never lands in the project. */
const scratchState = cliScratch('continuum-cli-');
const { cleanups, children } = scratchState;

/** The environment of a child: the store comes from its arguments only. */
function childEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.DATABASE_URL;
  delete env.PORT;
  delete env.HOST;
  return env;
}

/** Runs `continuum <args>` to completion. */
function run(args: string[], timeoutMs = 90_000): Promise<CliRun> {
  return runCli(args, { cwd: scratchState.cwd, env: childEnv(), timeoutMs, onSpawn: (child) => children.push(child) });
}

/** A store of the kind under test, as CLI arguments. */
async function newStore(): Promise<string[]> {
  if (usingPostgres()) {
    const s = await freshSchema();
    cleanups.push(s.drop);
    return ['--database-url', s.url];
  }
  const dir = mkdtempSync(join(tmpdir(), 'continuum-cli-store-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return ['--data-dir', dir];
}

interface Served {
  get: <T = Record<string, unknown>>(path: string) => Promise<{ status: number; body: T }>;
  stop: () => Promise<number | null>;
}

/** `continuum serve` on `storeArgs`, once GET /metadata answers. */
async function serve(storeArgs: string[]): Promise<Served> {
  const { child, base, exited, token } = await startServe(storeArgs, { cwd: scratchState.cwd, env: childEnv() });
  children.push(child);
  const bearer = await token();
  return {
    get: async <T>(path: string) => {
      const res = await fetch(`${base}/${path}`, { headers: { Authorization: `Bearer ${bearer}` } });
      const text = await res.text();
      return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
    },
    stop: () => {
      child.kill('SIGTERM');
      return exited.then((e) => e.code);
    },
  };
}

const OPTIONS = ['--data-dir', '--memory', '--database-url', '--port', '--host', '--base-url', '--max-body'];

describe('usage', () => {
  test.each([['--help'], ['-h'], ['help']])('continuum %s prints usage listing serve and import, exit 0', async (flag) => {
    const r = await run([flag]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('Usage:');
    expect(r.stdout).toMatch(/^\s*continuum serve \[options\]/m);
    expect(r.stdout).toMatch(/^\s*continuum import <paths\.\.\.> \[options\]/m);
    for (const option of OPTIONS) {
      expect(r.stdout).toMatch(new RegExp(`^\\s+${option}\\b`, 'm'));
    }
    expect(existsSync(join(scratchState.cwd, 'data'))).toBe(false);
  });

  test.each([
    [['frobnicate'], /unknown command 'frobnicate'/],
    [['serve', '--bogus'], /Unknown option '--bogus'/],
    [['--bogus'], /Unknown option '--bogus'/],
    [['serve', 'extra'], /serve takes no arguments, got 'extra'/],
    [['import'], /import needs at least one file or folder/],
    [['serve', '--port', 'abc'], /--port must be a positive integer, got 'abc'/],
    [['serve', '--port', '0'], /--port must be a positive integer, got '0'/],
    [['serve', '--max-body', '1.5'], /--max-body must be a positive integer, got '1.5'/],
  ])('continuum %j exits 2 with a message, without opening a store', async (args, message) => {
    const r = await run(args);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toContain("Run 'continuum --help' for usage.");
    expect(existsSync(join(scratchState.cwd, 'data'))).toBe(false);
  });

  test('a malformed CONTINUUM_HEAP_GROWING_PERCENT: serve exits 2 naming it, without opening a store', async () => {
    const r = await runCli(['serve'], { cwd: scratchState.cwd, env: { ...childEnv(), CONTINUUM_HEAP_GROWING_PERCENT: '-5' }, timeoutMs: 90_000, onSpawn: (child) => children.push(child) });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/CONTINUUM_HEAP_GROWING_PERCENT must be a whole number \(0: V8's own policy\), got '-5'/);
    expect(existsSync(join(scratchState.cwd, 'data'))).toBe(false);
  });

  test('a malformed CONTINUUM_YOUNG_GENERATION_MB: serve exits 2 naming it, without opening a store', async () => {
    const r = await runCli(['serve'], { cwd: scratchState.cwd, env: { ...childEnv(), CONTINUUM_YOUNG_GENERATION_MB: '4MB' }, timeoutMs: 90_000, onSpawn: (child) => children.push(child) });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/CONTINUUM_YOUNG_GENERATION_MB must be a whole number \(0: V8's own policy\), got '4MB'/);
    expect(existsSync(join(scratchState.cwd, 'data'))).toBe(false);
  });
});

describe('import', () => {
  test('a folder of a transaction Bundle (.json and .json.gz) and NDJSON: summary, exit 0, servable', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'continuum-cli-import-'));
    cleanups.push(() => rmSync(folder, { recursive: true, force: true }));
    for (const f of readdirSync(join(FIXTURES, 'valid'))) {
      copyFileSync(join(FIXTURES, 'valid', f), join(folder, f));
    }
    writeFileSync(join(folder, 'transaction.json.gz'), gzipSync(readFileSync(join(FIXTURES, 'valid', 'transaction.json'))));
    writeFileSync(join(folder, 'notes.txt'), 'not importable: skipped\n');
    const store = await newStore();

    const r = await run(['import', folder, ...store]);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: expect.stringContaining('Importing into') });
    if (!usingPostgres()) {
      // The import's own buffer pool (cli.ts IMPORT_SHARED_BUFFERS), larger than a server's.
      expect(r.stderr).toContain('(buffer pool 96MB)');
    }
    // 3 bundle entries twice (.json and .json.gz) + 3 NDJSON lines; notes.txt is not a file to import.
    expect(r.stdout).toMatch(
      /^Imported 9 resources from 3 file\(s\) \(2 bundle\(s\)\) in \d+\.\d s \(\d+ resources\/s\); 0 failed\.$/m,
    );
    expect(r.stdout.trim().split('\n')).toHaveLength(1);

    const server = await serve(store);
    try {
      for (const [n, given] of [[1, 'Ada'], [2, 'Bo'], [3, 'Cy']] as const) {
        const p = await server.get<Patient>(`Patient/import-ndjson-${n}`);
        expect(p.status).toBe(200);
        expect(p.body.meta?.versionId).toBe('1');
        expect(p.body.name?.[0]?.given).toEqual([given]);
      }
      expect((await server.get<Bundle>('Patient/_history')).body.total).toBe(5);
      expect((await server.get<Bundle>('Condition/_history')).body.total).toBe(2);
      const observations = await server.get<Bundle>('Observation/_history');
      expect(observations.body.total).toBe(2);
      // Each bundle's urn:uuid reference now points at the Patient that bundle created.
      const subjects = (observations.body.entry ?? []).map((e) => (e.resource as Observation).subject?.reference ?? '');
      expect(new Set(subjects).size).toBe(2);
      for (const ref of subjects) {
        expect(ref).toMatch(/^Patient\/[^/]+$/);
        const p = await server.get<Patient>(ref);
        expect(p.status).toBe(200);
        expect(p.body.identifier?.[0]?.value).toBe('bundle-patient');
      }
    } finally {
      expect(await server.stop()).toBe(0);
    }
  });

  test('invalid resources: exit 1, the summary names each file; valid lines kept, failed transaction rolled back', async () => {
    const folder = join(FIXTURES, 'invalid');
    const store = await newStore();

    const r = await run(['import', folder, ...store]);
    expect(r.code).toBe(1);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^Imported 2 resources from 2 file\(s\) \(1 bundle\(s\)\) in .*; 2 failed\.$/);
    expect(lines.slice(1).sort()).toEqual([
      expect.stringMatching(new RegExp(`^  - ${reEscape(join(folder, 'patients.ndjson'))}:2: .*Patient\\.gender`)),
      expect.stringMatching(new RegExp(`^  - ${reEscape(join(folder, 'transaction.json'))}: .*Observation\\.status`)),
    ]);

    const server = await serve(store);
    try {
      expect((await server.get('Patient/import-invalid-ok-1')).status).toBe(200);
      expect((await server.get('Patient/import-invalid-ok-2')).status).toBe(200);
      expect((await server.get('Patient/import-invalid-bad')).status).toBe(404);
      // The transaction failed as a whole: neither its Patient nor its Observation was stored.
      expect((await server.get<Bundle>('Patient/_history')).body.total).toBe(2);
      expect((await server.get<Bundle>('Observation/_history')).body.total).toBe(0);
    } finally {
      expect(await server.stop()).toBe(0);
    }
  });

  test('a path that does not exist: non-zero exit naming it', async () => {
    const missing = join(scratchState.cwd, 'no-such-folder');
    const r = await run(['import', missing, ...(await newStore())]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(missing);
    expect(r.stdout).not.toContain('Imported');
  });
});

function reEscape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

describe('serve on a port already in use', () => {
  test('exits 1 naming the port, without claiming to serve', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      const r = await run(['serve', '--memory', '--port', String(port)]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`cannot listen on 127.0.0.1:${port}`);
      expect(r.stdout).not.toContain('Continuum serves FHIR R4');
    } finally {
      blocker.close();
    }
  });
});

describe('authorization administration', () => {
  test('clients, users and token on a stopped store; the server then honours them', async () => {
    const store = await newStore();
    const added = await run(['clients', 'add', 'chart-app', '--type', 'public', '--scope', 'launch/patient openid fhirUser patient/*.rs', '--redirect-uri', 'https://chart.example/cb', '--name', 'Chart', ...store]);
    expect(added).toEqual({ code: 0, stdout: expect.stringContaining("Registered public client 'chart-app'"), stderr: '' });
    const secretClient = await run(['clients', 'add', 'etl', '--type', 'confidential-symmetric', '--scope', 'system/*.rs', ...store]);
    expect(secretClient.code).toBe(0);
    const secret = /Client secret \(shown once\): (\S+)/.exec(secretClient.stdout)?.[1];
    expect(secret).toMatch(/^[A-Za-z0-9_-]{20,}$/);
    const listed = await run(['clients', 'list', ...store]);
    expect(listed.stdout).toMatch(/^chart-app\tpublic\t/m);
    expect(listed.stdout).toMatch(/^etl\tconfidential-symmetric\tsystem\/\*\.rs/m);
    expect(listed.stdout).not.toContain(secret as string);

    const user = await run(['users', 'add', 'dr.lee', '--fhir-user', 'Practitioner/lee', '--password', 'long enough secret', ...store]);
    expect(user).toEqual({ code: 0, stdout: "Added user 'dr.lee' (Practitioner/lee).\n", stderr: '' });
    expect((await run(['users', 'list', ...store])).stdout).toBe('dr.lee\tPractitioner/lee\n');
    const short = await run(['users', 'add', 'x', '--fhir-user', 'Patient/1', '--password', 'short', ...store]);
    expect(short.code).toBe(2);
    expect(short.stderr).toContain('at least 8 characters');

    const port = await new Promise<number>((resolve) => {
      const s = createServer();
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const token = await run(['token', '--scope', 'system/Patient.rs', '--port', String(port), ...store]);
    expect(token.code).toBe(0);
    const jwt = token.stdout.trim();
    expect(jwt.split('.')).toHaveLength(3);
    const tooLong = await run(['token', '--lifetime', '7200', ...store]);
    expect(tooLong.code).toBe(2);
    expect(tooLong.stderr).toContain('at most 3600');

    // A server on that port (the token's audience) accepts it within its scopes, and the clients
    // registered above mean no development client is made.
    const { child, base, output } = await startServe(store, { cwd: scratchState.cwd, env: childEnv(), port });
    children.push(child);
    try {
      const ok = await fetch(`${base}/Patient`, { headers: { Authorization: `Bearer ${jwt}` } });
      expect(ok.status).toBe(200);
      const refused = await fetch(`${base}/Observation`, { headers: { Authorization: `Bearer ${jwt}` } });
      expect(refused.status).toBe(403);
      const backend = await fetch(`${base}/auth/token`, {
        method: 'POST',
        headers: { Authorization: `Basic ${Buffer.from(`etl:${secret as string}`).toString('base64')}`, 'Content-Type': 'application/x-www-form-urlencoded' },
        body: 'grant_type=client_credentials&scope=system%2FPatient.rs',
      });
      expect(backend.status).toBe(200);
      expect(output()).not.toContain('client secret:');
    } finally {
      child.kill('SIGTERM');
    }

    const removed = await run(['clients', 'remove', 'chart-app', ...store]);
    expect(removed.code).toBe(0);
    expect((await run(['clients', 'remove', 'chart-app', ...store])).code).toBe(1);
  });

  test('keys rotate: a new signing key; a token signed before still verifies', async () => {
    const store = await newStore();
    const before = await run(['token', '--port', '1', ...store]);
    const kidOf = (jwt: string): string => (JSON.parse(Buffer.from(jwt.split('.')[0], 'base64url').toString('utf8')) as { kid: string }).kid;
    const rotated = await run(['keys', 'rotate', ...store]);
    expect(rotated.code).toBe(0);
    const after = await run(['token', '--port', '1', ...store]);
    expect(kidOf(after.stdout.trim())).not.toBe(kidOf(before.stdout.trim()));
    expect(rotated.stdout).toContain(kidOf(after.stdout.trim()));
  });

  test('a fresh store served: a development client is registered and its secret printed once, with a working curl', async () => {
    const { child, base, token, output } = await startServe(await newStore(), { cwd: scratchState.cwd, env: childEnv() });
    children.push(child);
    try {
      expect(output()).toContain('client id:     continuum-dev');
      expect(output()).toContain(`curl -H "Authorization: Bearer $TOKEN" ${base}/Patient`);
      const res = await fetch(`${base}/Patient`, { headers: { Authorization: `Bearer ${await token()}` } });
      expect(res.status).toBe(200);
      expect((await fetch(`${base}/Patient`)).status).toBe(401);
    } finally {
      child.kill('SIGTERM');
    }
  });
});
