/**
 * `npm run bench`: throughput, latency and memory of Continuum over loopback, against a bare
 * Express 5 endpoint measured in the same run.
 *
 * Every server under test runs in its own child process (the client, autocannon, runs here), on
 * the embedded store (a fresh data folder under the OS temp dir) and, when DATABASE_URL is set,
 * on PostgreSQL too (a fresh schema `bench_<random>` per server, dropped at the end).
 *
 * Cases: bare Express GET (baseline), read by id, create, Synthea import (`continuum import` as a
 * child process), server RSS after many creates, search over a generated dataset (see
 * runSearch: `search-name`, `search-page`, `search-obs`, `search-chain`), and Bulk Data `$export`
 * of a generated dataset (see runExport: kick-off to the last byte of the last file, and the
 * server's peak RSS meanwhile), and CCM month close and worklist over a generated population (see
 * bench/ccm.ts). Results are printed and written to
 * .bench/results.json. The exit status is non-zero when a case failed (mostly errors, a crashed
 * child, an import that lost most resources); a missed performance target is reported, not fatal.
 *
 * Environment:
 *   BENCH_SECONDS=10          seconds per throughput case
 *   BENCH_WARMUP_SECONDS=2    unmeasured warm-up before each throughput case (0: none)
 *   BENCH_CONNECTIONS=10      concurrent connections
 *   BENCH_CREATES=100000      creates before reading the server's RSS
 *   BENCH_READ_IDS=1000       patients created up front and read in rotation
 *   BENCH_CASES=bare,read,create,import,memory,search-name,search-page,search-obs,search-chain,export,bots,ccm
 *                             which cases to run (default: all)
 *   BENCH_SEARCH_PATIENTS=10000        patients in the search dataset
 *   BENCH_SEARCH_OBSERVATIONS=200000   observations in the search dataset (spread over the patients)
 *   BENCH_SEARCH_ANALYZE=1    run ANALYZE on the store after the import, before the server starts
 *                             (a diagnosis aid: Continuum itself does not, see the notes of a run)
 *   BENCH_EXPORT_RESOURCES=500000     resources in the export dataset (1 Patient in 20, the rest
 *                             Observations; loaded with `continuum import`, not measured)
 *   BENCH_BOT_EVENTS=10000    post-commit events queued before the bots server starts (drain rate)
 *   BENCH_CCM_PATIENTS=10000  enrolled patients in the CCM dataset (plus a tenth as many not enrolled)
 *   BENCH_CCM_ENTRIES=20      time entries per patient in the month closed (the month before the current one)
 *   BENCH_CCM_RUNS=10         sequential $ccm-worklist requests measured (median and p95)
 *   BENCH_STORES=embedded,postgres   which stores (default: embedded, and postgres when DATABASE_URL is set)
 *   BENCH_SYNTHEA_DIR         bundles to import (default: ../shared/data/synthea from the project root)
 *   BENCH_CPU_PROF=1          run server children with --cpu-prof (profiles in .bench/profiles)
 *   BENCH_NODE_ARGS='--a --b' extra Node/V8 flags for server children (experiments: the flags a
 *                             deployment would pass; NODE_OPTIONS accepts only a few V8 flags)
 *   DATABASE_URL              also benchmark on this PostgreSQL server
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';
import autocannon from 'autocannon';
import { Client } from 'pg';
import { CREATE_BODY } from './fixtures';
import { type CcmDataset, type CcmStats, CCM_TARGETS, generateCcmDataset, runCcm } from './ccm';
import { CODES, familyName, generateSearchDataset, LOINC, observationDates, QUERY_CODE, type SearchDataset } from './search-data';

// ---------------------------------------------------------------------------------------------
// Configuration

const SEARCH_CASES = ['search-name', 'search-page', 'search-obs', 'search-chain'] as const;
type SearchCaseName = (typeof SEARCH_CASES)[number];
type CaseName = 'bare' | 'read' | 'create' | 'import' | 'memory' | SearchCaseName | 'export' | 'bots' | 'ccm';
type StoreLabel = 'embedded' | 'postgres';
const ALL_CASES: readonly CaseName[] = ['bare', 'read', 'create', 'import', 'memory', ...SEARCH_CASES, 'export', 'bots', 'ccm'];

function envNumber(name: string, fallback: number, { integer = false, min = 0 } = {}): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') {
    return fallback;
  }
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min || (integer && !Number.isInteger(n))) {
    throw new Error(`${name} must be ${integer ? 'an integer' : 'a number'} >= ${min}, got '${raw}'`);
  }
  return n;
}

function envCases(): Set<CaseName> {
  const raw = process.env.BENCH_CASES;
  if (!raw) {
    return new Set(ALL_CASES);
  }
  const names = raw.split(',').map((s) => s.trim()).filter(Boolean);
  for (const n of names) {
    if (!ALL_CASES.includes(n as CaseName)) {
      throw new Error(`BENCH_CASES: unknown case '${n}' (known: ${ALL_CASES.join(', ')})`);
    }
  }
  return new Set(names as CaseName[]);
}

function envStores(databaseUrl: string | undefined): StoreLabel[] {
  const raw = process.env.BENCH_STORES;
  if (!raw) {
    return databaseUrl ? ['embedded', 'postgres'] : ['embedded'];
  }
  const names = raw.split(',').map((s) => s.trim()).filter(Boolean);
  for (const n of names) {
    if (n !== 'embedded' && n !== 'postgres') {
      throw new Error(`BENCH_STORES: unknown store '${n}' (known: embedded, postgres)`);
    }
    if (n === 'postgres' && !databaseUrl) {
      throw new Error('BENCH_STORES names postgres, but DATABASE_URL is not set');
    }
  }
  return names as StoreLabel[];
}

function findProjectRoot(): string {
  let dir = __dirname;
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) {
      throw new Error(`package.json not found above ${__dirname}`);
    }
    dir = parent;
  }
  return dir;
}

const ROOT = findProjectRoot();
const CONFIG = {
  seconds: envNumber('BENCH_SECONDS', 10, { min: 1 }),
  warmupSeconds: envNumber('BENCH_WARMUP_SECONDS', 2),
  connections: envNumber('BENCH_CONNECTIONS', 10, { integer: true, min: 1 }),
  creates: envNumber('BENCH_CREATES', 100_000, { integer: true, min: 1 }),
  readIds: envNumber('BENCH_READ_IDS', 1000, { integer: true, min: 1 }),
  searchPatients: envNumber('BENCH_SEARCH_PATIENTS', 10_000, { integer: true, min: 1 }),
  searchObservations: envNumber('BENCH_SEARCH_OBSERVATIONS', 200_000, { integer: true, min: 0 }),
  searchAnalyze: process.env.BENCH_SEARCH_ANALYZE === '1',
  exportResources: envNumber('BENCH_EXPORT_RESOURCES', 500_000, { integer: true, min: 2 }),
  botEvents: envNumber('BENCH_BOT_EVENTS', 10_000, { integer: true, min: 2 }),
  botLatencySamples: 200,
  ccmPatients: envNumber('BENCH_CCM_PATIENTS', 10_000, { integer: true, min: 1 }),
  ccmEntries: envNumber('BENCH_CCM_ENTRIES', 20, { integer: true, min: 1 }),
  ccmRuns: envNumber('BENCH_CCM_RUNS', 10, { integer: true, min: 1 }),
  cases: envCases(),
  syntheaDir: resolve(ROOT, process.env.BENCH_SYNTHEA_DIR ?? join('..', 'shared', 'data', 'synthea')),
  cpuProf: process.env.BENCH_CPU_PROF === '1',
  nodeArgs: (process.env.BENCH_NODE_ARGS ?? '').split(/\s+/).filter((a) => a !== ''),
  databaseUrl: process.env.DATABASE_URL || undefined,
  stores: envStores(process.env.DATABASE_URL || undefined),
};
const CLI = join(ROOT, 'dist', 'src', 'cli.js');
const BARE = join(__dirname, 'bare.js');
const OUT_DIR = join(ROOT, '.bench');
const PROFILE_DIR = join(OUT_DIR, 'profiles');

/** The issue's targets. */
const TARGETS = {
  readPerSec: 5000,
  readOfBare: 0.5,
  createPerSec: 1500,
  importPerSec: 3000,
  rssMb: 300,
  /** `Patient?name=<unique>` */
  searchNamePerSec: 3500,
  /** A 20-result page of 10,000 matches. */
  searchPagePerSec: 1200,
  /** `Observation?subject=Patient/x&code=http://loinc.org|85354-9&_sort=-date` */
  searchObsPerSec: 2000,
  /** A one-level chained search, as a share of the plain one. */
  chainOfPlain: 0.5,
  /** Bulk Data `$export` of everything, kick-off to the last byte of the last file. */
  exportPerSec: 20_000,
  /** The server's peak RSS during that export. */
  exportRssMb: 400,
  /** Interactive reads while export jobs run, as a share of the same reads without ("a few percent"). */
  exportInterference: 0.95,
  /** Bots: `$execute` of a trivial bot (Medplum's in-process bots: about 120/s). */
  botExecutePerSec: 1200,
  /** Added to a create by a trivial pre-commit bot. */
  botPreCommitMs: 2,
  /** From commit to the post-commit bot's start, median. */
  botPostCommitP50Ms: 20,
  /** Queued post-commit events run per second. */
  botDrainPerSec: 2000,
  /** CCM month close (`$execute` of ccm-month-close) of 10,000 patients x 20 time entries. */
  ccmMonthCloseSeconds: CCM_TARGETS.monthCloseSeconds,
  /** `GET /$ccm-worklist` over those patients (median of sequential runs). */
  ccmWorklistMs: CCM_TARGETS.worklistMs,
};

/** Medplum on the same kind of machine (the Search issue), printed as ratios next to ours. */
const MEDPLUM = {
  searchNamePerSec: 1200,
  searchPagePerSec: 415,
};

/** A case whose failed requests (non-2xx, errors, timeouts) exceed this share has failed. */
const MAX_FAILED_SHARE = 0.5;

// ---------------------------------------------------------------------------------------------
// Results

type Verdict = 'PASS' | 'MISS' | 'FAIL' | 'SKIP' | 'INFO';

