/**
 * The embedded store with PGlite on a worker thread (pglite-worker.cjs). PGlite executes every
 * statement synchronously in WebAssembly, so on the main thread a query stops all JavaScript —
 * HTTP parsing, validation, index extraction, Bundle assembly — until it returns. On its own thread
 * the two overlap: the main thread prepares the next request while PostgreSQL runs this one, which
 * uses the second core these machines have.
 *
 * The price is a copy of each statement's parameters and rows between the threads (structured
 * clone; resource content is text, so mostly one string copy) and a message round trip per
 * statement. Semantics are PGlite's own: one connection, transactions serialised.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { projectRoot } from '../../util/root';
import { encodeBindParams } from './bind-params';
import type { Driver, Queryable, QueryOptions } from './driver';

interface Reply {
  id: number;
  ok: boolean;
  rows?: unknown[];
  error?: Record<string, unknown> & { message: string };
}

type Pending = { resolve: (rows: unknown[] | undefined) => void; reject: (err: Error) => void };

/** An Error carrying the database error's fields (code, detail, constraint, ...). */
function rebuild(fields: Record<string, unknown> & { message: string }): Error {
  const err = new Error(fields.message);
  Object.assign(err, fields);
  return err;
}

/** The thread's driver, with what it can tell about itself. */
export interface PgliteThreadDriver extends Driver {
  /** Statements sent so far after a change of plan_cache_mode (pglite-worker.cjs planMode). */
  planSwitches(): Promise<number>;
  /** The database thread's own memory in bytes: V8 heap in use, external (WebAssembly memory included), ArrayBuffers. */
  threadMemory(): Promise<{ heapUsed: number; external: number; arrayBuffers: number }>;
}

const WORKER_FILE = (): string => join(projectRoot(), 'src', 'store', 'postgres', 'pglite-worker.cjs');

/**
 * Creates a fresh data directory (PostgreSQL's initdb) in a short-lived child process. PGlite keeps
 * what initdb allocated reachable for as long as the instance lives: done on the serving thread,
 * that was ~500 MB of WebAssembly memory and ArrayBuffers more, and on a thread of its own the
 * process's malloc arenas kept ~130 MB of it (RSS at idle after a first start: 845 MB, then 397
 * MB; 260-290 MB after any later start). A child process's memory all goes when it exits, so
 * the serving thread then opens a directory that already exists, like any restart.
 */
async function initialise(dataDir: string, startParams: string[]): Promise<void> {
  const script = join(projectRoot(), 'src', 'store', 'postgres', 'pglite-init.cjs');
  await new Promise<void>((resolve, reject) => {
    execFile(process.execPath, [script, JSON.stringify({ dataDir, startParams })], { cwd: projectRoot() }, (err, _stdout, stderr) => {
      if (err) {
        reject(new Error(`the embedded database could not create its data directory ${dataDir}: ${stderr.trim() || err.message}`));
      } else {
        resolve();
      }
    });
  });
}

/** Opens PGlite on a thread of its own (`dataDir` must exist, or be undefined for memory). */
export async function openPgliteThread(dataDir: string | undefined, startParams: string[]): Promise<PgliteThreadDriver> {
  if (dataDir !== undefined && !existsSync(join(dataDir, 'PG_VERSION'))) {
    await initialise(dataDir, startParams);
  }
  const worker = new Worker(WORKER_FILE(), {
    workerData: { dataDir, startParams },
    // The thread's JavaScript is message copies and PGlite's protocol handling, all short-lived: a
    // small young generation (V8 allows 48 MB by default) keeps ~50 MB less resident for it.
    resourceLimits: { maxYoungGenerationSizeMb: 8 },
  });
  const pending = new Map<number, Pending>();
  let nextId = 1;
  let nextTx = 1;
  let failure: Error | undefined;
  /** Set by close(): from then on the thread stays referenced until it has stopped. */
  let closing = false;

  await new Promise<void>((resolve, reject) => {
    const onFirst = (msg: { ready?: boolean; error?: Record<string, unknown> & { message: string } }): void => {
      worker.off('error', onError);
      if (msg.ready) {
        resolve();
      } else {
        reject(rebuild(msg.error ?? { message: 'the embedded database did not start' }));
      }
    };
    const onError = (err: Error): void => {
      worker.off('message', onFirst);
      reject(err);
    };
    worker.once('message', onFirst);
    worker.once('error', onError);
  });

  const failAll = (err: Error): void => {
    failure ??= err;
    for (const p of pending.values()) {
      p.reject(err);
    }
    pending.clear();
    if (!closing) {
      worker.unref();
    }
  };
  // The thread keeps the process alive only while a statement is in flight, like a socket would.
  worker.unref();
  worker.on('message', (msg: Reply) => {
    const p = pending.get(msg.id);
    if (!p) {
      return;
    }
    pending.delete(msg.id);
    if (pending.size === 0 && !closing) {
      worker.unref();
    }
    if (msg.ok) {
      p.resolve(msg.rows);
    } else {
      p.reject(rebuild(msg.error ?? { message: 'embedded database error' }));
    }
  });
  worker.on('error', (err) => failAll(err));
  worker.on('exit', (code) => failAll(new Error(`the embedded database thread stopped (exit code ${code})`)));

  const send = (msg: Record<string, unknown>, transfer?: ArrayBuffer[]): Promise<unknown[] | undefined> => {
    if (failure) {
      return Promise.reject(failure);
    }
    const id = nextId++;
    return new Promise((resolve, reject) => {
      if (pending.size === 0) {
        worker.ref();
      }
      pending.set(id, { resolve, reject });
      worker.postMessage({ ...msg, id }, transfer);
    });
  };

  const on = (tx: number): Queryable => ({
    async query<R>(sql: string, params?: unknown[], options?: QueryOptions): Promise<R[]> {
      const prepare = options?.prepare === true;
      // Encoded here, not on the database thread, which is the busier one (bind-params.ts).
      const bind = encodeBindParams(params ?? []);
      return (await send({ op: 'query', sql, bind, tx, prepare, plan: prepare ? options?.plan : undefined }, [bind.buffer as ArrayBuffer])) as R[];
    },
    async exec(sql: string): Promise<void> {
      await send({ op: 'exec', sql, tx });
    },
  });
  const base = on(0);

  return {
    kind: 'pglite',
    pipelined: true,
    query: base.query,
    exec: base.exec,
    async planSwitches(): Promise<number> {
      const stats = (await send({ op: 'stats' })) as unknown as { planSwitches: number };
      return stats.planSwitches;
    },
    async threadMemory() {
      const stats = (await send({ op: 'stats' })) as unknown as { memory: { heapUsed: number; external: number; arrayBuffers: number } };
      return stats.memory;
    },
    async transaction<T>(fn: (q: Queryable) => Promise<T>): Promise<T> {
      const tx = nextTx++;
      await send({ op: 'begin', tx });
      let result: T;
      try {
        result = await fn(on(tx));
      } catch (err) {
        await send({ op: 'end', tx, commit: false }).catch(() => undefined);
        throw err;
      }
      await send({ op: 'end', tx, commit: true });
      return result;
    },
    async close(): Promise<void> {
      // Referenced while it stops: an unreferenced thread would let the process exit mid-close,
      // before the caller's code after close() (an exit code, a last message) ran.
      closing = true;
      worker.ref();
      if (!failure) {
        await send({ op: 'close' });
      }
      failure ??= new Error('the embedded database is closed');
      await worker.terminate();
    },
  };
}
