/**
 * Runs bot code in worker threads (sandbox-worker.js): a pool per heap limit, one run at a time
 * per worker, a timeout per run. A run that loops, throws or exhausts its heap fails alone: its
 * worker is terminated and replaced; the server and other runs go on.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../util/root';
import { Worker } from 'node:worker_threads';

/** What the sandbox needs to know about a bot to run it. */
export interface SandboxBot {
  id: string;
  name: string;
  /** Changes whenever the code does (id + versionId): workers cache loaded code by it. */
  key: string;
  /** The bundle (src/bots/compile.ts). */
  code: string;
  /** Whether the bot may use fetch. */
  network: boolean;
  /** Whether the bot has `ctx.files` (an `fs:` grant; the host checks every path). */
  files: boolean;
  timeoutMs: number;
  memoryMb: number;
}

/** One run's input. `event`, `config` and `env` travel as JSON. */
export interface SandboxRun {
  bot: SandboxBot;
  event: unknown;
  config: unknown;
  env: Record<string, string>;
  now: Date;
  /** Answers the bot's host calls (`fhir`, `fetch`): a JSON string, or throws to reject the call. */
  call(op: string, arg: string): Promise<string>;
  log(level: string, text: string): void;
}

export type SandboxResult =
  | { ok: true; value: unknown }
  | { ok: false; error: { message: string; stack?: string; status?: number; outcome?: unknown; kind: 'error' | 'timeout' | 'crash' } };

interface Pending {
  run: SandboxRun;
  resolve: (r: SandboxResult) => void;
}

interface Slot {
  worker: Worker;
  busy?: { id: number; pending: Pending; timer: NodeJS.Timeout };
  /** Bot versions this worker has loaded (as far as we know): their code is not sent again. */
  loaded: Set<string>;
}

let workerSource: string | undefined;
function source(): string {
  workerSource ??= readFileSync(join(projectRoot(), 'src', 'bots', 'sandbox-worker.js'), 'utf8');
  return workerSource;
}

/** Workers with one heap limit. */
class Pool {
  private readonly slots: Slot[] = [];
  private readonly waiting: Pending[] = [];
  private nextRun = 1;
  private closed = false;

  constructor(
    private readonly size: number,
    private readonly memoryMb: number,
  ) {}