interface HttpStats {
  /** autocannon's mean of its one-second samples (every response, any status). */
  reqPerSecMean: number;
  /** 2xx responses per second over the whole run: the figure targets are judged on. */
  okPerSec: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  latencyMeanMs: number;
  latencyMaxMs: number;
  requests: number;
  ok2xx: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  statusCodes: Record<string, number>;
  durationSeconds: number;
}

interface ImportStats {
  dir: string;
  files: number;
  /** Entries in the bundles, counted by the benchmark. */
  expectedResources: number;
  /** From the CLI's summary line. */
  resources: number;
  failed: number;
  cliSeconds: number;
  cliPerSec: number;
  /** Child process start to exit, measured here (includes start-up, schema compile, migrations). */
  wallSeconds: number;
  wallPerSec: number;
  exitCode: number | null;
  summaryLine: string;
}

interface MemoryStats {
  creates: number;
  /** Embedded store: RSS of a server started on an empty data directory (it creates the store), once ready. */
  rssFirstStartMb?: number;
  rssIdleMb: number;
  rssAfterMb: number;
  /** VmHWM: the peak RSS. */
  rssPeakMb: number;
  http: HttpStats;
}

interface ExportStats {
  resources: number;
  files: number;
  bytes: number;
  /** Kick-off to the manifest (the server walking the snapshot). */
  manifestSeconds: number;
  /** Manifest to the last byte of the last file. */
  downloadSeconds: number;
  /** Kick-off to the last byte: what resources/s is judged on. */
  totalSeconds: number;
  perSec: number;
  polls: number;
  rssBeforeMb: number;
  /** The highest RSS while the export ran (VmHWM when it rose during the export, else sampled VmRSS). */
  rssPeakMb: number;
  /** VmHWM at the end: the peak over the server's life (start-up included). */
  hwmMb: number;
}

interface Target {
  text: string;
  pass: boolean;
}

interface CaseResult {
  store: StoreLabel | '-';
  case: CaseName;
  /** The headline figure and its unit. */
  value?: number;
  unit: string;
  http?: HttpStats;
  import?: ImportStats;
  memory?: MemoryStats;
  export?: ExportStats;
  ccm?: Partial<CcmStats>;
  ratioToBare?: number;
  /** A ratio to another figure (Medplum's, or the plain search for the chained one). */
  reference?: { ratio: number; to: string };
  targets: Target[];
  verdict: Verdict;
  notes: string[];
}

const results: CaseResult[] = [];

function record(r: CaseResult): void {
  results.push(r);
  printCase(r);
}

// ---------------------------------------------------------------------------------------------
// Child processes and cleanup

interface Child {
  name: string;
  proc: ChildProcess;
  exited: Promise<number | null>;
  exitCode?: number | null;
  stdout: () => string;
  stderr: () => string;
}

const children = new Set<Child>();
const tempDirs = new Set<string>();
const schemas = new Set<string>();

/** The request every create case sends: a new Patient with a unique identifier each time. */
function createRequest(base: string): { url: string; method: 'POST'; headers: Record<string, string>; body: string; idReplacement: true } {
  return { url: `${base}/Patient`, method: 'POST', headers: { 'content-type': 'application/fhir+json', ...ACCEPT }, body: CREATE_BODY, idReplacement: true };
}

const TAIL_CHARS = 16_000;

/** The environment for children: the store comes from explicit flags only. */
function childEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.DATABASE_URL;
  delete env.PORT;
  delete env.HOST;
  return env;
}

function spawnNode(name: string, script: string, args: string[], { server = false } = {}): Child {
  const nodeArgs: string[] = server ? [...CONFIG.nodeArgs] : [];
  if (server && CONFIG.cpuProf) {
    mkdirSync(PROFILE_DIR, { recursive: true });
    nodeArgs.push('--cpu-prof', '--cpu-prof-dir', PROFILE_DIR, '--cpu-prof-name', `${name.replace(/\W+/g, '-')}-${Date.now()}.cpuprofile`);
  }
  const proc = spawn(process.execPath, [...nodeArgs, script, ...args], {
    cwd: ROOT,
    env: childEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stdout?.setEncoding('utf8').on('data', (d: string) => {
    out = (out + d).slice(-TAIL_CHARS);
  });
  proc.stderr?.setEncoding('utf8').on('data', (d: string) => {
    err = (err + d).slice(-TAIL_CHARS);
  });
  const child: Child = { name, proc, exited: Promise.resolve(null), stdout: () => out, stderr: () => err };
  child.exited = new Promise((resolveExit) => {
    proc.on('error', (e) => {
      err += `\nspawn failed: ${e.message}`;
      child.exitCode = -1;
      children.delete(child);
      resolveExit(-1);
    });
    proc.on('exit', (code, signal) => {
      child.exitCode = code ?? (signal ? -1 : null);
      children.delete(child);
      resolveExit(child.exitCode);
    });
  });
  children.add(child);
  return child;
}

function isRunning(child: Child): boolean {
  return child.exitCode === undefined;
}

/** SIGTERM (the server closes its store), then SIGKILL if it has not exited within `graceMs`. */
async function stopChild(child: Child, graceMs = 15_000): Promise<void> {
  if (!isRunning(child)) {
    return;
  }
  child.proc.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const killed = new Promise<void>((res) => {
    timer = setTimeout(() => {
      if (isRunning(child)) {
        console.error(`  ! ${child.name} did not stop within ${graceMs / 1000} s; killing it`);
        child.proc.kill('SIGKILL');
      }
      res();
    }, graceMs);
  });
  await Promise.race([child.exited, killed]);
  clearTimeout(timer);
  await child.exited;
}

function tail(text: string, lines = 15): string {
  return text.trimEnd().split('\n').slice(-lines).map((l) => `      | ${l}`).join('\n');
}

let cleaning: Promise<void> | undefined;

/** Stops every child, removes temp folders and drops bench schemas. Safe to call more than once. */
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    await Promise.all([...children].map((c) => stopChild(c, 5000)));
    for (const dir of tempDirs) {
      rmSync(dir, { recursive: true, force: true });
    }
    tempDirs.clear();
    if (schemas.size > 0 && CONFIG.databaseUrl) {
      for (const schema of [...schemas]) {
        await dropSchema(schema).catch((err: unknown) => {
          console.error(`  ! could not drop schema ${schema}: ${(err as Error).message}`);
        });
      }
    }
  })();
  return cleaning;
}

// Last resort when the process exits without cleanup (an exception we did not catch).
process.on('exit', () => {
  for (const c of children) {
    c.proc.kill('SIGKILL');
  }
  for (const dir of tempDirs) {
    rmSync(dir, { recursive: true, force: true });
  }
});

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.error(`\n${signal}: stopping children and cleaning up...`);
    void cleanup().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  });
}

// ---------------------------------------------------------------------------------------------
// Stores: a fresh one per server or import

interface StoreInstance {
  /** CLI flags selecting the store. */
  args: string[];
  describe: string;
  /** PostgreSQL: the schema; embedded: the data folder. */
  location: string;
  dispose(): Promise<void>;
}

let runTempRoot: string | undefined;

function tempRoot(): string {
  if (!runTempRoot) {
    runTempRoot = mkdtempSync(join(tmpdir(), 'continuum-bench-'));
    tempDirs.add(runTempRoot);
  }
  return runTempRoot;
}

function hideSecret(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}

function schemaUrl(base: string, schema: string): string {
  return `${base}${base.includes('?') ? '&' : '?'}options=-c%20search_path%3D${schema}`;
}

async function withPg<T>(fn: (c: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: CONFIG.databaseUrl });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function dropSchema(schema: string): Promise<void> {
  await withPg((c) => c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`));
  schemas.delete(schema);
}

async function freshStore(label: StoreLabel, purpose: string): Promise<StoreInstance> {
  switch (label) {
    case 'embedded': {
      const dir = mkdtempSync(join(tempRoot(), `${purpose}-`));
      return {
        args: ['--data-dir', dir],
        describe: `embedded PGlite in ${dir}`,
        location: dir,
        dispose: async () => rmSync(dir, { recursive: true, force: true }),
      };
    }
    case 'postgres': {
      const base = CONFIG.databaseUrl as string;
      const schema = `bench_${randomBytes(5).toString('hex')}`;
      await withPg((c) => c.query(`CREATE SCHEMA "${schema}"`));
      schemas.add(schema);
      return {
        args: ['--database-url', schemaUrl(base, schema)],
        describe: `PostgreSQL ${hideSecret(base)}, schema ${schema}`,
        location: schema,
        dispose: () => dropSchema(schema),
      };
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Servers

interface Server {
  child: Child;
  base: string;
}

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => (port ? res(port) : rej(new Error('no free port'))));
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((res) => setTimeout(res, ms));

/** Waits until GET /metadata answers 200, or fails with the child's output if it exits first. */
async function waitReady(child: Child, base: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (!isRunning(child)) {
      throw new Error(`${child.name} exited (code ${String(child.exitCode)}) before answering:\n${tail(child.stderr() + child.stdout())}`);
    }
    try {
      const res = await fetch(`${base}/metadata`, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      if (res.ok) {
        return;
      }
      last = `HTTP ${res.status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(100);
  }
  throw new Error(`${child.name} did not answer GET /metadata within ${timeoutMs / 1000} s (last: ${last})`);
}

async function startServer(name: string, script: string, args: (port: number) => string[], fixedPort?: number): Promise<Server> {
  const port = fixedPort ?? (await freePort());
  const child = spawnNode(name, script, args(port), { server: true });
  const base = `http://127.0.0.1:${port}`;
  try {
    await waitReady(child, base);
  } catch (err) {
    await stopChild(child, 2000);
    throw err;
  }
  return { child, base };
}

async function startContinuum(store: StoreInstance, name: string): Promise<Server> {
  const port = await freePort();
  // Every FHIR request needs a token: mint one for this server's base URL (its audience) before
  // the server holds the store. Requests below send it with the shared headers.
  // The child's environment without DATABASE_URL: the store is the one in store.args.
  const token = execFileSync(process.execPath, [CLI, 'token', '--base-url', `http://127.0.0.1:${port}`, '--lifetime', '3600', ...store.args], { encoding: 'utf8', env: childEnv() }).trim();
  ACCEPT.authorization = `Bearer ${token}`;
  // --no-bots: the store holds exactly what a case loaded (the repository's bots would add their
  // Library and Subscriptions, and run on the data).
  return startServer(name, CLI, () => ['serve', '--host', '127.0.0.1', '--port', String(port), '--no-bots', ...store.args], port);
}

/** How many conformance resources (profiles/, stored at start) a server holds. */
async function conformanceCount(base: string): Promise<number> {
  let n = 0;
  for (const type of ['CodeSystem', 'ValueSet', 'ConceptMap', 'StructureDefinition', 'SearchParameter', 'OperationDefinition']) {
    const res = await fetch(`${base}/${type}?_summary=count`, { headers: ACCEPT });
    n += ((await res.json()) as { total?: number }).total ?? 0;
  }
  return n;
}

/** Resident memory of a process in MB, from /proc (Linux). */
function procMemMb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(status);
  if (!m) {
    throw new Error(`${field} not found in /proc/${pid}/status`);
  }
  return Number(m[1]) / 1024;
}

