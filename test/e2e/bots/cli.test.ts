/**
 * `continuum bots deploy | list | run | logs` as users run them: the compiled CLI (`npm run build`
 * first; `npm test` does it) in a child process, in process against a store (a fresh schema when
 * DATABASE_URL is set, else an embedded data directory) and with `--server --token` through a
 * running server's API; and `serve` deploying the repository's bots at start.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Library } from '@medplum/fhirtypes';
import { freshSchema, usingPostgres } from '../../support/server';
import { cleanEnv, type CliRun, cliScratch, runCli, type ServeProcess, startServe } from '../../support/process';
import { projectRoot } from '../../../src/util/root';

jest.setTimeout(300_000);

/** Children run in a scratch folder so that a stray default ./data never lands in the project. */
const scratchState = cliScratch('continuum-bots-cli-');
const { cleanups, children } = scratchState;

/** The environment of a child: the store and the server come from its arguments only. */
function childEnv(): NodeJS.ProcessEnv {
  const env = cleanEnv();
  delete env.CONTINUUM_TOKEN;
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
  const dir = mkdtempSync(join(tmpdir(), 'continuum-bots-cli-store-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return ['--data-dir', dir];
}

/** A scratch folder (removed after the file's tests). */
function scratch(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `continuum-bots-cli-${prefix}-`));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Writes `<dir>/<name>/<file>` for each file given (a missing bot.json stays missing). */
function writeBot(dir: string, name: string, files: { 'index.ts'?: string; 'bot.json'?: unknown }): void {
  mkdirSync(join(dir, name), { recursive: true });
  if (files['index.ts'] !== undefined) {
    writeFileSync(join(dir, name, 'index.ts'), files['index.ts']);
  }
  if (files['bot.json'] !== undefined) {
    writeFileSync(join(dir, name, 'bot.json'), JSON.stringify(files['bot.json'], null, 2));
  }
}

/** A manual-only bot that greets `event.input`'s first parameter and logs whom it greeted. */
const greeter = (salutation: string): string => `
export async function handler(event: any, ctx: any) {
  const name: string = event.input?.parameter?.[0]?.valueString ?? 'nobody';
  ctx.log.info(\`greeting \${name}\`);
  return { resourceType: 'Parameters', parameter: [{ name: 'greeting', valueString: \`${salutation}, \${name}\` }] };
}
`;

const TAGGER_JSON = { scope: 'system/Basic.rs', triggers: [{ criteria: 'Basic', interactions: ['create'] }] };

/** A bots folder with greeter (manual only), tagger (a post-commit trigger on Basic) and thrower. */
function botsFolder(): string {
  const dir = scratch('bots');
  writeBot(dir, 'greeter', { 'index.ts': greeter('Hello'), 'bot.json': { scope: 'system/Patient.rs', description: 'Says hello' } });
  writeBot(dir, 'tagger', { 'index.ts': `export async function handler(event: any, ctx: any) { ctx.log.info('saw', event.resource?.id); }\n`, 'bot.json': TAGGER_JSON });
  writeBot(dir, 'thrower', { 'index.ts': `export async function handler() { throw new Error('no thanks'); }\n`, 'bot.json': { scope: 'system/Patient.rs' } });
  return dir;
}

function inputFile(name: string): string {
  const file = join(scratch('input'), 'input.json');
  writeFileSync(file, JSON.stringify({ resourceType: 'Parameters', parameter: [{ name: 'name', valueString: name }] }));
  return file;
}

const greeting = (text: string): object => ({ resourceType: 'Parameters', parameter: [{ name: 'greeting', valueString: text }] });

/** The head line of one run in `bots logs`. */
const RUN_HEAD = (status: 'ok' | 'FAILED'): RegExp => new RegExp(`^\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z  manual\\s+${status}\\s+[\\d.]+ ms$`, 'gm');

describe('on a store (no server running)', () => {
  let store: string[];
  let dir: string;

  beforeAll(async () => {
    store = await newStore();
    dir = botsFolder();
  });

  test('deploy: every bot created with its Subscription, then unchanged, then updated after an edit', async () => {
    const first = await run(['bots', 'deploy', dir, ...store]);
    expect(first).toEqual({
      code: 0,
      stdout: ['greeter: created', 'tagger: created, 1 trigger(s)', '  Subscription/bot-tagger-1: created', 'thrower: created', ''].join('\n'),
      stderr: '',
    });

    const again = await run(['bots', 'deploy', dir, ...store]);
    expect(again).toEqual({ code: 0, stdout: ['greeter: unchanged', 'tagger: unchanged, 1 trigger(s)', 'thrower: unchanged', ''].join('\n'), stderr: '' });

    writeFileSync(join(dir, 'greeter', 'index.ts'), greeter('Hi'));
    const edited = await run(['bots', 'deploy', dir, ...store]);
    expect(edited).toEqual({ code: 0, stdout: ['greeter: updated', 'tagger: unchanged, 1 trigger(s)', 'thrower: unchanged', ''].join('\n'), stderr: '' });
    expect(existsSync(join(scratchState.cwd, 'data'))).toBe(false);
  });

  test('list: each bot with its Library, status and scopes, and its triggers', async () => {
    const r = await run(['bots', 'list', ...store]);
    expect(r).toEqual({
      code: 0,
      stdout: [
        'greeter  Library/bot-greeter  active  scope="system/Patient.rs"',
        'tagger  Library/bot-tagger  active  scope="system/Basic.rs"',
        '  Subscription/bot-tagger-1: post-commit create Basic',
        'thrower  Library/bot-thrower  active  scope="system/Patient.rs"',
        '',
      ].join('\n'),
      stderr: '',
    });
  });

  test('deploy: a trigger dropped from bot.json removes its Subscription', async () => {
    writeFileSync(join(dir, 'tagger', 'bot.json'), JSON.stringify({ scope: TAGGER_JSON.scope }));
    const r = await run(['bots', 'deploy', dir, ...store]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^tagger: unchanged\n  Subscription\/bot-tagger-1: removed$/m);
    expect(r.stdout).toMatch(/^greeter: unchanged$/m);
  });

  test('run: prints what the bot returned (the deployed edit runs); a bot that throws exits 1; an unknown bot is named', async () => {
    const withInput = await run(['bots', 'run', 'greeter', '--input', inputFile('Ada'), ...store]);
    expect(withInput.code).toBe(0);
    expect(JSON.parse(withInput.stdout)).toEqual(greeting('Hi, Ada'));
    expect(withInput.stderr).toContain('info greeting Ada');

    // Without --input the bot gets an empty Parameters.
    const without = await run(['bots', 'run', 'greeter', ...store]);
    expect(without.code).toBe(0);
    expect(JSON.parse(without.stdout)).toEqual(greeting('Hi, nobody'));

    const thrown = await run(['bots', 'run', 'thrower', ...store]);
    expect(thrown.code).toBe(1);
    expect(thrown.stdout).toBe('');
    expect(thrown.stderr).toContain('error: no thanks');

    const noLogs = await run(['bots', 'logs', 'nope', ...store]);
    expect(noLogs.code).toBe(1);
    expect(noLogs.stderr).toContain("no bot named 'nope'");

    const unknown = await run(['bots', 'run', 'nope', ...store]);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stdout).toBe('');
    expect(unknown.stderr).toContain("no bot named 'nope'");
  });

  test('logs: the runs, oldest first, with trigger, outcome and log lines; --count limits them', async () => {
    const all = await run(['bots', 'logs', 'greeter', ...store]);
    expect(all.code).toBe(0);
    expect(all.stdout.match(RUN_HEAD('ok'))).toHaveLength(2);
    expect(all.stdout).not.toContain('FAILED');
    const ada = all.stdout.indexOf('\n    info greeting Ada\n');
    const nobody = all.stdout.indexOf('\n    info greeting nobody\n');
    expect(ada).toBeGreaterThan(0);
    expect(nobody).toBeGreaterThan(ada);

    const last = await run(['bots', 'logs', 'greeter', '--count', '1', ...store]);
    expect(last.code).toBe(0);
    expect(last.stdout.match(RUN_HEAD('ok'))).toHaveLength(1);
    expect(last.stdout).toContain('    info greeting nobody');
    expect(last.stdout).not.toContain('Ada');
  });

  test('deploy: a compile error exits 2 with file:line:col; a missing bot.json is an error naming the bot', async () => {
    const broken = scratch('broken');
    writeBot(broken, 'bad', { 'index.ts': `// line 1\nexport async function handler( {`, 'bot.json': { scope: 'system/Patient.rs' } });
    const compile = await run(['bots', 'deploy', broken, ...store]);
    expect(compile.code).toBe(2);
    expect(compile.stdout).toBe('');
    expect(compile.stderr).toContain("bot bad: index.ts:2:33 '}' expected");

    // A broken bot stops the whole deploy before anything is written, the good bots included.
    writeBot(broken, 'a-good', { 'index.ts': greeter('Hello'), 'bot.json': { scope: 'system/Patient.rs' } });
    const mixed = await run(['bots', 'deploy', broken, ...store]);
    expect(mixed.code).toBe(2);
    const listed = await run(['bots', 'list', ...store]);
    expect(listed.stdout).not.toContain('a-good');

    const lonely = scratch('lonely');
    writeBot(lonely, 'solo', { 'index.ts': greeter('Hello') });
    const missing = await run(['bots', 'deploy', lonely, ...store]);
    expect(missing.code).toBe(2);
    expect(missing.stdout).toBe('');
    expect(missing.stderr).toContain('bot solo: bot.json is missing');
  });

  test('run: a retired bot (bot.json active: false) does not run', async () => {
    const retired = scratch('retired');
    writeBot(retired, 'sleeper', { 'index.ts': greeter('Hello'), 'bot.json': { scope: 'system/Patient.rs', active: false } });
    expect((await run(['bots', 'deploy', retired, ...store])).stdout).toBe('sleeper: created\n');
    const r = await run(['bots', 'run', 'sleeper', ...store]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('bot sleeper is not active');
  });
});

// The server scenarios have stores of their own, so they run alongside the store tests above
// (test.concurrent starts them once the file's beforeAll has run): the file takes about half as long.

describe('against a running server (--server, --token)', () => {
  test.concurrent('deploy, run and logs go through the API; --server without a token is a usage error', async () => {
    const served = await startServe([...(await newStore()), '--no-bots'], { cwd: scratchState.cwd, env: childEnv() });
    children.push(served.child);
    try {
      expect(served.output()).not.toContain('Bots deployed:');
      const token = await served.token();
      const remote = ['--server', served.base, '--token', token];
      const dir = botsFolder();

      const deployed = await run(['bots', 'deploy', dir, ...remote]);
      expect(deployed).toEqual({
        code: 0,
        stdout: ['greeter: created', 'tagger: created, 1 trigger(s)', '  Subscription/bot-tagger-1: created', 'thrower: created', ''].join('\n'),
        stderr: '',
      });
      const library = await fetch(`${served.base}/Library/bot-greeter`, { headers: { Authorization: `Bearer ${token}` } });
      expect(library.status).toBe(200);
      expect(((await library.json()) as Library).name).toBe('greeter');
      const again = await run(['bots', 'deploy', dir, ...remote]);
      expect(again.stdout).toBe(['greeter: unchanged', 'tagger: unchanged, 1 trigger(s)', 'thrower: unchanged', ''].join('\n'));

      // The server does the work: these clients may run side by side.
      const [ran, thrown] = await Promise.all([run(['bots', 'run', 'greeter', '--input', inputFile('Bo'), ...remote]), run(['bots', 'run', 'thrower', ...remote])]);
      expect(ran.code).toBe(0);
      expect(JSON.parse(ran.stdout)).toEqual(greeting('Hello, Bo'));
      expect(thrown.code).toBe(1);
      expect(thrown.stdout).toBe('');
      expect(thrown.stderr).toContain('error: HTTP 422: Bot thrower failed: no thanks');

      const [logs, failed, noToken] = await Promise.all([
        run(['bots', 'logs', 'greeter', ...remote]),
        run(['bots', 'logs', 'thrower', ...remote]),
        run(['bots', 'deploy', dir, '--server', served.base]),
      ]);
      expect(logs.code).toBe(0);
      expect(logs.stdout.match(RUN_HEAD('ok'))).toHaveLength(1);
      expect(logs.stdout).toContain('    info greeting Bo');
      expect(failed.stdout.match(RUN_HEAD('FAILED'))).toHaveLength(1);
      expect(failed.stdout).toContain('    error: no thanks');
      expect(noToken.code).toBe(2);
      expect(noToken.stdout).toBe('');
      expect(noToken.stderr).toContain('--server needs --token');
    } finally {
      served.child.kill('SIGTERM');
      await served.exited;
    }
  });
});

/** Waits until the server has printed `text` (its start-up lines come before it listens). */
async function printed(served: ServeProcess, text: string): Promise<string> {
  for (let i = 0; i < 50 && !served.output().includes(text); i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  return served.output();
}

describe('serve', () => {
  test.concurrent("deploys the repository's bots at start on a fresh store, and not again on the next start", async () => {
    const store = await newStore();
    const first = await startServe(store, { cwd: scratchState.cwd, env: childEnv() });
    children.push(first.child);
    first.child.kill('SIGTERM');
    expect((await first.exited).code).toBe(0);
    const output = await printed(first, 'Continuum serves');
    expect(output).toContain('Bots deployed:');
    expect(output).toContain(['  odl-alert: created, 1 trigger(s)', '    Subscription/bot-odl-alert-1: created'].join('\n'));
    // Every bot folder of the repository, in name order.
    const names = [...output.matchAll(/^  ([a-z-]+): created/gm)].map((m) => m[1]);
    const folders = readdirSync(join(projectRoot(), 'bots'))
      .filter((f) => existsSync(join(projectRoot(), 'bots', f, 'index.ts')))
      .sort();
    expect(names).toEqual(folders);
    expect(names).toEqual(expect.arrayContaining(['ccm-eligibility', 'ccm-enrollment-guard', 'ccm-month-close', 'odl-alert']));

    const second = await startServe(store, { cwd: scratchState.cwd, env: childEnv() });
    children.push(second.child);
    try {
      expect(await printed(second, 'Continuum serves')).not.toContain('Bots deployed:');
      // Left alone: still the version the first start wrote.
      const res = await fetch(`${second.base}/Library/bot-odl-alert`, { headers: { Authorization: `Bearer ${await second.token(first.devSecret)}` } });
      expect(res.status).toBe(200);
      expect(((await res.json()) as Library).meta?.versionId).toBe('1');
    } finally {
      second.child.kill('SIGTERM');
      await second.exited;
    }
  });
});

describe('usage', () => {
  test.concurrent('--help lists the bots commands', async () => {
    const r = await run(['--help']);
    expect(r.code).toBe(0);
    for (const command of ['bots deploy [dir]', 'bots list', 'bots run <name> [--input <file.json>]', 'bots logs <name> [--follow] [--count <n>]']) {
      expect(r.stdout).toMatch(new RegExp(`^\\s+continuum ${command.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`, 'm'));
    }
    expect(r.stdout).toMatch(/^\s+--no-bots\s+serve: do not deploy \.\/bots at start$/m);
  });
});
