/**
 * Bots end to end: definitions through the FHIR API, pre-commit refusals, post-commit runs from the
 * durable queue, $execute, the sandbox's limits, chain depth and the audit trail of runs.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Library, Subscription } from '@medplum/fhirtypes';
import { BOT_EXT, SUBSCRIPTION_EXT } from '../../../src/bots/definition';
import { botLibrary, botTrigger } from '../../support/bots';
import { startTestServer, type TestServer } from '../../support/server';

const trigger = botTrigger;

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ bots: { retryBaseMs: 20, pollMs: 100 } });
});
afterAll(async () => {
  await server.close();
});

async function put(resource: Library | Subscription): Promise<void> {
  const res = await server.request().put(`/${resource.resourceType}/${resource.id as string}`).send(resource);
  expect([200, 201]).toContain(res.status);
}

describe('$execute', () => {
  test('runs a bot with the input and returns what it returned; the bot reads and writes with its own client', async () => {
    await put(
      botLibrary(
        'echo',
        `export async function handler(event: any, ctx: any) {
           const p = await ctx.fhir.createResource({ resourceType: 'Patient', name: [{ family: event.input.parameter[0].valueString }] });
           const again = await ctx.fhir.readResource('Patient', p.id);
           ctx.log.info('made', again.id);
           return { resourceType: 'Parameters', parameter: [{ name: 'id', valueString: again.id }, { name: 'now', valueString: ctx.now().toISOString() }] };
         }`,
      ),
    );
    const res = await server.request().post('/Library/echo/$execute').send({ resourceType: 'Parameters', parameter: [{ name: 'family', valueString: 'Okafor' }] });
    expect(res.status).toBe(200);
    const id = res.body.parameter[0].valueString as string;
    const patient = await server.request().get(`/Patient/${id}`);
    expect(patient.status).toBe(200);
    expect(patient.body.name[0].family).toBe('Okafor');
  });

  test('a bot that throws answers 422 with its message; one that loops times out; the server goes on', async () => {
    await put(botLibrary('thrower', `export async function handler() { throw new Error('no thanks'); }`));
    await put(botLibrary('looper', `export async function handler() { for (;;) {} }`, 'system/*.rs', [{ url: BOT_EXT.timeout, valueInteger: 300 }]));
    const thrown = await server.request().post('/Library/thrower/$execute').send({ resourceType: 'Parameters' });
    expect(thrown.status).toBe(422);
    expect(thrown.body.issue[0].diagnostics).toContain('no thanks');
    const looped = await server.request().post('/Library/looper/$execute').send({ resourceType: 'Parameters' });
    expect(looped.status).toBe(422);
    expect(looped.body.issue[0].diagnostics).toContain('timed out after 300 ms');
    const ok = await server.request().post('/Library/echo/$execute').send({ resourceType: 'Parameters', parameter: [{ name: 'family', valueString: 'After' }] });
    expect(ok.status).toBe(200);
  });

  test('a bot that runs out of memory fails alone: 422 naming the limit, and the next run works', async () => {
    await put(
      botLibrary('hog', `export async function handler() { const keep: number[][] = []; for (;;) { keep.push(new Array(1_000_000).fill(7)); } }`, 'system/*.rs', [
        { url: BOT_EXT.memory, valueInteger: 32 },
        { url: BOT_EXT.timeout, valueInteger: 20000 },
      ]),
    );
    const res = await server.request().post('/Library/hog/$execute').send({ resourceType: 'Parameters' });
    expect(res.status).toBe(422);
    expect(res.body.issue[0].diagnostics).toContain('ran out of memory (limit 32 MB)');
    const ok = await server.request().post('/Library/echo/$execute').send({ resourceType: 'Parameters', parameter: [{ name: 'family', valueString: 'AfterOom' }] });
    expect(ok.status).toBe(200);
  });

  test("a bot's writes are attributed to it: audited under bot:<name>, with the run's own AuditEvent listing what it touched", async () => {
    const res = await server.request().post('/Library/echo/$execute').send({ resourceType: 'Parameters', parameter: [{ name: 'family', valueString: 'Attributed' }] });
    const id = res.body.parameter[0].valueString as string;
    await server.continuum.audit.flush();
    const rows = await server.continuum.store.audit.query({ clientId: 'bot:echo', count: 500 });
    const create = rows.find((r) => r.category === 'rest' && r.interaction === 'create' && r.entity === `Patient/${id}`);
    expect(create).toMatchObject({ clientId: 'bot:echo', action: 'C', outcome: '0' });
    const run = rows.filter((r) => r.category === 'bot').pop();
    expect(run).toMatchObject({ interaction: 'manual', outcome: '0', entity: 'Library/echo' });
    const detail = JSON.parse(run?.detail ?? '{}') as { touched: string[]; log: string[]; durationMs: number };
    expect(detail.touched).toContain(`Patient/${id}`);
    expect(detail.log).toEqual([`info made ${id}`]);
    expect(detail.durationMs).toBeGreaterThan(0);
    // Through the API: an AuditEvent of type Application Activity.
    const events = await server.request().get('/$audit-log?client=bot:echo&_count=1000');
    const runs = (events.body.entry as { resource: { type: { code: string }; subtype: { system: string; code: string }[] } }[]).filter((e) => e.resource.type.code === '110100');
    expect(runs.length).toBeGreaterThan(0);
    expect(runs[0].resource.subtype[0]).toEqual({ system: 'http://continuum-ccm.org/fhir/CodeSystem/bot-event', code: 'manual' });
  });

  test('a bot has no process, require, environment or network unless granted', async () => {
    await put(
      botLibrary(
        'probe',
        `export async function handler(event: any, ctx: any) {
           const g: any = globalThis;
           let escaped = 'no';
           try { escaped = (function () {}).constructor('return typeof process')(); } catch (e) { escaped = 'blocked'; }
           return { resourceType: 'Parameters', parameter: [
             { name: 'process', valueString: typeof g.process }, { name: 'require', valueString: typeof g.require },
             { name: 'fetch', valueString: typeof g.fetch }, { name: 'env', valueString: JSON.stringify(ctx.env) },
             { name: 'files', valueString: typeof ctx.files },
             { name: 'escape', valueString: escaped } ] };
         }`,
      ),
    );
    const res = await server.request().post('/Library/probe/$execute').send({ resourceType: 'Parameters' });
    expect(res.status).toBe(200);
    const values = Object.fromEntries((res.body.parameter as { name: string; valueString: string }[]).map((p) => [p.name, p.valueString]));
    expect(values).toEqual({ process: 'undefined', require: 'undefined', fetch: 'undefined', env: '{}', files: 'undefined', escape: 'blocked' });
  });

  test('grants: env:NAME shows one variable, fs:/dir gives files below that folder only, network gives fetch', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bot-files-'));
    process.env.CONTINUUM_TEST_GRANTED = 'visible';
    process.env.CONTINUUM_TEST_HIDDEN = 'hidden';
    try {
      await put(
        botLibrary(
          'granted',
          `export async function handler(event: any, ctx: any) {
             await ctx.files.write('notes/a.txt', 'hello ' + ctx.env.CONTINUUM_TEST_GRANTED);
             const back = await ctx.files.read('notes/a.txt');
             let outside = 'read';
             try { await ctx.files.read('../../etc/passwd'); } catch (e: any) { outside = e.message; }
             let absolute = 'read';
             try { await ctx.files.read('/etc/hostname'); } catch (e: any) { absolute = e.message; }
             return { resourceType: 'Parameters', parameter: [
               { name: 'back', valueString: back }, { name: 'list', valueString: JSON.stringify(await ctx.files.list('notes')) },
               { name: 'outside', valueString: outside }, { name: 'absolute', valueString: absolute },
               { name: 'env', valueString: JSON.stringify(ctx.env) }, { name: 'fetch', valueString: typeof (globalThis as any).fetch } ] };
           }`,
          'system/*.rs',
          [
            { url: BOT_EXT.grant, valueString: `fs:${dir}` },
            { url: BOT_EXT.grant, valueString: 'env:CONTINUUM_TEST_GRANTED' },
            { url: BOT_EXT.grant, valueString: 'network' },
          ],
        ),
      );
      const res = await server.request().post('/Library/granted/$execute').send({ resourceType: 'Parameters' });
      expect(res.status).toBe(200);
      const v = Object.fromEntries((res.body.parameter as { name: string; valueString: string }[]).map((p) => [p.name, p.valueString]));
      expect(v.back).toBe('hello visible');
      expect(readFileSync(join(dir, 'notes', 'a.txt'), 'utf8')).toBe('hello visible');
      expect(JSON.parse(v.list)).toEqual(['a.txt']);
      expect(v.outside).toContain('is outside the folders this bot may use');
      expect(v.absolute).toContain('is outside the folders this bot may use');
      expect(JSON.parse(v.env)).toEqual({ CONTINUUM_TEST_GRANTED: 'visible' });
      expect(v.fetch).toBe('function');
    } finally {
      delete process.env.CONTINUUM_TEST_GRANTED;
      delete process.env.CONTINUUM_TEST_HIDDEN;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a scope the server cannot parse is refused at write time (422 naming it)', async () => {
    const res = await server.request().put('/Library/badscope').send(botLibrary('badscope', 'export async function handler() {}', 'system/CarePlan.rsu system/Task.rs'));
    expect(res.status).toBe(422);
    expect(JSON.stringify(res.body)).toContain("scope 'system/CarePlan.rsu' is not a SMART scope");
  });

  test('an unknown grant is refused with 422', async () => {
    const res = await server.request().put('/Library/badgrant').send(botLibrary('badgrant', 'export async function handler() {}', 'system/*.rs', [{ url: BOT_EXT.grant, valueString: 'everything' }]));
    expect(res.status).toBe(422);
    expect(res.body.issue[0].diagnostics).toContain("unknown grant 'everything'");
  });

  test('a bot acts within its own scopes: a write its scopes do not cover is refused', async () => {
    await put(botLibrary('reader', `export async function handler(e: any, ctx: any) { return ctx.fhir.createResource({ resourceType: 'Patient' }); }`, 'system/Patient.rs'));
    const res = await server.request().post('/Library/reader/$execute').send({ resourceType: 'Parameters' });
    expect(res.status).toBe(403);
  });

  test('a patient-bound token may not run bots; an unknown Library is 404', async () => {
    const patient = await server.as('patient/*.cruds', { patient: 'p1' });
    expect((await patient.post('/Library/echo/$execute').send({ resourceType: 'Parameters' })).status).toBe(403);
    expect((await server.request().post('/Library/nope/$execute').send({ resourceType: 'Parameters' })).status).toBe(404);
  });

  test('a Library whose TypeScript does not compile is refused with 422 naming the problem', async () => {
    const res = await server.request().put('/Library/broken').send(botLibrary('broken', `export async function handler( {`));
    expect(res.status).toBe(422);
    expect(res.body.issue[0].diagnostics).toMatch(/index\.ts:\d+:\d+/);
  });
});

describe('pre-commit', () => {
  test('a pre-commit bot rejects a write with its OperationOutcome (422) and nothing is stored', async () => {
    await put(
      botLibrary(
        'no-future',
        `export async function handler(event: any) {
           if (event.resource.effectiveDateTime > '2100') {
             return { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'business-rule', diagnostics: 'Observations from the future are refused' }] };
           }
           return undefined;
         }`,
      ),
    );
    await put(trigger('no-future-1', 'no-future', 'Observation', [{ url: SUBSCRIPTION_EXT.phase, valueCode: 'pre-commit' }, { url: SUBSCRIPTION_EXT.interaction, valueCode: 'create' }]));
    const refused = await server.request().post('/Observation').send({ resourceType: 'Observation', status: 'final', code: { text: 'x' }, effectiveDateTime: '2200-01-01' });
    expect(refused.status).toBe(422);
    expect(refused.body.issue[0].diagnostics).toBe('Observations from the future are refused');
    const accepted = await server.request().post('/Observation').send({ resourceType: 'Observation', status: 'final', code: { text: 'x' }, effectiveDateTime: '2020-01-01' });
    expect(accepted.status).toBe(201);
    const found = await server.request().get('/Observation?date=2200-01-01');
    expect(found.body.total ?? found.body.entry?.length ?? 0).toBe(0);
    // A transaction with one refused entry leaves nothing behind.
    const tx = await server.request().post('/').send({
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { request: { method: 'POST', url: 'Patient' }, resource: { resourceType: 'Patient', name: [{ family: 'Half' }] } },
        { request: { method: 'POST', url: 'Observation' }, resource: { resourceType: 'Observation', status: 'final', code: { text: 'x' }, effectiveDateTime: '2300-01-01' } },
      ],
    });
    expect(tx.status).toBe(422);
    const half = await server.request().get('/Patient?family=Half');
    expect(half.body.entry ?? []).toHaveLength(0);
    await server.request().delete('/Subscription/no-future-1');
  });
});

describe('post-commit', () => {
  test('a matching write runs the bot once from the queue, with the resource, previous version and an idempotency key', async () => {
    await put(
      botLibrary(
        'flagger',
        `export async function handler(event: any, ctx: any) {
           await ctx.fhir.createResource({ resourceType: 'Flag', status: 'active', code: { text: event.trigger + ':' + (event.previous ? event.previous.meta.versionId : '-') + ':' + event.idempotencyKey }, subject: { reference: 'Patient/' + event.resource.id } });
         }`,
      ),
    );
    await put(trigger('flagger-1', 'flagger', 'Patient?family=Flagme', [{ url: SUBSCRIPTION_EXT.condition, valueString: "%previous.empty() or %previous.active != %current.active" }]));
    const created = await server.request().post('/Patient').send({ resourceType: 'Patient', active: true, name: [{ family: 'Flagme' }] });
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    await server.request().post('/Patient').send({ resourceType: 'Patient', name: [{ family: 'Other' }] }); // no match
    await server.continuum.bots.idle();
    // An update that changes nothing the condition looks at runs nothing; one that does runs again.
    await server.request().put(`/Patient/${id}`).send({ ...created.body, gender: 'female' });
    await server.request().put(`/Patient/${id}`).send({ ...created.body, active: false });
    await server.continuum.bots.idle();
    const flags = await server.request().get(`/Flag?subject=Patient/${id}&_sort=_lastUpdated`);
    const texts = (flags.body.entry ?? []).map((e: { resource: { code: { text: string } } }) => e.resource.code.text);
    expect(texts).toHaveLength(2);
    expect(texts[0]).toMatch(new RegExp(`^create:-:flagger-1:Patient/${id}/_history/1$`));
    expect(texts[1]).toMatch(new RegExp(`^update:2:flagger-1:Patient/${id}/_history/3$`));
  });

  test('a failing post-commit bot is retried with backoff, then kept as a dead letter and audited', async () => {
    await put(botLibrary('flaky', `export async function handler() { throw new Error('downstream unavailable'); }`, 'system/*.rs'));
    await put(trigger('flaky-1', 'flaky', 'Device', [{ url: SUBSCRIPTION_EXT.maxAttempts, valueInteger: 3 }]));
    await server.request().post('/Device').send({ resourceType: 'Device' });
    for (let i = 0; i < 100; i++) {
      await server.continuum.bots.idle();
      const dead = await server.continuum.store.jobs.list({ target: 'Library/flaky', status: 'dead', count: 5 });
      if (dead.length > 0) {
        expect(dead[0].attempts).toBe(3);
        expect(dead[0].lastError).toContain('downstream unavailable');
        break;
      }
      await new Promise((r) => setTimeout(r, 30));
    }
    expect(await server.continuum.store.jobs.list({ target: 'Library/flaky', status: 'dead', count: 5 })).toHaveLength(1);
    await server.continuum.audit.flush();
    const rows = await server.continuum.store.audit.query({ clientId: 'bot:flaky', count: 50 });
    expect(rows.filter((r) => r.category === 'bot' && r.outcome === '8').length).toBeGreaterThanOrEqual(3);
    expect(rows.some((r) => (r.detail ?? '').includes('dead letter after 3 attempts'))).toBe(true);
  });

  test('a bot whose writes trigger itself stops at the chain depth', async () => {
    await put(
      botLibrary(
        'echoer',
        `export async function handler(event: any, ctx: any) {
           await ctx.fhir.createResource({ resourceType: 'Basic', code: { text: 'loop' }, subject: event.resource.subject });
         }`,
      ),
    );
    await put(trigger('echoer-1', 'echoer', 'Basic?code:text=loop'));
    await server.request().post('/Basic').send({ resourceType: 'Basic', code: { text: 'loop' } });
    await server.continuum.bots.idle();
    await server.continuum.bots.idle();
    const all = await server.request().get('/Basic?code:text=loop&_total=accurate');
    // The first write plus one per level until the depth limit (5).
    expect(all.body.total).toBe(1 + server.continuum.bots.options.maxChainDepth);
    await server.request().delete('/Subscription/echoer-1');
  });
});

describe('schedule', () => {
  test('a cron bot is enqueued once per due minute, even when two schedulers tick', async () => {
    await put(
      botLibrary('monthly', `export async function handler(event: any, ctx: any) { await ctx.fhir.createResource({ resourceType: 'Basic', code: { text: 'close ' + event.scheduledFor } }); }`, 'system/*.cruds', [
        { url: BOT_EXT.schedule, valueString: '0 2 1 * *' },
      ]),
    );
    const bots = server.continuum.bots;
    expect(await bots.tick(new Date('2026-12-01T02:00:30Z'))).toBe(1);
    expect(await bots.tick(new Date('2026-12-01T02:00:59Z'))).toBe(0); // same minute: already queued
    expect(await bots.tick(new Date('2026-12-01T03:00:00Z'))).toBe(0); // not due
    await bots.idle();
    const res = await server.request().get('/Basic?code:text=close 2026-12-01T02:00:00.000Z&_total=accurate');
    expect(res.body.total).toBe(1);
  });
});