// ---------------------------------------------------------------------------------------------
// Load generation

/** Headers of every benchmark request; `authorization` is set for the Continuum server running. */
const ACCEPT: Record<string, string> = { accept: 'application/fhir+json' };

async function cannon(options: autocannon.Options): Promise<autocannon.Result> {
  return await autocannon({ connections: CONFIG.connections, timeout: 30, ...options });
}

/** Runs a warm-up (discarded), then the measured run. */
async function measure(options: Omit<autocannon.Options, 'duration' | 'amount'>): Promise<HttpStats> {
  if (CONFIG.warmupSeconds > 0) {
    await cannon({ ...options, duration: CONFIG.warmupSeconds });
  }
  return stats(await cannon({ ...options, duration: CONFIG.seconds }));
}

function stats(r: autocannon.Result): HttpStats {
  const statusCodes: Record<string, number> = {};
  for (const [code, { count }] of Object.entries(r.statusCodeStats)) {
    statusCodes[code] = count;
  }
  const duration = r.duration > 0 ? r.duration : (r.finish.getTime() - r.start.getTime()) / 1000;
  return {
    reqPerSecMean: r.requests.mean,
    okPerSec: r['2xx'] / duration,
    latencyP50Ms: r.latency.p50,
    latencyP99Ms: r.latency.p99,
    latencyMeanMs: r.latency.mean,
    latencyMaxMs: r.latency.max,
    requests: r.requests.total,
    ok2xx: r['2xx'],
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
    statusCodes,
    durationSeconds: duration,
  };
}

/** Non-2xx responses and connection errors: a note when any, a failure when they dominate. */
function judgeErrors(h: HttpStats, server: Child | undefined, notes: string[]): boolean {
  const failed = h.non2xx + h.errors;
  const attempts = h.ok2xx + failed;
  if (failed > 0) {
    const codes = Object.entries(h.statusCodes)
      .filter(([c]) => !c.startsWith('2'))
      .map(([c, n]) => `${n}x${c}`)
      .join(', ');
    notes.push(`${failed} failed requests (non-2xx: ${h.non2xx}${codes ? ` [${codes}]` : ''}, errors: ${h.errors}, timeouts: ${h.timeouts})`);
    const log = server?.stderr().trim();
    if (log) {
      notes.push(`server stderr:\n${tail(log, 10)}`);
    }
  }
  if (attempts === 0) {
    notes.push(`no request completed within the ${fmt(h.durationSeconds, 1)} s run (each took longer, or the server stalled)`);
  }
  if (server && !isRunning(server)) {
    notes.push(`the server exited (code ${String(server.exitCode)}):\n${tail(server.stderr())}`);
    return true;
  }
  return attempts === 0 || h.ok2xx === 0 || failed / attempts > MAX_FAILED_SHARE;
}

function verdictOf(failed: boolean, targets: Target[]): Verdict {
  if (failed) {
    return 'FAIL';
  }
  if (targets.length === 0) {
    return 'INFO';
  }
  return targets.every((t) => t.pass) ? 'PASS' : 'MISS';
}

// ---------------------------------------------------------------------------------------------
// Cases

let bareOkPerSec: number | undefined;
let loadAtStart: number | undefined;

async function runBare(): Promise<void> {
  console.log('\n== bare Express 5 baseline ==');
  const server = await startServer('bare', BARE, (port) => [String(port)]);
  try {
    const http = await measure({ url: `${server.base}/Patient/3f1d5a0e-9c7b-4d2e-8a61-0b5f2c9e7d43`, headers: ACCEPT });
    const notes: string[] = [];
    const failed = judgeErrors(http, server.child, notes);
    if (!failed) {
      bareOkPerSec = http.okPerSec;
    }
    record({ store: '-', case: 'bare', value: http.okPerSec, unit: 'req/s', http, targets: [], verdict: verdictOf(failed, []), notes });
  } finally {
    await stopChild(server.child);
  }
}

/** Creates `n` patients over HTTP (10 at a time) and returns their ids. */
async function seedPatients(base: string, n: number): Promise<string[]> {
  const ids: string[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n) {
      const i = next++;
      const res = await fetch(`${base}/Patient`, {
        method: 'POST',
        headers: { 'content-type': 'application/fhir+json', ...ACCEPT },
        body: CREATE_BODY.replace('[<id>]', `seed-${i}`),
      });
      const text = await res.text();
      if (res.status !== 201) {
        throw new Error(`seeding: POST /Patient answered ${res.status}: ${text.slice(0, 500)}`);
      }
      ids.push((JSON.parse(text) as { id: string }).id);
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONFIG.connections, n) }, worker));
  return ids;
}

function ratio(okPerSec: number): number | undefined {
  return bareOkPerSec ? okPerSec / bareOkPerSec : undefined;
}

async function runReadAndCreate(label: StoreLabel): Promise<void> {
  const store = await freshStore(label, 'http');
  console.log(`  server store: ${store.describe}`);
  const server = await startContinuum(store, `continuum-${label}-http`);
  try {
    if (CONFIG.cases.has('read')) {
      await guard(label, 'read', 'req/s', async () => {
        const ids = await seedPatients(server.base, CONFIG.readIds);
        let i = 0;
        const http = await measure({
          url: server.base,
          headers: ACCEPT,
          requests: [{ method: 'GET', setupRequest: (req) => ({ ...req, path: `/Patient/${ids[i++ % ids.length]}` }) }],
        });
        const notes = [`${ids.length} patients read in rotation`];
        if (label === 'embedded') {
          // Every read leaves an audit event, written in batches by the server's own thread: what
          // that costs, measured here on a store of the same kind, as a share of the thread.
          const audit = await auditMicrosPerEvent();
          notes.push(
            `audit trail: ${audit.cpu.toFixed(1)} us CPU per request (batches of 2,000; building the row ${audit.build.toFixed(1)} us of it; wall ${audit.wall.toFixed(1)} us) = ` +
              `${((audit.cpu * http.okPerSec) / 1e4).toFixed(1)}% of the server thread at this rate`,
          );
        }
        const failed = judgeErrors(http, server.child, notes);
        const r = ratio(http.okPerSec);
        const targets: Target[] = [{ text: `>= ${TARGETS.readPerSec} req/s`, pass: http.okPerSec >= TARGETS.readPerSec }];
        targets.push(
          r === undefined
            ? { text: `>= ${TARGETS.readOfBare * 100}% of bare (no baseline)`, pass: false }
            : { text: `>= ${TARGETS.readOfBare * 100}% of bare`, pass: r >= TARGETS.readOfBare },
        );
        return { value: http.okPerSec, http, ratioToBare: r, targets, verdict: verdictOf(failed, targets), notes };
      });
    }
    if (CONFIG.cases.has('create')) {
      await guard(label, 'create', 'req/s', async () => {
        const http = await measure({
          ...createRequest(server.base),
        });
        const notes: string[] = [];
        const failed = judgeErrors(http, server.child, notes);
        const targets = [{ text: `>= ${TARGETS.createPerSec} req/s`, pass: http.okPerSec >= TARGETS.createPerSec }];
        return { value: http.okPerSec, http, ratioToBare: ratio(http.okPerSec), targets, verdict: verdictOf(failed, targets), notes };
      });
    }
  } finally {
    await stopChild(server.child);
    await store.dispose();
  }
}

/** Milliseconds of CPU this process has used (all its threads: conservative for the server's). */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/**
 * What auditing costs the embedded server's thread per request, in microseconds: building the row
 * as the router does for `GET /Patient/<id>` (one of `readIds` patients in rotation, as in the read
 * case), recording it, and writing it in batches of 2,000 through the server's AuditLog into a
 * store of the same kind (PGlite runs in that thread). Counted as CPU time, which other processes
 * on a busy machine inflate less than wall time (this process's helper threads, such as V8's GC,
 * count too), with the wall time reported as well. 250 batches, so that the GIN indexes' pending
 * lists fill and are merged (on PGlite, by the inserting thread) within the measurement.
 */