  run(run: SandboxRun): Promise<SandboxResult> {
    if (this.closed) {
      return Promise.resolve({ ok: false, error: { message: 'the bot sandbox is shut down', kind: 'crash' } });
    }
    return new Promise((resolve) => {
      this.waiting.push({ run, resolve });
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (this.waiting.length > 0) {
      let slot = this.slots.find((s) => !s.busy);
      if (!slot) {
        if (this.slots.length >= this.size) {
          return;
        }
        slot = this.spawn();
      }
      this.start(slot, this.waiting.shift() as Pending);
    }
  }

  private spawn(): Slot {
    const worker = new Worker(source(), {
      eval: true,
      env: {}, // no environment variables in the sandbox
      resourceLimits: { maxOldGenerationSizeMb: this.memoryMb, maxYoungGenerationSizeMb: Math.max(4, Math.min(32, Math.floor(this.memoryMb / 8))) },
      stdout: true,
      stderr: true,
    });
    worker.unref();
    const slot: Slot = { worker, loaded: new Set() };
    worker.on('message', (msg: WorkerMessage) => this.onMessage(slot, msg));
    worker.on('error', (err) => this.onExit(slot, err));
    worker.on('exit', () => this.onExit(slot));
    this.slots.push(slot);
    return slot;
  }

  private start(slot: Slot, pending: Pending): void {
    const id = this.nextRun++;
    const { run } = pending;
    const timer = setTimeout(() => {
      this.finish(slot, { ok: false, error: { message: `timed out after ${run.bot.timeoutMs} ms`, kind: 'timeout' } });
      this.kill(slot);
    }, run.bot.timeoutMs);
    slot.busy = { id, pending, timer };
    this.post(slot, id, run, !slot.loaded.has(run.bot.key));
  }

  /** Sends a run; the bot's code only when the worker may not have it. */
  private post(slot: Slot, id: number, run: SandboxRun, withCode: boolean): void {
    if (withCode) {
      slot.loaded.add(run.bot.key);
      if (slot.loaded.size > 40) {
        slot.loaded.delete(slot.loaded.values().next().value as string); // the worker keeps 50
      }
    }
    slot.worker.postMessage({
      type: 'run',
      runId: id,
      bot: { id: run.bot.id, name: run.bot.name, key: run.bot.key, code: withCode ? run.bot.code : undefined, network: run.bot.network, files: run.bot.files },
      event: JSON.stringify(run.event ?? {}),
      config: JSON.stringify(run.config ?? {}),
      env: JSON.stringify(run.env),
      now: run.now.toISOString(),
    });
  }

  private onMessage(slot: Slot, msg: WorkerMessage): void {
    const busy = slot.busy;
    if (!busy || msg.runId !== busy.id) {
      return;
    }
    const run = busy.pending.run;
    switch (msg.type) {
      case 'need-code':
        this.post(slot, busy.id, run, true);
        return;
      case 'log':
        run.log(msg.level, msg.text);
        return;
      case 'call':
        run.call(msg.op, msg.arg).then(
          (value) => slot.busy?.id === busy.id && slot.worker.postMessage({ type: 'reply', callId: msg.callId, ok: true, value }),
          (err: unknown) => slot.busy?.id === busy.id && slot.worker.postMessage({ type: 'reply', callId: msg.callId, ok: false, value: err instanceof Error ? err.message : String(err) }),
        );
        return;
      case 'done': {
        if (msg.ok === false) {
          this.finish(slot, { ok: false, error: { ...msg.error, kind: 'error' } });
        } else {
          let value: unknown;
          try {
            value = msg.result ? JSON.parse(msg.result) : undefined;
          } catch {
            value = undefined;
          }
          this.finish(slot, { ok: true, value });
        }
        this.dispatch();
        return;
      }
    }
  }

  private finish(slot: Slot, result: SandboxResult): void {
    const busy = slot.busy;
    if (!busy) {
      return;
    }
    clearTimeout(busy.timer);
    slot.busy = undefined;
    busy.pending.resolve(result);
  }

  /** Terminates a worker (timeout) and lets another take its place. */
  private kill(slot: Slot): void {
    this.remove(slot);
    void slot.worker.terminate();
    this.dispatch();
  }

  private onExit(slot: Slot, err?: Error): void {
    if (!this.slots.includes(slot)) {
      return;
    }
    const code = (err as { code?: string } | undefined)?.code;
    const message = code === 'ERR_WORKER_OUT_OF_MEMORY' ? `ran out of memory (limit ${this.memoryMb} MB)` : `the sandbox stopped${err ? `: ${err.message}` : ''}`;
    this.finish(slot, { ok: false, error: { message, kind: 'crash' } });
    this.remove(slot);
    this.dispatch();
  }

  private remove(slot: Slot): void {
    const i = this.slots.indexOf(slot);
    if (i >= 0) {
      this.slots.splice(i, 1);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const p of this.waiting.splice(0)) {
      p.resolve({ ok: false, error: { message: 'the bot sandbox is shut down', kind: 'crash' } });
    }
    const slots = this.slots.splice(0);
    for (const s of slots) {
      this.finish(s, { ok: false, error: { message: 'the bot sandbox is shut down', kind: 'crash' } });
    }
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }

  get workers(): number {
    return this.slots.length;
  }
}

type WorkerMessage =
  | { type: 'need-code'; runId: number }
  | { type: 'log'; runId: number; level: string; text: string }
  | { type: 'call'; runId: number; callId: number; op: string; arg: string }
  | { type: 'done'; runId: number; ok: true; result: string }
  | { type: 'done'; runId: number; ok: false; error: { message: string; stack?: string; status?: number; outcome?: unknown } };

export interface SandboxOptions {
  /** Workers per heap limit (default: 4). */
  poolSize: number;
}

/** The sandbox: pools of workers keyed by heap limit, made on first use. */
export class Sandbox {
  private readonly pools = new Map<number, Pool>();

  constructor(private readonly options: SandboxOptions = { poolSize: 4 }) {}

  /** Runs a bot once; never rejects (failures are results). */
  run(run: SandboxRun): Promise<SandboxResult> {
    let pool = this.pools.get(run.bot.memoryMb);
    if (!pool) {
      pool = new Pool(this.options.poolSize, run.bot.memoryMb);
      this.pools.set(run.bot.memoryMb, pool);
    }
    return pool.run(run);
  }

  /** Live workers (all pools). */
  get workers(): number {
    let n = 0;
    for (const p of this.pools.values()) {
      n += p.workers;
    }
    return n;
  }

  /** Terminates every worker; runs in progress fail. */
  async close(): Promise<void> {
    await Promise.all([...this.pools.values()].map((p) => p.close()));
    this.pools.clear();
  }
}
