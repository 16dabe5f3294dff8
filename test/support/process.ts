/**
 * Running the compiled `continuum` command as a child process (built by `npm test` before jest).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { join } from 'node:path';

export const ROOT = join(__dirname, '..', '..');
export const CLI = join(ROOT, 'dist', 'src', 'cli.js');

/** A port nobody listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      srv.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** The environment for a child: the test's own, without the settings the arguments must decide. */
export function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.DATABASE_URL;
  delete env.PORT;
  delete env.HOST;
  return env;
}

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `continuum <args>` (the compiled CLI) to completion; `onSpawn` sees the child (cleanup). */
export function runCli(args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number; onSpawn?: (child: ChildProcess) => void }): Promise<CliRun> {
  const timeoutMs = options.timeoutMs ?? 90_000;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: options.cwd, env: options.env ?? cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    options.onSpawn?.(child);
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

export interface ServeProcess {
  child: ChildProcess;
  base: string;
  /** Everything the child printed so far (stdout and stderr). */
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** The development client's secret, printed when the server registered it (a fresh store). */
  devSecret?: string;
  /**
   * An access token (system/*.cruds, five minutes) from the development client through the token
   * endpoint; `secret` for a store whose client an earlier server registered.
   */
  token: (secret?: string) => Promise<string>;
}

/** A backend token from `base`'s token endpoint for the development client. */
export async function devToken(base: string, secret: string): Promise<string> {
  const res = await fetch(`${base}/auth/token`, {
    method: 'POST',
    headers: { Authorization: `Basic ${Buffer.from(`continuum-dev:${secret}`).toString('base64')}`, 'Content-Type': 'application/x-www-form-urlencoded' },
    body: 'grant_type=client_credentials&scope=' + encodeURIComponent('system/*.cruds'),
  });
  const body = (await res.json()) as { access_token?: string };
  if (!res.ok || !body.access_token) {
    throw new Error(`token request failed: ${res.status} ${JSON.stringify(body)}`);
  }
  return body.access_token;
}

/**
 * `continuum serve --port <free port> ...args`, resolved once GET /metadata answers 200 (at most
 * 120 s: the server deploys every bot of the repository at start, slow on a busy machine). Fails with the child's output if it exits or does not answer.
 */
export async function startServe(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; label?: string; port?: number } = {}): Promise<ServeProcess> {
  const port = options.port ?? (await freePort());
  const child = spawn(process.execPath, [CLI, 'serve', '--port', String(port), ...args], {
    cwd: options.cwd ?? ROOT,
    env: options.env ?? cleanEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const label = options.label ? `${options.label}: ` : '';
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${label}continuum serve exited before it answered:\n${out}`);
    }
    const ok = await fetch(`${base}/metadata`).then(
      (r) => r.arrayBuffer().then(() => r.status === 200),
      () => false,
    );
    if (ok) {
      const devSecret = /client secret: (\S+)/.exec(out)?.[1];
      const token = (secret = devSecret): Promise<string> => {
        if (!secret) {
          throw new Error(`${label}no development client secret (the store already had clients):\n${out}`);
        }
        return devToken(base, secret);
      };
      return { child, base, output: () => out, exited, devSecret, token };
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${label}continuum serve did not answer GET /metadata within 120 s:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * A test file's scratch folder for CLI children (so a stray default ./data never lands in the
 * project), and their cleanup: children still running are killed and `cleanups` run in reverse
 * after the file's tests. Call at the top level of a test file.
 */
export function cliScratch(prefix: string): { readonly cwd: string; cleanups: (() => Promise<void> | void)[]; children: ChildProcess[] } {
  const state = { cwd: '', cleanups: [] as (() => Promise<void> | void)[], children: [] as ChildProcess[] };
  beforeAll(() => {
    state.cwd = mkdtempSync(join(tmpdir(), prefix));
    state.cleanups.push(() => rmSync(state.cwd, { recursive: true, force: true }));
  });
  afterAll(async () => {
    for (const c of state.children) {
      if (c.exitCode === null && c.signalCode === null) {
        c.kill('SIGKILL');
      }
    }
    for (const f of state.cleanups.reverse()) {
      await f();
    }
  });
  return state;
}