async function auditMicrosPerEvent(): Promise<{ cpu: number; wall: number; build: number }> {
  const { openStore } = await import('../src/store/open');
  const { AuditLog } = await import('../src/audit/audit-log');
  // A data directory like the server's (an in-memory store writes its files differently).
  const dir = mkdtempSync(join(tempRoot(), 'audit-'));
  const store = await openStore({ dataDir: dir });
  const BATCH = 2000;
  const log = new AuditLog(store.audit, { flushMs: 3_600_000, maxBatch: BATCH });
  try {
    const ids = Array.from({ length: CONFIG.readIds }, () => randomUUID());
    let next = 0;
    // The fields of a read's row (src/fhir/router.ts auditRow), built the same way.
    const row = (): Parameters<typeof log.record>[0] => {
      const id = ids[next++ % ids.length];
      const entity = `Patient/${id}`;
      return {
        recorded: new Date().toISOString(),
        category: 'rest',
        interaction: 'read',
        action: 'R',
        outcome: '0',
        status: 200,
        clientId: 'continuum-cli',
        fhirUser: undefined,
        patient: entity.slice('Patient/'.length).split('/')[0],
        entity,
        detail: `GET /${entity}`.slice(0, 500),
      };
    };
    const batch = async (): Promise<void> => {
      for (let i = 0; i < BATCH; i++) {
        log.record(row());
      }
      await log.flush();
    };
    // Warm up (first pages of the table and its indexes), then measure.
    await batch();
    await batch();
    const rounds = 250;
    const cpuStart = cpuMs();
    const started = performance.now();
    for (let r = 0; r < rounds; r++) {
      await batch();
    }
    const wall = performance.now() - started;
    const cpu = cpuMs() - cpuStart;
    // Building the rows alone (the router's share of the figure).
    const buildCpu = cpuMs();
    const keep: unknown[] = [];
    for (let i = 0; i < 20 * BATCH; i++) {
      keep.push(row());
    }
    const build = cpuMs() - buildCpu;
    const us = (ms: number, events = rounds * BATCH): number => (ms * 1000) / events;
    return { cpu: us(cpu), wall: us(wall), build: us(build, keep.length) };
  } finally {
    await log.flush();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Counts the entries of the bundles, to check the import lost nothing. */
function countEntries(files: string[]): number {
  let n = 0;
  for (const f of files) {
    const raw = readFileSync(f);
    const text = (f.endsWith('.gz') ? gunzipSync(raw) : raw).toString('utf8');
    n += ((JSON.parse(text) as { entry?: unknown[] }).entry ?? []).length;
  }
  return n;
}

/** `Imported 13336 resources from 50 file(s) (50 bundle(s)) in 5.7 s (2341 resources/s); 0 failed.` */
const SUMMARY = /Imported (\d+) resources from (\d+) file\(s\).*? in ([\d.]+) s \((\d+) resources\/s\)(?:; (\d+) failed)?/;

async function runImport(label: StoreLabel): Promise<void> {
  const dir = CONFIG.syntheaDir;
  if (!existsSync(dir)) {
    console.log(`  import: SKIPPED, no Synthea bundles at ${dir} (set BENCH_SYNTHEA_DIR)`);
    record({ store: label, case: 'import', unit: 'resources/s', targets: [], verdict: 'SKIP', notes: [`no folder ${dir}`] });
    return;
  }
  const files = readdirSync(dir).filter((f) => /\.json(\.gz)?$/i.test(f)).map((f) => join(dir, f));
  if (files.length === 0) {
    console.log(`  import: SKIPPED, no .json or .json.gz files in ${dir}`);
    record({ store: label, case: 'import', unit: 'resources/s', targets: [], verdict: 'SKIP', notes: [`no bundles in ${dir}`] });
    return;
  }
  await guard(label, 'import', 'resources/s', async () => {
    const expected = countEntries(files);
    const store = await freshStore(label, 'import');
    try {
      const started = process.hrtime.bigint();
      const child = spawnNode(`import-${label}`, CLI, ['import', dir, ...store.args]);
      const exitCode = await child.exited;
      const wallSeconds = Number(process.hrtime.bigint() - started) / 1e9;
      const out = child.stdout();
      const m = SUMMARY.exec(out);
      if (!m) {
        throw new Error(`continuum import printed no summary (exit ${String(exitCode)}):\n${tail(child.stderr() + out)}`);
      }
      const imp: ImportStats = {
        dir,
        files: Number(m[2]),
        expectedResources: expected,
        resources: Number(m[1]),
        failed: Number(m[5] ?? 0),
        cliSeconds: Number(m[3]),
        cliPerSec: Number(m[4]),
        wallSeconds,
        wallPerSec: Number(m[1]) / wallSeconds,
        exitCode,
        summaryLine: m[0],
      };
      const notes = [
        `${imp.resources}/${expected} resources from ${imp.files} files; CLI ${imp.cliSeconds} s, wall ${wallSeconds.toFixed(1)} s incl. start-up (${Math.round(imp.wallPerSec)} resources/s)`,
      ];
      if (imp.failed > 0 || imp.resources !== expected) {
        notes.push(`import lost resources: ${imp.failed} failed, exit code ${String(exitCode)}:\n${tail(out, 8)}`);
      }
      // A few failed resources are reported (and exit 1 from the CLI); mostly failed is a failure.
      const failed = imp.resources < expected * (1 - MAX_FAILED_SHARE);
      const targets = [{ text: `>= ${TARGETS.importPerSec} resources/s`, pass: imp.cliPerSec >= TARGETS.importPerSec }];
      return { value: imp.cliPerSec, import: imp, targets, verdict: verdictOf(failed, targets), notes };
    } finally {
      await store.dispose();
    }
  });
}

/** RSS of a server started on the store's empty data directory, once it answers (then stopped). */
async function firstStartRss(store: StoreInstance): Promise<number> {
  const server = await startServer('continuum-first-start', CLI, (port) => ['serve', '--host', '127.0.0.1', '--port', String(port), '--no-bots', ...store.args]);
  try {
    return procMemMb(server.child.proc.pid as number, 'VmRSS');
  } finally {
    await stopChild(server.child);
  }
}

async function runMemory(label: StoreLabel): Promise<void> {
  await guard(label, 'memory', 'MB RSS', async () => {
    const store = await freshStore(label, 'memory');
    // A first start creates the embedded store (initdb): what that leaves resident, measured on
    // its own server before the measured one (which then finds the store created, as on any restart).
    const rssFirstStartMb = label === 'embedded' ? await firstStartRss(store) : undefined;
    const server = await startContinuum(store, `continuum-${label}-memory`);
    try {
      const pid = server.child.proc.pid as number;
      const rssIdleMb = procMemMb(pid, 'VmRSS');
      console.log(`  memory: ${CONFIG.creates} creates on a fresh server (idle RSS ${rssIdleMb.toFixed(0)} MB)...`);
      const r = await cannon({
        // autocannon takes the path from the URL (a top-level `path` option is ignored).
        ...createRequest(server.base),
        amount: CONFIG.creates,
      });
      const http = stats(r);
      const notes: string[] = [];
      const failed = judgeErrors(http, server.child, notes);
      if (failed) {
        return { http, targets: [], verdict: 'FAIL' as const, notes };
      }
      const memory: MemoryStats = {
        creates: CONFIG.creates,
        rssFirstStartMb,
        rssIdleMb,
        rssAfterMb: procMemMb(pid, 'VmRSS'),
        rssPeakMb: procMemMb(pid, 'VmHWM'),
        http,
      };
      notes.push(
        `after ${http.ok2xx} creates (${Math.round(http.okPerSec)} creates/s over ${http.durationSeconds.toFixed(0)} s): RSS ${memory.rssAfterMb.toFixed(0)} MB, peak ${memory.rssPeakMb.toFixed(0)} MB, idle at start ${rssIdleMb.toFixed(0)} MB` +
          (rssFirstStartMb === undefined ? '' : `; a first start on an empty data directory idles at ${rssFirstStartMb.toFixed(0)} MB`),
      );
      const targets = [{ text: `<= ${TARGETS.rssMb} MB after ${CONFIG.creates} creates`, pass: memory.rssAfterMb <= TARGETS.rssMb }];
      return { value: memory.rssAfterMb, memory, targets, verdict: verdictOf(false, targets), notes };
    } finally {
      await stopChild(server.child);
      await store.dispose();
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Search: a generated dataset, imported once per store, then searched by one server

let searchData: SearchDataset | undefined;

/** Generates the dataset once per run (the same files for every store). */
function searchDataset(): SearchDataset {
  if (!searchData) {
    const started = Date.now();
    searchData = generateSearchDataset(join(tempRoot(), 'search-data'), CONFIG.searchPatients, CONFIG.searchObservations);
    console.log(
      `  search dataset: ${fmt(searchData.patients)} patients + ${fmt(searchData.observations)} observations in ${searchData.files} bundles, generated in ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
  }
  return searchData;
}

/** `continuum import` of a generated dataset into `store`; throws unless every resource arrived. */
async function importSearchData(label: StoreLabel, store: StoreInstance, data: Pick<SearchDataset, 'dir' | 'resources'>, what = 'search'): Promise<string> {
  const started = process.hrtime.bigint();
  const child = spawnNode(`import-${what}-${label}`, CLI, ['import', data.dir, ...store.args]);
  const exitCode = await child.exited;
  const wallSeconds = Number(process.hrtime.bigint() - started) / 1e9;
  const out = child.stdout();
  const m = SUMMARY.exec(out);
  if (!m) {
    throw new Error(`continuum import printed no summary (exit ${String(exitCode)}):\n${tail(child.stderr() + out)}`);
  }
  if (Number(m[1]) !== data.resources || Number(m[5] ?? 0) > 0) {
    throw new Error(`the ${what} dataset did not load whole: ${m[0]} (expected ${data.resources} resources):\n${tail(out, 8)}`);
  }
  const note = `loaded ${fmt(data.resources)} resources in ${wallSeconds.toFixed(1)} s wall (CLI: ${m[3]} s, ${m[4]} resources/s; not measured)`;
  console.log(`  ${note}`);
  return note;
}

/** BENCH_SEARCH_ANALYZE=1: ANALYZE the loaded store (PGlite has no autovacuum; a server may have it off). */
async function analyzeStore(label: StoreLabel, store: StoreInstance): Promise<string> {
  const started = Date.now();
  if (label === 'postgres') {
    await withPg(async (c) => {
      await c.query(`SET search_path = "${store.location}"`);
      await c.query('ANALYZE');
    });
  } else {
    // The server is not running yet, so the data folder is free to open here.
    const { PGlite } = await import('@electric-sql/pglite');
    const db = await PGlite.create({ dataDir: store.location });
    try {
      await db.exec('ANALYZE');
    } finally {
      await db.close();
    }
  }
  const note = `BENCH_SEARCH_ANALYZE=1: ran ANALYZE after the import (${((Date.now() - started) / 1000).toFixed(1)} s)`;
  console.log(`  ${note}`);
  return note;
}

interface SearchBundle {
  resourceType?: string;
  total?: number;
  link?: { relation: string; url: string }[];
  entry?: { resource?: Record<string, unknown> & { id?: string }; search?: { mode?: string } }[];
}

async function getBundle(base: string, path: string): Promise<SearchBundle> {
  const res = await fetch(`${base}${path}`, { headers: ACCEPT, signal: AbortSignal.timeout(30_000) });
  const text = await res.text();
  if (res.status !== 200) {
    throw new Error(`GET ${path} answered ${res.status}: ${text.slice(0, 300)}`);
  }
  const body = JSON.parse(text) as SearchBundle;
  if (body.resourceType !== 'Bundle') {
    throw new Error(`GET ${path} did not answer a Bundle: ${text.slice(0, 300)}`);
  }
  return body;
}

const matches = (b: SearchBundle): (Record<string, unknown> & { id?: string })[] =>
  (b.entry ?? []).filter((e) => e.search?.mode === 'match').map((e) => e.resource ?? {});

/** The path (and query) of an absolute link, for autocannon. */
function linkPath(url: string): string {
  const u = new URL(url);
  return u.pathname + u.search;
}

const query = (type: string, params: Record<string, string>): string => `/${type}?${new URLSearchParams(params).toString()}`;

/** Patient indexes in a scrambled but fixed order, so consecutive requests hit unrelated rows. */
function rotation(n: number): number[] {
  const stride = [7919, 104_729, 1].find((s) => gcd(s, n) === 1) as number;
  return Array.from({ length: n }, (_, i) => (i * stride) % n);
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

/** What the walk over every page of `Patient?gender=female&_count=20` found. */
interface PatientPages {
  /** Server id of patient p, by p. */
  ids: string[];
  /** Path of every page after the first, and the ids it listed. */
  pages: { path: string; ids: string[] }[];
}

const PAGE_SIZE = 20;

/**
 * Walks all pages of the query matching every patient, checking each holds 20 distinct patients
 * and the walk finds each one once; learns the server's id of every patient from its family name.
 */
async function walkPatientPages(base: string, data: SearchDataset): Promise<PatientPages> {
  const byFamily = new Map<string, number>();
  for (let p = 0; p < data.patients; p++) {
    byFamily.set(familyName(p), p);
  }
  const ids: string[] = new Array<string>(data.patients);
  const pages: PatientPages['pages'] = [];
  let path: string | undefined = query('Patient', { gender: 'female', _count: String(PAGE_SIZE) });
  let seen = 0;
  while (path) {
    const b = await getBundle(base, path);
    const found = matches(b);
    const next = b.link?.find((l) => l.relation === 'next')?.url;
    if (found.length !== PAGE_SIZE && (next || found.length === 0)) {
      throw new Error(`page ${pages.length + 1} of the patients lists ${found.length} matches, expected ${PAGE_SIZE}: ${path}`);
    }
    for (const r of found) {
      const family = (r.name as { family?: string }[] | undefined)?.[0]?.family ?? '';
      const p = byFamily.get(family);
      if (p === undefined || ids[p] !== undefined || r.gender !== 'female') {
        throw new Error(`the patient pages list an unexpected or repeated patient ${String(r.id)} (${family}) on ${path}`);
      }
      ids[p] = r.id as string;
      seen++;
    }
    pages.push({ path, ids: found.map((r) => r.id as string) });
    path = next ? linkPath(next) : undefined;
  }
  if (seen !== data.patients) {
    throw new Error(`the pages of Patient?gender=female list ${seen} patients, expected ${data.patients}`);
  }
  return { ids, pages };
}

/** A check of one response: undefined when right, else what is wrong. */
type Check = (body: SearchBundle) => string | undefined;

/** Up to `n` indexes spread over 0 .. length - 1. */
function sample(length: number, n = 50): number[] {
  const k = Math.min(n, length);
  return Array.from({ length: k }, (_, i) => Math.floor((i * length) / k));
}

/** GETs a sample of the case's requests and checks each answer; throws on the first wrong one. */
async function verify(base: string, requests: { path: string; check: Check }[]): Promise<number> {
  const picked = sample(requests.length);
  for (const i of picked) {
    const { path, check } = requests[i];
    const wrong = check(await getBundle(base, path));
    if (wrong) {
      throw new Error(`wrong answer to GET ${path}: ${wrong}`);
    }
  }
  return picked.length;
}

/** Measures GETs rotating over `paths`. */
function measurePaths(base: string, paths: string[]): Promise<HttpStats> {
  let i = 0;
  return measure({
    url: base,
    headers: ACCEPT,
    requests: [{ method: 'GET', setupRequest: (req) => ({ ...req, path: paths[i++ % paths.length] }) }],
  });
}

const expectIds = (body: SearchBundle, ids: string[]): string | undefined => {
  const got = matches(body).map((r) => r.id);
  return got.length === ids.length && got.every((id, i) => id === ids[i]) ? undefined : `ids ${got.join(',')}, expected ${ids.join(',')}`;
};

/** The 85354-9 observations of patient p, newest first: dates, subject, code. */
function obsCheck(data: SearchDataset, p: number, patientId: string): Check {
  const dates = observationDates(data, p, CODES.findIndex((c) => c.code === QUERY_CODE));
  return (body) => {
    const found = matches(body);
    const got = found.map((r) => r.effectiveDateTime as string);
    if (got.length !== dates.length || got.some((d, i) => d !== dates[i])) {
      return `${got.length} matches dated ${got.join(', ')}; expected ${dates.length} dated ${dates.join(', ')}`;
    }
    for (const r of found) {
      const subject = (r.subject as { reference?: string } | undefined)?.reference;
      const code = (r.code as { coding?: { code?: string }[] } | undefined)?.coding?.[0]?.code;
      if (subject !== `Patient/${patientId}` || code !== QUERY_CODE) {
        return `a match for ${subject} with code ${code}`;
      }
    }
    return body.total === undefined || body.total === dates.length ? undefined : `total ${body.total}, expected ${dates.length}`;
  };
}

async function runSearch(label: StoreLabel): Promise<void> {
  const wanted = SEARCH_CASES.filter((c) => CONFIG.cases.has(c));
  let data: SearchDataset;
  let store: StoreInstance | undefined;
  let server: Server | undefined;
  const setupNotes: string[] = [];
  try {
    data = searchDataset();
    store = await freshStore(label, 'search');
    console.log(`  search store: ${store.describe}`);
    setupNotes.push(await importSearchData(label, store, data));
    if (CONFIG.searchAnalyze) {
      setupNotes.push(await analyzeStore(label, store));
    }
    server = await startContinuum(store, `continuum-${label}-search`);
  } catch (err) {
    for (const name of wanted) {
      record({ store: label, case: name, unit: 'req/s', targets: [], verdict: 'FAIL', notes: [(err as Error).message] });
    }
    await store?.dispose();
    return;
  }
  const base = server.base;
  const order = rotation(data.patients);
  const codeParam = `${LOINC}|${QUERY_CODE}`;
  const plainObs = (id: string): string => query('Observation', { subject: `Patient/${id}`, code: codeParam, _sort: '-date' });
  let plainObsPerSec: number | undefined;
  try {
    const started = Date.now();
    let walk: PatientPages;
    try {
      walk = await walkPatientPages(base, data);
    } catch (err) {
      for (const name of wanted) {
        record({ store: label, case: name, unit: 'req/s', targets: [], verdict: 'FAIL', notes: [(err as Error).message] });
      }
      return;
    }
    const note = `walked ${walk.pages.length} pages of Patient?gender=female&_count=${PAGE_SIZE} in ${((Date.now() - started) / 1000).toFixed(1)} s: ${fmt(data.patients)} patients, each once`;
    console.log(`  ${note}`);
    setupNotes.push(note);
    const { ids } = walk;
    const withSetup = (notes: string[]): string[] => [...notes, ...setupNotes.splice(0)];

    /** A case: verify a sample, measure, judge. */
    const searchCase = async (
      name: SearchCaseName,
      requests: { path: string; check: Check }[],
      what: string,
      judge: (h: HttpStats) => { targets: Target[]; reference?: CaseResult['reference'] },
    ): Promise<HttpStats | undefined> => {
      let measured: HttpStats | undefined;
      await guard(label, name, 'req/s', async () => {
        const checked = await verify(base, requests);
        const http = await measurePaths(
          base,
          requests.map((r) => r.path),
        );
        const notes = withSetup([`${what}; ${requests.length} different requests in rotation, ${checked} of them checked before the run`]);
        const failed = judgeErrors(http, server?.child, notes);
        const { targets, reference } = judge(http);
        if (!failed) {
          measured = http;
        }
        return { value: http.okPerSec, http, ratioToBare: ratio(http.okPerSec), reference, targets, verdict: verdictOf(failed, targets), notes };
      });
      return measured;
    };

    if (CONFIG.cases.has('search-name')) {
      await searchCase(
        'search-name',
        order.map((p) => {
          const family = familyName(p);
          return {
            path: query('Patient', { name: family }),
            check: (b: SearchBundle) => {
              const found = matches(b);
              const got = (found[0]?.name as { family?: string }[] | undefined)?.[0]?.family;
              return found.length === 1 && found[0].id === ids[p] && got === family && b.total === 1
                ? undefined
                : `${found.length} matches (total ${String(b.total)}), first ${String(found[0]?.id)} ${String(got)}; expected ${ids[p]} ${family}`;
            },
          };
        }),
        'Patient?name=<unique family name>, one match each',
        (h) => ({
          targets: [{ text: `>= ${fmt(TARGETS.searchNamePerSec)} req/s`, pass: h.okPerSec >= TARGETS.searchNamePerSec }],
          reference: { ratio: h.okPerSec / MEDPLUM.searchNamePerSec, to: 'Medplum' },
        }),
      );
    }
    if (CONFIG.cases.has('search-page')) {
      await searchCase(
        'search-page',
        walk.pages.filter((pg) => pg.ids.length === PAGE_SIZE).map((pg) => ({ path: pg.path, check: (b: SearchBundle) => expectIds(b, pg.ids) })),
        `every 20-result page (first and _cursor ones) of Patient?gender=female, ${fmt(data.patients)} matches`,
        (h) => ({
          targets: [{ text: `>= ${fmt(TARGETS.searchPagePerSec)} req/s`, pass: h.okPerSec >= TARGETS.searchPagePerSec }],
          reference: { ratio: h.okPerSec / MEDPLUM.searchPagePerSec, to: 'Medplum' },
        }),
      );
    }
    const obsRequests = order.map((p) => ({ path: plainObs(ids[p]), check: obsCheck(data, p, ids[p]) }));
    const perPatient = observationDates(data, 0, CODES.findIndex((c) => c.code === QUERY_CODE)).length;
    if (CONFIG.cases.has('search-obs')) {
      const h = await searchCase(
        'search-obs',
        obsRequests,
        `Observation?subject=Patient/<id>&code=${codeParam}&_sort=-date, ~${perPatient} matches each among ${fmt(data.observations)}`,
        (http) => ({ targets: [{ text: `>= ${fmt(TARGETS.searchObsPerSec)} req/s`, pass: http.okPerSec >= TARGETS.searchObsPerSec }] }),
      );
      plainObsPerSec = h?.okPerSec;
    }
    if (CONFIG.cases.has('search-chain')) {
      const extra: string[] = [];
      if (plainObsPerSec === undefined) {
        // The plain search was not measured as its own case (or failed): measure it for the ratio.
        await verify(base, obsRequests);
        const plain = await measurePaths(
          base,
          obsRequests.map((r) => r.path),
        );
        if (plain.non2xx + plain.errors === 0) {
          plainObsPerSec = plain.okPerSec;
        }
        extra.push(`plain search measured for the ratio: ${fmt(plain.okPerSec)} req/s (non-2xx ${plain.non2xx}, errors ${plain.errors})`);
      }
      await searchCase(
        'search-chain',
        order.map((p) => ({
          path: query('Observation', { 'subject:Patient.name': familyName(p), code: codeParam, _sort: '-date' }),
          check: obsCheck(data, p, ids[p]),
        })),
        `Observation?subject:Patient.name=<unique family name>&code=${codeParam}&_sort=-date, against the plain subject=Patient/<id> search${extra.length ? '; ' + extra.join('; ') : ''}`,
        (h) => {
          if (plainObsPerSec === undefined) {
            return { targets: [{ text: `>= ${TARGETS.chainOfPlain * 100}% of plain (no plain figure)`, pass: false }] };
          }
          const r = h.okPerSec / plainObsPerSec;
          return {
            targets: [{ text: `>= ${TARGETS.chainOfPlain * 100}% of plain`, pass: r >= TARGETS.chainOfPlain }],
            reference: { ratio: r, to: 'plain' },
          };
        },
      );
    }
  } finally {
    await stopChild(server.child);
    await store.dispose();
  }
}

// ---------------------------------------------------------------------------------------------
// Bulk Data $export: a generated dataset, imported once per store, exported whole by one server

let exportData: SearchDataset | undefined;

/** The export dataset (one Patient in 20, the rest their Observations), generated once per run. */
function exportDataset(): SearchDataset {
  if (!exportData) {
    const started = Date.now();
    const patients = Math.max(1, Math.round(CONFIG.exportResources / 20));
    exportData = generateSearchDataset(join(tempRoot(), 'export-data'), patients, CONFIG.exportResources - patients);
    console.log(
      `  export dataset: ${fmt(exportData.patients)} patients + ${fmt(exportData.observations)} observations in ${exportData.files} bundles, generated in ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
  }
  return exportData;
}

/** Counts the lines of a streamed body (newlines, plus a last line without one) without keeping it. */
async function countLines(body: ReadableStream<Uint8Array>): Promise<{ lines: number; bytes: number }> {
  let lines = 0;
  let bytes = 0;
  let last = 10;
  const reader = body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) {
      break;
    }
    bytes += value.length;
    for (let i = value.indexOf(10); i >= 0; i = value.indexOf(10, i + 1)) {
      lines++;
    }
    if (value.length > 0) {
      last = value[value.length - 1];
    }
  }
  return { lines: lines + (bytes > 0 && last !== 10 ? 1 : 0), bytes };
}

interface ExportManifest {
  transactionTime?: string;
  output?: { type: string; url: string; count?: number }[];
  error?: unknown[];
}

/** Files downloaded at once, as a client would (the export has one file per type). */
const EXPORT_DOWNLOADS = 4;

/**
 * `GET /$export` of everything (kick-off, polling every 100 ms, then every file streamed and its
 * lines counted), timed from the kick-off to the last byte of the last file, with the server's
 * RSS sampled meanwhile.
 */
async function runExport(label: StoreLabel): Promise<void> {
  await guard(label, 'export', 'resources/s', async () => {
    const data = exportDataset();
    const store = await freshStore(label, 'export');
    const notes: string[] = [];
    try {
      console.log(`  export store: ${store.describe}`);
      notes.push(await importSearchData(label, store, data, 'export'));
      const server = await startContinuum(store, `continuum-${label}-export`);
      try {
        const pid = server.child.proc.pid as number;
        const rssBeforeMb = procMemMb(pid, 'VmRSS');
        const hwmBeforeMb = procMemMb(pid, 'VmHWM');
        let sampledPeakMb = rssBeforeMb;
        const sampler = setInterval(() => {
          try {
            sampledPeakMb = Math.max(sampledPeakMb, procMemMb(pid, 'VmRSS'));
          } catch {
            // the server exited; the case fails below
          }
        }, 100);
        let stats: ExportStats;
        try {
          console.log(`  export: ${fmt(data.resources)} resources, kick-off...`);
          const started = process.hrtime.bigint();
          const seconds = (): number => Number(process.hrtime.bigint() - started) / 1e9;
          const kick = await fetch(`${server.base}/$export`, { headers: { ...ACCEPT, prefer: 'respond-async' } });
          const kickText = await kick.text();
          const statusUrl = kick.headers.get('content-location');
          if (kick.status !== 202 || !statusUrl) {
            throw new Error(`kick-off answered ${kick.status} (Content-Location ${String(statusUrl)}): ${kickText.slice(0, 300)}`);
          }
          let manifest: ExportManifest | undefined;
          let polls = 0;
          const deadline = Date.now() + 60 * 60_000;
          while (!manifest) {
            const res = await fetch(statusUrl, { headers: ACCEPT });
            const text = await res.text();
            polls++;
            if (res.status === 200) {
              manifest = JSON.parse(text) as ExportManifest;
            } else if (res.status !== 202) {
              throw new Error(`status answered ${res.status} after ${seconds().toFixed(1)} s: ${text.slice(0, 300)}`);
            } else if (Date.now() > deadline || !isRunning(server.child)) {
              throw new Error(`the export did not complete (last X-Progress: ${String(res.headers.get('x-progress'))})`);
            } else {
              await sleep(100);
            }
          }
          const manifestSeconds = seconds();
          const output = manifest.output ?? [];
          if ((manifest.error ?? []).length > 0) {
            notes.push(`the manifest lists ${(manifest.error ?? []).length} error file(s)`);
          }
          let resources = 0;
          let bytes = 0;
          let next = 0;
          const worker = async (): Promise<void> => {
            while (next < output.length) {
              const entry = output[next++];
              const res = await fetch(entry.url, { headers: { ...ACCEPT, accept: 'application/fhir+ndjson' } });
              if (res.status !== 200 || !res.body) {
                throw new Error(`GET ${entry.url} answered ${res.status}: ${(await res.text()).slice(0, 300)}`);
              }
              const got = await countLines(res.body);
              if (entry.count !== undefined && got.lines !== entry.count) {
                throw new Error(`the ${entry.type} file holds ${got.lines} lines; the manifest says ${entry.count}`);
              }
              resources += got.lines;
              bytes += got.bytes;
            }
          };
          await Promise.all(Array.from({ length: Math.min(EXPORT_DOWNLOADS, output.length) }, worker));
          const totalSeconds = seconds();
          // The server also stores the conformance resources of profiles/ at start.
          const seeded = await conformanceCount(server.base);
          if (resources !== data.resources + seeded) {
            throw new Error(`the export holds ${resources} resources in ${output.length} files; the store holds ${data.resources} + ${seeded} conformance resources`);
          }
          const hwmMb = procMemMb(pid, 'VmHWM');
          stats = {
            resources,
            files: output.length,
            bytes,
            manifestSeconds,
            downloadSeconds: totalSeconds - manifestSeconds,
            totalSeconds,
            perSec: resources / totalSeconds,
            polls,
            rssBeforeMb,
            rssPeakMb: hwmMb > hwmBeforeMb ? hwmMb : sampledPeakMb,
            hwmMb,
          };
        } finally {
          clearInterval(sampler);
        }
        notes.push(
          `${fmt(stats.resources)} resources in ${stats.files} files (${fmt(stats.bytes / 1e6, 1)} MB): kick-off to manifest ${stats.manifestSeconds.toFixed(1)} s (${stats.polls} polls), ` +
            `downloads ${stats.downloadSeconds.toFixed(1)} s (${fmt(stats.bytes / 1e6 / Math.max(stats.downloadSeconds, 1e-3), 1)} MB/s), total ${stats.totalSeconds.toFixed(1)} s`,
          `server RSS ${stats.rssBeforeMb.toFixed(0)} MB before the kick-off, peak ${stats.rssPeakMb.toFixed(0)} MB during the export (VmHWM over its life ${stats.hwmMb.toFixed(0)} MB)`,
        );
        const targets: Target[] = [
          { text: `>= ${fmt(TARGETS.exportPerSec)} resources/s`, pass: stats.perSec >= TARGETS.exportPerSec },
          { text: `peak RSS < ${TARGETS.exportRssMb} MB`, pass: stats.rssPeakMb < TARGETS.exportRssMb },
        ];
        // Interactive reads while export jobs run in the background (kick-off to manifest, over
        // and over) against the same reads without: what a running export costs other clients.
        const one = (await getBundle(server.base, '/Patient?_count=1')).entry?.[0]?.resource?.id;
        if (one) {
          const readUrl = `${server.base}/Patient/${one}`;
          const alone = await measure({ url: readUrl, headers: ACCEPT });
          let jobs = 0;
          let stop = false;
          const exporter = (async (): Promise<void> => {
            while (!stop) {
              const kick = await fetch(`${server.base}/$export`, { headers: { ...ACCEPT, prefer: 'respond-async' } });
              await kick.arrayBuffer();
              const statusUrl = kick.headers.get('content-location');
              if (kick.status !== 202 || !statusUrl) {
                await sleep(50);
                continue;
              }
              for (;;) {
                const st = await fetch(statusUrl, { headers: ACCEPT });
                await st.arrayBuffer();
                if (st.status !== 202 || stop) {
                  break;
                }
                await sleep(100);
              }
              (await fetch(statusUrl, { method: 'DELETE', headers: ACCEPT })).body?.cancel().catch(() => undefined);
              jobs++;
            }
          })();
          const during = await measure({ url: readUrl, headers: ACCEPT });
          stop = true;
          await exporter;
          const share = during.okPerSec / alone.okPerSec;
          notes.push(
            `reads while export jobs ran (${jobs} jobs, kick-off to manifest, one after another): ${fmt(during.okPerSec)} req/s against ${fmt(alone.okPerSec)} without = ${(share * 100).toFixed(1)} %`,
          );
          targets.push({ text: `reads during background export jobs >= ${TARGETS.exportInterference * 100} % of without`, pass: share >= TARGETS.exportInterference });
        }
        return { value: stats.perSec, export: stats, targets, verdict: verdictOf(false, targets), notes };
      } finally {
        await stopChild(server.child);
      }
    } finally {
      await store.dispose();
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Bots: $execute throughput, pre-commit overhead, post-commit latency, queue drain

interface AuditEventLite {
  id?: string;
  recorded?: string;
  outcome?: string;
  outcomeDesc?: string;
  subtype?: { system?: string; code?: string }[];
}

/** Bot runs of one bot from $audit-log, oldest first (the server's audit trail of each run). */
async function botRuns(base: string, bot: string, stopAt?: number): Promise<{ recorded: string; log: string[]; ok: boolean }[]> {
  const runs: { recorded: string; log: string[]; ok: boolean }[] = [];
  let cursor: string | undefined;
  for (;;) {
    const res = await fetch(`${base}/$audit-log?client=${encodeURIComponent(`bot:${bot}`)}&_count=1000${cursor ? `&_cursor=${cursor}` : ''}`, { headers: ACCEPT });
    if (res.status !== 200) {
      throw new Error(`$audit-log answered ${res.status}: ${(await res.text()).slice(0, 300)}`);
    }
    const bundle = (await res.json()) as { entry?: { resource: AuditEventLite }[]; link?: { relation: string }[] };
    for (const e of bundle.entry ?? []) {
      cursor = e.resource.id;
      if (e.resource.subtype?.some((s) => s.system?.endsWith('/bot-event'))) {
        const detail = JSON.parse(e.resource.outcomeDesc ?? '{}') as { log?: string[] };
        runs.push({ recorded: e.resource.recorded ?? '', log: detail.log ?? [], ok: e.resource.outcome === '0' });
      }
    }
    if (!bundle.link?.some((l) => l.relation === 'next') || (stopAt !== undefined && runs.length >= stopAt)) {
      return runs;
    }
  }
}

const percentile = (values: number[], p: number): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
};

async function runBots(label: StoreLabel): Promise<void> {
  await guard(label, 'bots', 'runs/s', async () => {
    const store = await freshStore(label, 'bots');
    const notes: string[] = [];
    const targets: Target[] = [];
    try {
      // Deploy the benchmark bots and queue CONFIG.botEvents events before the server starts.
      const deploy = spawnNode(`bots-deploy-${label}`, CLI, ['bots', 'deploy', join(ROOT, 'bench', 'bots'), ...store.args]);
      if ((await deploy.exited) !== 0) {
        throw new Error(`continuum bots deploy failed:\n${tail(deploy.stderr() + deploy.stdout())}`);
      }
      const dir = mkdtempSync(join(tempRoot(), 'bots-events-'));
      const lines: string[] = [];
      for (let i = 0; i < CONFIG.botEvents; i++) {
        lines.push(JSON.stringify({ resourceType: 'Medication', id: `m${i}`, code: { text: `bench ${i}` } }));
      }
      writeFileSync(join(dir, 'medications.ndjson'), lines.join('\n') + '\n');
      const load = spawnNode(`bots-events-${label}`, CLI, ['import', dir, ...store.args]);
      if ((await load.exited) !== 0) {
        throw new Error(`loading the queued events failed:\n${tail(load.stderr() + load.stdout())}`);
      }
      rmSync(dir, { recursive: true, force: true });
      const server = await startContinuum(store, `continuum-${label}-bots`);
      try {
        // 1. Drain: the server works the queue from its start; rate from the runs' own timestamps.
        const deadline = Date.now() + 300_000;
        let drained: { recorded: string }[] = [];
        while (Date.now() < deadline) {
          drained = await botRuns(server.base, 'bench-drain');
          if (drained.length >= CONFIG.botEvents) {
            break;
          }
          await sleep(500);
        }
        if (drained.length < CONFIG.botEvents) {
          throw new Error(`only ${drained.length} of ${CONFIG.botEvents} queued events ran within 5 minutes; server stderr:\n${tail(server.child.stderr(), 20)}`);
        }
        const spanSeconds = (Date.parse(drained[drained.length - 1].recorded) - Date.parse(drained[0].recorded)) / 1000;
        const drainPerSec = (drained.length - 1) / Math.max(spanSeconds, 1e-3);
        notes.push(`queue: ${fmt(drained.length)} queued post-commit events drained in ${spanSeconds.toFixed(2)} s = ${fmt(drainPerSec)} runs/s (first to last run, audit timestamps)`);
        targets.push({ text: `drain >= ${fmt(TARGETS.botDrainPerSec)} runs/s`, pass: drainPerSec >= TARGETS.botDrainPerSec });

        // 2. $execute of a trivial bot, against a plain read on the same server.
        const execute = await measure({
          url: `${server.base}/Library/bot-bench-trivial/$execute`,
          method: 'POST',
          headers: { ...ACCEPT, 'content-type': 'application/fhir+json' },
          body: '{"resourceType":"Parameters"}',
        });
        const failed = judgeErrors(execute, server.child, notes);
        const read = await measure({ url: `${server.base}/Library/bot-bench-trivial`, headers: ACCEPT });
        notes.push(`$execute: ${fmt(execute.okPerSec)} runs/s (p50 ${execute.latencyP50Ms} ms) = ${(execute.okPerSec / read.okPerSec).toFixed(2)}x a read of the bot's Library (${fmt(read.okPerSec)} req/s) on the same server`);
        targets.push({ text: `$execute >= ${fmt(TARGETS.botExecutePerSec)} runs/s`, pass: execute.okPerSec >= TARGETS.botExecutePerSec });

        // 3. Pre-commit overhead: one connection, creates of a type with a pre-commit bot (Basic)
        //    against creates of a type without triggers (Substance), interleaved in rounds.
        const latency = async (type: string): Promise<number> => {
          const r = await cannon({ url: `${server.base}/${type}`, method: 'POST', headers: { ...ACCEPT, 'content-type': 'application/fhir+json', prefer: 'return=minimal' }, body: JSON.stringify({ resourceType: type, code: { text: 'bench' } }), connections: 1, amount: 1000 });
          return r.latency.mean;
        };
        await latency('Basic');
        await latency('Substance');
        const withBot: number[] = [];
        const without: number[] = [];
        for (let round = 0; round < 3; round++) {
          withBot.push(await latency('Basic'));
          without.push(await latency('Substance'));
        }
        const overheadMs = percentile(withBot, 50) - percentile(without, 50);
        notes.push(`pre-commit: a create with a trivial pre-commit bot ${percentile(withBot, 50).toFixed(2)} ms mean vs ${percentile(without, 50).toFixed(2)} ms without (median of 3 rounds of 1,000): +${overheadMs.toFixed(2)} ms`);
        targets.push({ text: `pre-commit overhead <= ${TARGETS.botPreCommitMs} ms`, pass: overheadMs <= TARGETS.botPreCommitMs });

        // 4. Post-commit latency: spaced creates; each run logs how long after the write's timestamp it started.
        for (let i = 0; i < CONFIG.botLatencySamples; i++) {
          const res = await fetch(`${server.base}/Device`, { method: 'POST', headers: { ...ACCEPT, 'content-type': 'application/fhir+json', prefer: 'return=minimal' }, body: '{"resourceType":"Device"}' });
          await res.arrayBuffer();
          await sleep(20);
        }
        let runs: { log: string[] }[] = [];
        for (let i = 0; i < 50 && runs.length < CONFIG.botLatencySamples; i++) {
          await sleep(200);
          runs = await botRuns(server.base, 'bench-post');
        }
        const lags = runs.map((r) => Number(/lag=(\d+)/.exec(r.log.join(' '))?.[1])).filter((n) => Number.isFinite(n));
        if (lags.length === 0) {
          throw new Error('no post-commit run reported its latency');
        }
        const p50 = percentile(lags, 50);
        notes.push(`post-commit: from the write's timestamp (just before its commit) to the bot's start, p50 ${p50} ms, p95 ${percentile(lags, 95)} ms, max ${Math.max(...lags)} ms (${lags.length} runs)`);
        targets.push({ text: `post-commit latency p50 <= ${TARGETS.botPostCommitP50Ms} ms`, pass: p50 <= TARGETS.botPostCommitP50Ms });
        return { value: execute.okPerSec, http: execute, targets, verdict: verdictOf(failed, targets), notes };
      } finally {
        await stopChild(server.child);
      }
    } finally {
      await store.dispose();
    }
  });
}

// ---------------------------------------------------------------------------------------------
// CCM: month close and worklist over a generated population (bench/ccm.ts)

let ccmData: CcmDataset | undefined;

async function runCcmCase(label: StoreLabel): Promise<void> {
  await guard(label, 'ccm', 's', async () => {
    if (!ccmData) {
      const started = Date.now();
      ccmData = generateCcmDataset(join(tempRoot(), 'ccm-data'), CONFIG.ccmPatients, CONFIG.ccmEntries);
      console.log(
        `  ccm dataset: ${fmt(ccmData.patients)} enrolled patients x ${ccmData.entries} time entries in ${ccmData.month} (+ ${fmt(ccmData.nonEnrolled)} not enrolled), ` +
          `${fmt(ccmData.resources)} resources, generated in ${((Date.now() - started) / 1000).toFixed(1)} s`,
      );
    }
    return await runCcm(
      {
        label,
        root: ROOT,
        tempRoot,
        headers: () => ACCEPT,
        freshStore: () => freshStore(label, 'ccm'),
        cli: async (name, args) => {
          const child = spawnNode(name, CLI, args);
          const code = await child.exited;
          return { code, output: child.stdout() + child.stderr() };
        },
        importData: (store, data) => importSearchData(label, store as StoreInstance, data, 'ccm'),
        startServer: async (store) => {
          const server = await startContinuum(store as StoreInstance, `continuum-${label}-ccm`);
          return { base: server.base, alive: () => isRunning(server.child), log: () => server.child.stderr() + server.child.stdout(), stop: () => stopChild(server.child) };
        },
      },
      ccmData,
      CONFIG.ccmRuns,
    );
  });
}

type CaseOutcome = Omit<CaseResult, 'store' | 'case' | 'unit'>;

/** Runs one case; an exception becomes a FAIL row instead of ending the run. */
async function guard(store: StoreLabel, name: CaseName, unit: string, fn: () => Promise<CaseOutcome>): Promise<void> {
  try {
    record({ store, case: name, unit, ...(await fn()) });
  } catch (err) {
    record({ store, case: name, unit, targets: [], verdict: 'FAIL', notes: [(err as Error).message] });
  }
}

async function runStore(label: StoreLabel): Promise<void> {
  console.log(`\n== Continuum on ${label === 'embedded' ? 'the embedded store (PGlite)' : `PostgreSQL (${hideSecret(CONFIG.databaseUrl as string)})`} ==`);
  if (CONFIG.cases.has('read') || CONFIG.cases.has('create')) {
    try {
      await runReadAndCreate(label);
    } catch (err) {
      // The server did not start: both cases fail.
      for (const name of ['read', 'create'] as const) {
        if (CONFIG.cases.has(name)) {
          record({ store: label, case: name, unit: 'req/s', targets: [], verdict: 'FAIL', notes: [(err as Error).message] });
        }
      }
    }
  }
  if (CONFIG.cases.has('import')) {
    await runImport(label);
  }
  if (CONFIG.cases.has('memory')) {
    await runMemory(label);
  }
  if (SEARCH_CASES.some((c) => CONFIG.cases.has(c))) {
    await runSearch(label);
  }
  if (CONFIG.cases.has('export')) {
    await runExport(label);
  }
  if (CONFIG.cases.has('bots')) {
    await runBots(label);
  }
  if (CONFIG.cases.has('ccm')) {
    await runCcmCase(label);
  }
}

// ---------------------------------------------------------------------------------------------
// Output

const fmt = (n: number | undefined, digits = 0): string =>
  n === undefined || !Number.isFinite(n) ? '-' : n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

/** autocannon records latency in whole milliseconds: 0 means under 1 ms. */
const ms = (n: number): string => (n === 0 ? '<1' : fmt(n));

function headline(r: CaseResult): string {
  return r.value === undefined ? '-' : `${fmt(r.value, r.unit === 's' ? 2 : 0)} ${r.unit}`;
}

function printCase(r: CaseResult): void {
  const parts = [`  ${r.case.padEnd(12)} ${headline(r)}`];
  const h = r.http;
  if (h && r.case !== 'memory') {
    parts.push(`(mean ${fmt(h.reqPerSecMean)} req/s, ${fmt(h.ok2xx)} x 2xx in ${h.durationSeconds.toFixed(1)} s)`);
    parts.push(`p50 ${ms(h.latencyP50Ms)} ms, p99 ${ms(h.latencyP99Ms)} ms`);
    parts.push(`non-2xx ${h.non2xx}, errors ${h.errors}`);
  }
  if (r.ratioToBare !== undefined) {
    parts.push(`${(r.ratioToBare * 100).toFixed(0)}% of bare`);
  }
  if (r.reference) {
    parts.push(refText(r.reference));
  }
  const targets = r.targets.map((t) => `${t.text}: ${t.pass ? 'ok' : 'no'}`).join('; ');
  console.log(`${parts.join('  ')}  => ${r.verdict}${targets ? ` (${targets})` : ''}`);
  for (const n of r.notes) {
    console.log(`      ${n}`);
  }
}

/** `3.10x Medplum`, `0.82x plain`. */
function refText(ref: NonNullable<CaseResult['reference']>): string {
  return `${ref.ratio.toFixed(2)}x ${ref.to}`;
}

function printTable(): void {
  const header = ['Store', 'Case', 'Result', 'req/s mean', 'p50 ms', 'p99 ms', 'non-2xx', 'errors', 'vs bare', 'vs ref', 'Target', 'Verdict'];
  const rows = results.map((r) => {
    const h = r.case === 'memory' ? undefined : r.http;
    return [
      r.store,
      r.case,
      headline(r),
      h ? fmt(h.reqPerSecMean) : '-',
      h ? ms(h.latencyP50Ms) : '-',
      h ? ms(h.latencyP99Ms) : '-',
      r.http ? String(r.http.non2xx) : r.import ? String(r.import.failed) : '-',
      r.http ? String(r.http.errors) : '-',
      r.ratioToBare === undefined ? '-' : `${(r.ratioToBare * 100).toFixed(0)}%`,
      r.reference ? refText(r.reference) : '-',
      r.targets.map((t) => t.text).join(' & ') || '-',
      r.verdict,
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i >= 2 && i <= 9 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ');
  console.log('\n== Results ==');
  console.log(`(${CONFIG.connections} connections, ${CONFIG.seconds} s per case after ${CONFIG.warmupSeconds} s warm-up; "Result" counts 2xx only; latency in whole ms; import non-2xx = failed resources)`);
  if (results.some((r) => r.reference)) {
    console.log(`("vs ref": search figures over Medplum's on the same kind of machine (${fmt(MEDPLUM.searchNamePerSec)} req/s one-hit name search, ${fmt(MEDPLUM.searchPagePerSec)} req/s 20-result page); the chained search over the plain one)`);
  }
  console.log(`(1-minute load average: ${loadAtStart?.toFixed(2) ?? '?'} at start, ${loadavg()[0].toFixed(2)} at the end, on ${cpus().length} CPUs)`);
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const row of rows) {
    console.log(line(row));
  }
}

/** The commit measured, with `-dirty` when src/ has uncommitted changes. */
function gitCommit(): string | undefined {
  const git = (...args: string[]): string =>
    execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  try {
    return git('rev-parse', '--short', 'HEAD') + (git('status', '--porcelain', '--', 'src') ? '-dirty' : '');
  } catch {
    return undefined;
  }
}

function writeResults(): string {
  mkdirSync(OUT_DIR, { recursive: true });
  const file = join(OUT_DIR, 'results.json');
  const doc = {
    date: new Date().toISOString(),
    commit: gitCommit(),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    cpus: `${cpus().length} x ${cpus()[0]?.model ?? '?'}`,
    memoryMb: Math.round(totalmem() / 1024 / 1024),
    /** 1-minute load average before the first case and after the last: other work skews results. */
    loadAverage: { start: loadAtStart, end: loadavg()[0] },
    config: {
      seconds: CONFIG.seconds,
      warmupSeconds: CONFIG.warmupSeconds,
      connections: CONFIG.connections,
      creates: CONFIG.creates,
      readIds: CONFIG.readIds,
      searchPatients: CONFIG.searchPatients,
      searchObservations: CONFIG.searchObservations,
      searchAnalyze: CONFIG.searchAnalyze,
      exportResources: CONFIG.exportResources,
      ccmPatients: CONFIG.ccmPatients,
      ccmEntries: CONFIG.ccmEntries,
      ccmRuns: CONFIG.ccmRuns,
      cases: [...CONFIG.cases],
      stores: CONFIG.stores,
      syntheaDir: CONFIG.syntheaDir,
      postgres: CONFIG.databaseUrl ? hideSecret(CONFIG.databaseUrl) : null,
    },
    targets: TARGETS,
    medplum: MEDPLUM,
    results,
  };
  writeFileSync(file, JSON.stringify(doc, null, 2) + '\n');
  return file;
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  for (const [what, file] of [['the CLI', CLI], ['the baseline', BARE]] as const) {
    if (!existsSync(file)) {
      throw new Error(`${what} is not built (${file} missing); run 'npm run bench', which builds first`);
    }
  }
  console.log(
    `Continuum benchmark: ${CONFIG.connections} connections, ${CONFIG.seconds} s per case (+${CONFIG.warmupSeconds} s warm-up), ` +
      `${CONFIG.creates} creates for RSS, stores: ${CONFIG.stores.join(' + ')}${CONFIG.databaseUrl ? '' : ' (set DATABASE_URL for PostgreSQL too)'}`,
  );
  console.log(`Node ${process.version}, ${cpus().length} CPUs; client and servers share this machine over 127.0.0.1`);
  loadAtStart = loadavg()[0];
  if (loadAtStart > 1) {
    console.log(`Note: the 1-minute load average is ${loadAtStart.toFixed(2)} before starting; other work on this machine skews the figures.`);
  }
  try {
    if (CONFIG.cases.has('bare') || CONFIG.cases.has('read')) {
      try {
        await runBare();
      } catch (err) {
        record({ store: '-', case: 'bare', unit: 'req/s', targets: [], verdict: 'FAIL', notes: [(err as Error).message] });
      }
    }
    for (const store of CONFIG.stores) {
      await runStore(store);
    }
  } finally {
    await cleanup();
  }
  printTable();
  console.log(`\nWrote ${writeResults()}`);
  if (CONFIG.cpuProf) {
    console.log(`CPU profiles of the server children: ${PROFILE_DIR}`);
  }
  const failed = results.filter((r) => r.verdict === 'FAIL');
  if (failed.length > 0) {
    console.error(`\nFAILED: ${failed.map((r) => `${r.store}/${r.case}`).join(', ')} (see the notes above)`);
    return 1;
  }
  const missed = results.filter((r) => r.verdict === 'MISS');
  console.log(missed.length > 0 ? `Targets missed: ${missed.map((r) => `${r.store}/${r.case}`).join(', ')}` : 'All targets met.');
  return 0;
}

void main()
  .catch(async (err: unknown) => {
    console.error('bench:', err instanceof Error ? err.message : err);
    await cleanup();
    return 1;
  })
  .then((code) => {
    process.exitCode = code;
  });
