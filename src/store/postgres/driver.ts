/**
 * The two ways Continuum talks to PostgreSQL: embedded PGlite (in process) and node-postgres (a
 * server). The store is written once against `Queryable`; only transaction plumbing differs.
 */
export interface QueryOptions {
  /**
   * The statement's text comes from a small fixed set, so a driver may keep it prepared on each
   * connection (parsed once; PostgreSQL's plan cache decides when to plan it again).
   */
  prepare?: boolean;
  /**
   * With `prepare`, how PostgreSQL plans the statement (unset: its plan cache decides, which
   * after five executions reuses a plan made without the values if that looks no costlier):
   * - 'generic': its best plan does not depend on its parameter values (its shape fixes the
   *   plan, see search-sql.ts anchorSql), so it is planned once, without them. The embedded
   *   driver forces this (planning in WebAssembly was half of a one-hit search); a server's
   *   plan cache decides as usual, its planning costing little.
   * - 'custom': its best plan depends on the values (a search's filters: how many rows a value
   *   matches decides where the plan starts), so it is planned with them at every execution,
   *   never from the plan cache. The embedded driver keeps it parsed all the same (parsing a
   *   search was a fifth of its time there); a server driver sends it unnamed.
   */
  plan?: 'generic' | 'custom';
}

export interface Queryable {
  query<R = Record<string, unknown>>(sql: string, params?: unknown[], options?: QueryOptions): Promise<R[]>;
  /** Runs a script of several statements without parameters (migrations). */
  exec(sql: string): Promise<void>;
}

export interface Driver extends Queryable {
  readonly kind: 'pglite' | 'postgres';
  /**
   * Statements run outside this thread (a worker thread, a server), so a statement sent early
   * overlaps this thread's JavaScript: writers then send queued creates in the background.
   */
  readonly pipelined?: boolean;
  /** Runs `fn` inside BEGIN ... COMMIT on one connection; rolls back if it throws. */
  transaction<T>(fn: (q: Queryable) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/**
 * `driver` logging every statement slower than `thresholdMs` (its time, rows and SQL) through
 * `log`: the environment variable CONTINUUM_SLOW_QUERY_MS turns it on (src/store/open.ts).
 */
export function logSlowQueries(driver: Driver, thresholdMs: number, log: (line: string) => void): Driver {
  const timed = (q: Queryable): Queryable => ({
    async query<R>(sql: string, params?: unknown[], options?: QueryOptions): Promise<R[]> {
      const started = performance.now();
      const rows = await q.query<R>(sql, params, options);
      const ms = performance.now() - started;
      if (ms >= thresholdMs) {
        log(`slow query ${ms.toFixed(1)} ms, ${rows.length} rows: ${sql.replace(/\s+/g, ' ').slice(0, Number(process.env.CONTINUUM_SLOW_QUERY_CHARS ?? 600))}`);
      }
      return rows;
    },
    async exec(sql: string): Promise<void> {
      const started = performance.now();
      await q.exec(sql);
      const ms = performance.now() - started;
      if (ms >= thresholdMs) {
        log(`slow statement ${ms.toFixed(1)} ms: ${sql.replace(/\s+/g, ' ').slice(0, 600)}`);
      }
    },
  });
  const outer = timed(driver);
  return {
    kind: driver.kind,
    pipelined: driver.pipelined,
    query: outer.query,
    exec: outer.exec,
    transaction: (fn) => driver.transaction((q) => fn(timed(q))),
    close: () => driver.close(),
  };
}
