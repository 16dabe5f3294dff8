/**
 * The `continuum` command as users run it: the compiled CLI (`npm run build` first; `npm test`
 * does it) in a child process. Imports go to the store under test: a fresh schema when
 * DATABASE_URL is set, else an embedded data directory; a `serve` on the same store then reads
 * what was imported.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { Bundle, Observation, Patient } from '@medplum/fhirtypes';
import { freshSchema, usingPostgres } from '../support/server';
import { startServe } from '../support/process';

const ROOT = join(__dirname, '..', '..');
const CLI = join(ROOT, 'dist', 'src', 'cli.js');
const FIXTURES = join(ROOT, 'fixtures', 'import');

jest.setTimeout(120_000);

/** Children run in a scratch folder so that a stray default ./data never lands in the project. */
let cwd: string;
const cleanups: (() => Promise<void> | void)[] = [];
const children: ChildProcess[] = [];

beforeAll(() => {
  cwd = mkdtempSync(join(tmpdir(), 'continuum-cli-'));
  cleanups.push(() => rmSync(cwd, { recursive: true, force: true }));
});

afterAll(async () => {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) {
      c.kill('SIGKILL');
    }
  }
  for (const f of cleanups.reverse()) {
    await f();
  }
});

/** The environment of a child: the store comes from its arguments only. */
function childEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.DATABASE_URL;
  delete env.PORT;
  delete env.HOST;
  return env;
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `continuum <args>` to completion. */
function run(args: string[], timeoutMs = 90_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd, env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`continuum ${args.join(' ')} did not finish in ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
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
  const { child, base, exited } = await startServe(storeArgs, { cwd, env: childEnv() });
  children.push(child);
  return {
    get: async <T>(path: string) => {
      const res = await fetch(`${base}/${path}`);
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
    expect(existsSync(join(cwd, 'data'))).toBe(false);
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
    expect(existsSync(join(cwd, 'data'))).toBe(false);
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
    const missing = join(cwd, 'no-such-folder');
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
