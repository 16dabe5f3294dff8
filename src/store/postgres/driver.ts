/**
 * The two ways Continuum talks to PostgreSQL: embedded PGlite (in process) and node-postgres (a
 * server). The store is written once against `Queryable`; only transaction plumbing differs.
 */
export interface Queryable {
  /**
   * `prepare`: the statement's text comes from a small fixed set, so a server driver may keep it
   * prepared on each connection (parsed and planned once).
   */
  query<R = Record<string, unknown>>(sql: string, params?: unknown[], options?: { prepare?: boolean }): Promise<R[]>;
  /** Runs a script of several statements without parameters (migrations). */
  exec(sql: string): Promise<void>;
}

export interface Driver extends Queryable {
  readonly kind: 'pglite' | 'postgres';
  /** Runs `fn` inside BEGIN ... COMMIT on one connection; rolls back if it throws. */
  transaction<T>(fn: (q: Queryable) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}
