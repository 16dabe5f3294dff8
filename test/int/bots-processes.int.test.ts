/**
 * Bots on several Continuum processes sharing one PostgreSQL database (DATABASE_URL): the durable
 * job queue is shared, so each post-commit event runs once per bot whichever process wrote it or
 * claimed it, and a process killed in the middle of a run loses no event (a process started on
 * the same store finishes it once the dead process's lease runs out).
 *
 * The processes are real: `node dist/src/cli.js serve --database-url ... --no-bots` (`npm run build`
 * first; `npm test` does it; --no-bots: the project's ./bots stay out of the counts). The kill test starts its processes with CONTINUUM_BOT_LEASE_MS (a short
 * lease, so the restarted process need not wait the default 30 s); it waits for whatever lease the
 * killed process actually wrote, so it holds with the default lease too, only slower.
 * Without DATABASE_URL the file is skipped (one embedded store has no second process).
 */
import { botLibrary as makeBotLibrary } from '../support/bots';
import type { ChildProcess } from 'node:child_process';
import type { Bundle, BundleEntry, Library, Subscription } from '@medplum/fhirtypes';
import { Client } from 'pg';
import { BOT_EXT, SUBSCRIPTION_EXT } from '../../src/bots/definition';
import { patient } from '../support/builders';
import { cleanEnv, startServe } from '../support/process';
import { FHIR_JSON, freshSchema, usingPostgres } from '../support/server';

jest.setTimeout(120_000);

interface Reply {
  status: number;
  body: Record<string, unknown>;
}

interface Served {
  name: string;
  base: string;
  child: ChildProcess;
  output: () => string;
  exited: Promise<unknown>;
  devSecret?: string;
  authorize: (secret: string) => Promise<void>;
  call: (method: string, path: string, body?: unknown) => Promise<Reply>;
}

