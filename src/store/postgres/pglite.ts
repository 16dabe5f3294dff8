import { mkdirSync } from 'node:fs';
import type { Driver, Queryable } from './driver';
import { openPgliteThread } from './pglite-thread';
import { TextArrayParam } from './text-array';

/**
 * The embedded store's buffer pool (PostgreSQL `shared_buffers`; CONTINUUM_SHARED_BUFFERS). It is
 * all touched at start (WebAssembly memory, which never shrinks), so it is resident from the
 * first request. 16 MB against 32 MB measured: RSS 25-45 MB lower (idle and after 40 s of
 * creates), search throughput within noise (page) to ~5 % lower (per-patient observations): pages
 * it does not hold are a read from the OS page cache away.
 */
export const DEFAULT_SHARED_BUFFERS = '16MB';

/**
 * PostgreSQL fills each new 16 MB WAL segment with zeros before using it (wal_init_zero), so that
 * the disk space is taken up front. The embedded store makes those writes on its database thread,
 * between statements: the Synthea import (129 MB of WAL, a new segment every ~1,700 resources)
 * wrote 128 MB of zeros, and the kernel's share of the import's CPU samples went from 7.4 % to
 * 5.4 % without them (perf, one run each). Off, a segment is created at its size without the
 * zeros (as PostgreSQL suggests for copy-on-write filesystems); a full disk then fails the write
 * that needs the space rather than the segment's creation. Durability is unchanged: the WAL is
 * written and flushed the same way.
 */
export const WAL_SETTINGS = ['-c', 'wal_init_zero=off'];

/**
 * ANALYZE samples 300 rows per unit of statistics target from each table and keeps a most-common
 * list and a histogram of that many entries per column. The embedded store runs ANALYZE itself, on
 * the thread that serves every query (PGlite has no autovacuum): after `continuum import` and every
 * 20,000 writes. At PostgreSQL's default of 100 it took ~0.68 s after the Synthea import (13,336
 * resources, ~150,000 index rows; search_token and search_reference most of it), ~12 % of the
 * import; at 30, ~0.31 s (9,000-row samples). Columns with their own target (migration 014) keep it.
 */
export const STATISTICS_SETTINGS = ['-c', 'default_statistics_target=30'];

/**
 * Embedded PostgreSQL (PGlite, WebAssembly) persisted in a data directory, or in memory when
 * `dataDir` is undefined; on a worker thread of its own when `thread` (pglite-thread.ts). PGlite
 * serialises queries and transactions itself, so one instance is
 * shared by the whole process. Writes go straight to the data directory's files before a query
 * resolves, so an acknowledged write survives a killed process.
 */
export async function openPglite(dataDir: string | undefined, options: { sharedBuffers?: string; thread?: boolean } = {}): Promise<Driver> {
  if (dataDir) {
    mkdirSync(dataDir, { recursive: true });
  }
  const extra = ['-c', `shared_buffers=${options.sharedBuffers ?? DEFAULT_SHARED_BUFFERS}`, ...WAL_SETTINGS, ...STATISTICS_SETTINGS];
  if (options.thread) {
    return openPgliteThread(dataDir, extra);
  }
  // Loaded lazily: a PostgreSQL-server deployment never pays for the WebAssembly module.
  const { PGlite } = await import('@electric-sql/pglite');
  // PostgreSQL's buffer pool lives in the WebAssembly heap, which never shrinks: 128 MB (the
  // default) makes the process ~130 MB bigger than 16-32 MB does, for little speed (the OS caches
  // the data files anyway).
  const startParams = [...PGlite.defaultStartParams, ...extra];
  const db = await PGlite.create({ dataDir, relaxedDurability: false, startParams });
  interface PgliteLike {
    query(sql: string, params?: unknown[]): Promise<{ rows: unknown[] }>;
    exec(sql: string): Promise<unknown>;
  }
  const wrap = (q: PgliteLike): Queryable => ({
    async query<R>(sql: string, params?: unknown[]): Promise<R[]> {
      // PGlite converts parameters itself: a binary text[] goes as its values.
      const res = await q.query(sql, params?.map((v) => (v instanceof TextArrayParam ? [...v.values] : v)));
      return res.rows as R[];
    },
    async exec(sql: string): Promise<void> {
      await q.exec(sql);
    },
  });
  const base = wrap(db);
  return {
    kind: 'pglite',
    query: base.query,
    transaction: (fn) => db.transaction((tx) => fn(wrap(tx))),
    exec: base.exec,
    close: () => db.close(),
  };
}