/** `continuum serve --database-url <url>` with extra environment variables, once GET /metadata answers. */
async function serve(name: string, databaseUrl: string, env: Record<string, string> = {}): Promise<Served> {
  const { child, base, output, exited, devSecret, token } = await startServe(['--database-url', databaseUrl, '--no-bots'], {
    label: name,
    env: { ...cleanEnv(), ...env },
  });
  let bearer = '';
  const call = async (method: string, path: string, body?: unknown): Promise<Reply> => {
    const auth = { Authorization: `Bearer ${bearer}` };
    const res = await fetch(path.startsWith('http') ? path : `${base}/${path}`, {
      method,
      headers: body === undefined ? auth : { 'Content-Type': FHIR_JSON, ...auth },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (res.status >= 500) {
      throw new Error(`${name}: ${method} ${path} answered ${res.status} ${text}\n${output()}`);
    }
    return { status: res.status, body: (text ? JSON.parse(text) : {}) as Record<string, unknown> };
  };
  return {
    name,
    base,
    child,
    output,
    exited,
    devSecret,
    call,
    authorize: async (secret) => {
      bearer = await token(secret);
    },
  };
}

async function stop(s: Served | undefined): Promise<void> {
  if (s && s.child.exitCode === null && s.child.signalCode === null) {
    s.child.kill('SIGTERM');
    await s.exited;
  }
}

/** The environment variable through which a bot tells which process ran it (granted to the bot). */
const PROCESS_VAR = 'CONTINUUM_TEST_PROCESS';
const PROCESS_SYSTEM = 'urn:continuum-test:process';

/** A bot Library from TypeScript source; the bot may read PROCESS_VAR. */
function botLibrary(id: string, source: string): Library {
  return makeBotLibrary(id, source, 'system/*.cruds', [{ url: BOT_EXT.grant, valueString: `env:${PROCESS_VAR}` }]);
}

/** A post-commit trigger of `bot` on every Patient create. */
function patientTrigger(id: string, bot: string): Subscription {
  return {
    resourceType: 'Subscription',
    id,
    status: 'active',
    reason: 'test',
    criteria: 'Patient',
    channel: { type: 'message', endpoint: `Library/${bot}` },
    extension: [
      { url: SUBSCRIPTION_EXT.phase, valueCode: 'post-commit' },
      { url: SUBSCRIPTION_EXT.interaction, valueCode: 'create' },
    ],
  };
}

/** The handler: one Basic per run, `code.text = <prefix><patient id>`, naming the process that ran it. */
const basicPerRun = (prefix: string, wait = ''): string => `
  export async function handler(event: any, ctx: any) {
    ${wait}
    await ctx.fhir.createResource({
      resourceType: 'Basic',
      code: { text: '${prefix}' + event.resource.id },
      identifier: [{ system: '${PROCESS_SYSTEM}', value: ctx.env.${PROCESS_VAR} ?? 'unknown' }],
    });
  }`;

async function put(s: Served, resource: Library | Subscription): Promise<void> {
  const res = await s.call('PUT', `${resource.resourceType}/${resource.id as string}`, resource);
  if (res.status !== 200 && res.status !== 201) {
    throw new Error(`PUT ${resource.resourceType}/${resource.id as string}: ${res.status} ${JSON.stringify(res.body)}`);
  }
}

/** Every Basic on the server, through `s`'s API (following next links): code.text and the process that made it. */
async function allBasics(s: Served): Promise<{ text: string; process: string }[]> {
  const out: { text: string; process: string }[] = [];
  let next: string | undefined = 'Basic?_count=500';
  while (next) {
    const page = await s.call('GET', next.startsWith('http') ? `${s.base}${new URL(next).pathname}${new URL(next).search}` : next);
    expect(page.status).toBe(200);
    const bundle = page.body as unknown as Bundle;
    for (const e of bundle.entry ?? []) {
      const r = e.resource as { code?: { text?: string }; identifier?: { system?: string; value?: string }[] };
      out.push({ text: r.code?.text ?? '', process: r.identifier?.find((i) => i.system === PROCESS_SYSTEM)?.value ?? '' });
    }
    next = bundle.link?.find((l) => l.relation === 'next')?.url;
  }
  return out;
}

/** How many Basics the server holds, through `s`'s API (_summary=count). */
async function basicCount(s: Served): Promise<number> {
  const res = await s.call('GET', 'Basic?_summary=count');
  expect(res.status).toBe(200);
  return (res.body as unknown as Bundle).total as number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns a value (not undefined) or `ms` pass; then fails with `what()`. */
async function waitFor<T>(ms: number, check: () => Promise<T | undefined>, what: () => string | Promise<string>, every = 100): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) {
      return v;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${ms} ms: ${await what()}`);
    }
    await sleep(every);
  }
}

interface JobCounts {
  total: number;
  queued: number;
  done: number;
  dead: number;
}

async function jobCounts(db: Client, target: string): Promise<JobCounts> {
  const r = await db.query<{ total: string; queued: string; done: string; dead: string }>(
    `SELECT count(*) AS total, count(*) FILTER (WHERE status = 'queued') AS queued,
            count(*) FILTER (WHERE status = 'done') AS done, count(*) FILTER (WHERE status = 'dead') AS dead
     FROM job WHERE target = $1`,
    [target],
  );
  const row = r.rows[0];
  return { total: Number(row.total), queued: Number(row.queued), done: Number(row.done), dead: Number(row.dead) };
}

/** The ids of the Patients a transaction created, from its response Bundle. */
function createdIds(reply: Reply): string[] {
  expect(reply.status).toBe(200);
  const entries = ((reply.body as unknown as Bundle).entry ?? []) as BundleEntry[];
  return entries.map((e) => {
    expect(e.response?.status).toMatch(/^201/);
    const m = /^Patient\/([^/]+)\/_history\/1$/.exec(e.response?.location ?? '');
    expect(m).not.toBeNull();
    return (m as RegExpExecArray)[1];
  });
}

const patientsTransaction = (n: number, family: string): Bundle => ({
  resourceType: 'Bundle',
  type: 'transaction',
  entry: Array.from({ length: n }, () => ({ request: { method: 'POST', url: 'Patient' }, resource: patient({ name: [{ family }] }) })),
});

if (usingPostgres()) {
  describe('bots on two Continuum processes sharing one PostgreSQL queue', () => {
    let url: string;
    let drop: () => Promise<void>;
    let db: Client;
    let a: Served;
    let b: Served;

    beforeAll(async () => {
      const s = await freshSchema();
      url = s.url;
      drop = s.drop;
      [a, b] = await Promise.all([serve('A', url, { [PROCESS_VAR]: 'A' }), serve('B', url, { [PROCESS_VAR]: 'B' })]);
      const secret = (a.devSecret ?? b.devSecret) as string;
      await a.authorize(secret);
      await b.authorize(secret);
      db = new Client({ connectionString: url });
      await db.connect();
    });

    afterAll(async () => {
      await Promise.all([stop(a), stop(b)]);
      await db?.end();
      await drop?.();
    });

    test('1,000 Patients written through both processes: each post-commit event runs exactly once, and both processes run jobs', async () => {
      await put(a, botLibrary('counter', basicPerRun('run:')));
      await put(a, patientTrigger('counter-patients', 'counter'));

      // B learns of the new bot and trigger by its periodic reload (every 2 s): probe each process
      // with a Patient until the probe's write enqueued a job (A knows at once, it wrote them).
      // Probes written before that enqueue nothing and so run nothing.
      const probes: string[] = [];
      const unheard: string[] = [];
      for (const s of [a, b]) {
        await waitFor(
          15_000,
          async () => {
            const created = await s.call('POST', 'Patient', patient({ name: [{ family: 'Probe' }] }));
            expect(created.status).toBe(201);
            const id = created.body.id as string;
            const job = await db.query('SELECT 1 FROM job WHERE key = $1', [`counter-patients:Patient/${id}/_history/1`]);
            (job.rows.length > 0 ? probes : unheard).push(id);
            return job.rows.length > 0 ? true : undefined;
          },
          () => `${s.name} never enqueued a run for a new Patient (it did not pick up the trigger)`,
          250,
        );
      }

      // 1,000 Patients in transactions of 50, alternating between the processes, two at a time per process.
      const bundles = Array.from({ length: 20 }, () => patientsTransaction(50, 'Load'));
      const loaded: string[] = [];
      const started = Date.now();
      await Promise.all(
        [a, b].flatMap((s, si) =>
          [0, 1].map(async (lane) => {
            for (let i = si + 2 * lane; i < bundles.length; i += 4) {
              loaded.push(...createdIds(await s.call('POST', '', bundles[i])));
            }
          }),
        ),
      );
      expect(loaded).toHaveLength(1000);
      expect(new Set(loaded).size).toBe(1000);
      const everyPatient = [...probes, ...loaded];

      // Wait until every event's job is done (each was enqueued with its write).
      const counts = await waitFor(
        60_000,
        async () => {
          const c = await jobCounts(db, 'Library/counter');
          return c.queued === 0 && c.total >= everyPatient.length ? c : undefined;
        },
        async () => `jobs still queued: ${JSON.stringify(await jobCounts(db, 'Library/counter'))}`,
        250,
      );
      const drainedMs = Date.now() - started;
      // One job per event, all done, none dead.
      expect(counts).toEqual({ total: everyPatient.length, queued: 0, done: everyPatient.length, dead: 0 });
      // Each job ran once: no job needed a second attempt.
      const retried = await db.query<{ key: string; attempts: number }>(`SELECT key, attempts FROM job WHERE target = 'Library/counter' AND attempts <> 1`);
      expect(retried.rows).toEqual([]);

      // Exactly one run per event: one Basic per Patient, none twice, none for anything else.
      const basics = await allBasics(a);
      const runs = new Map<string, number>();
      for (const x of basics) {
        runs.set(x.text, (runs.get(x.text) ?? 0) + 1);
      }
      const loadRuns = loaded.map((id) => runs.get(`run:${id}`) ?? 0);
      expect(loadRuns.filter((n) => n === 0)).toHaveLength(0);
      expect(loadRuns.filter((n) => n > 1)).toHaveLength(0);
      expect(loadRuns.reduce((x, y) => x + y, 0)).toBe(1000);
      expect([...runs.entries()].filter(([, n]) => n !== 1)).toEqual([]);
      expect([...runs.keys()].sort()).toEqual(everyPatient.map((id) => `run:${id}`).sort());
      expect(basics).toHaveLength(everyPatient.length);
      // Both processes count the same.
      expect(await basicCount(a)).toBe(everyPatient.length);
      expect(await basicCount(b)).toBe(everyPatient.length);

      // Both processes ran jobs (each run names its process).
      const byProcess = { A: 0, B: 0, other: 0 };
      for (const x of basics) {
        if (x.process === 'A' || x.process === 'B') {
          byProcess[x.process]++;
        } else {
          byProcess.other++;
        }
      }
      console.log(`bots-processes: ${everyPatient.length} events (${probes.length} probes; ${unheard.length} written before B knew the trigger) drained in ${drainedMs} ms; runs by process ${JSON.stringify(byProcess)}`);
      expect(byProcess.other).toBe(0);
      expect(byProcess.A).toBeGreaterThan(0);
      expect(byProcess.B).toBeGreaterThan(0);
      expect(a.output()).not.toMatch(/error/i);
      expect(b.output()).not.toMatch(/error/i);
    });
  });

  describe('a process killed in the middle of a bot run', () => {
    const LEASE_MS = 2000;
    let drop: () => Promise<void>;
    let db: Client;
    let first: Served | undefined;
    let second: Served | undefined;

    afterAll(async () => {
      if (first && first.child.exitCode === null && first.child.signalCode === null) {
        first.child.kill('SIGKILL');
        await first.exited;
      }
      await stop(second);
      await db?.end();
      await drop?.();
    });

    test('loses no event: a process started on the same store finishes the runs once the lease runs out', async () => {
      const s = await freshSchema();
      drop = s.drop;
      db = new Client({ connectionString: s.url });
      await db.connect();
      const env = { CONTINUUM_BOT_LEASE_MS: String(LEASE_MS) };
      first = await serve('first', s.url, { ...env, [PROCESS_VAR]: 'first' });
      const secret = first.devSecret as string;
      await first.authorize(secret);

      // A bot that takes 3 s before it writes; this process wrote it, so it knows it at once.
      await put(first, botLibrary('slow', basicPerRun('slow:', 'await new Promise((r) => setTimeout(r, 3000));')));
      await put(first, patientTrigger('slow-patients', 'slow'));
      const ids = createdIds(await first.call('POST', '', patientsTransaction(5, 'Slow')));
      expect(ids).toHaveLength(5);

      // Once a run has started (a job claimed: attempted and leased), kill the process outright.
      const leased = await waitFor(
        10_000,
        async () => {
          const r = await db.query<{ key: string }>(`SELECT key FROM job WHERE target = 'Library/slow' AND attempts >= 1 AND lease_until IS NOT NULL`);
          return r.rows.length > 0 ? r.rows.map((x) => x.key) : undefined;
        },
        async () => `no run started: ${JSON.stringify((await db.query('SELECT key, status, attempts, lease_until FROM job')).rows)}\n${first?.output() ?? ''}`,
        20,
      );
      expect(first.child.kill('SIGKILL')).toBe(true);
      expect(await first.exited).toEqual({ code: null, signal: 'SIGKILL' });

      // The kill came in the middle of the runs: leased jobs remain, not done.
      const atKill = await db.query<{ key: string; status: string; attempts: number; lease_ms: string | null }>(
        `SELECT key, status, attempts, EXTRACT(EPOCH FROM (lease_until - now())) * 1000 AS lease_ms FROM job WHERE target = 'Library/slow' ORDER BY id`,
      );
      expect(atKill.rows).toHaveLength(5);
      const interrupted = atKill.rows.filter((r) => r.status === 'queued' && r.attempts >= 1 && r.lease_ms !== null);
      expect(interrupted.length).toBeGreaterThan(0);
      expect(interrupted.map((r) => r.key)).toEqual(expect.arrayContaining(leased));
      const leaseLeftMs = Math.max(0, ...atKill.rows.map((r) => Number(r.lease_ms ?? 0)));
      const doneAtKill = await db.query(`SELECT 1 FROM job WHERE target = 'Library/slow' AND status = 'done'`);

      // A new process on the same store, the same short lease.
      second = await serve('second', s.url, { ...env, [PROCESS_VAR]: 'second' });
      await second.authorize(secret);
      const restarted = Date.now();
      const done = await waitFor(
        // The dead process's leases run out, then the runs (3 s each, four at a time) finish.
        leaseLeftMs + 30_000,
        async () => {
          const c = await jobCounts(db, 'Library/slow');
          return c.done === 5 ? c : undefined;
        },
        async () => `jobs: ${JSON.stringify((await db.query(`SELECT key, status, attempts, last_error, lease_until FROM job WHERE target = 'Library/slow'`)).rows)}\n${second?.output() ?? ''}`,
        200,
      );
      console.log(
        `bots-processes: killed with ${interrupted.length} runs leased (${doneAtKill.rows.length} done), lease left ${Math.round(leaseLeftMs)} ms; restart finished in ${Date.now() - restarted} ms`,
      );
      expect(done).toEqual({ total: 5, queued: 0, done: 5, dead: 0 });

      // At least once: every Patient's event ran to the end, each interrupted run again by the new process.
      const basics = await allBasics(second);
      const texts = new Set(basics.map((x) => x.text));
      expect([...texts].sort()).toEqual(ids.map((id) => `slow:${id}`).sort());
      expect(basics.length).toBeGreaterThanOrEqual(5);
      const rerun = await db.query<{ key: string; attempts: number }>(`SELECT key, attempts FROM job WHERE key = ANY($1::text[])`, [interrupted.map((r) => r.key)]);
      for (const r of rerun.rows) {
        expect(r.attempts).toBeGreaterThanOrEqual(2);
      }
      for (const id of interrupted.map((r) => /Patient\/([^/]+)\//.exec(r.key)?.[1])) {
        expect(basics.filter((x) => x.text === `slow:${id as string}`).map((x) => x.process)).toContain('second');
      }
      expect(second.output()).not.toMatch(/error/i);
    });
  });
} else {
  test.skip('bots on several processes need PostgreSQL (set DATABASE_URL)', () => undefined);
}
