/**
 * A transaction that begins only when its first statement is sent. Most single-resource writes
 * queue their work and send exactly one statement at the end (continuum_create), which is atomic by
 * itself: run alone, it needs no BEGIN and COMMIT, saving two round trips per create.
 */
import type { Driver, Queryable } from './driver';

export class LazyTransaction {
  private opened?: { ready: Promise<Queryable>; finish: (commit: boolean, err?: unknown) => void; settled: Promise<unknown> };

  constructor(private readonly driver: Driver) {}

  /** Queries made through this begin the transaction if it has not begun yet. */
  readonly queryable: Queryable = {
    query: async (sql, params, options) => (await this.open()).query(sql, params, options),
    exec: async (sql) => (await this.open()).exec(sql),
  };

  get started(): boolean {
    return this.opened !== undefined;
  }

  private async open(): Promise<Queryable> {
    if (!this.opened) {
      let resolveQ!: (q: Queryable) => void;
      let rejectQ!: (err: unknown) => void;
      const ready = new Promise<Queryable>((resolve, reject) => {
        resolveQ = resolve;
        rejectQ = reject;
      });
      let finish!: (commit: boolean, err?: unknown) => void;
      const outcome = new Promise<void>((resolve, reject) => {
        finish = (commit, err) => (commit ? resolve() : reject(err ?? new Error('rolled back')));
      });
      // The driver commits when its callback resolves and rolls back when it rejects.
      const settled = this.driver.transaction(async (q) => {
        resolveQ(q);
        await outcome;
      });
      // If BEGIN fails, the callback never runs: fail the waiting query instead of hanging.
      settled.catch((err: unknown) => rejectQ(err));
      this.opened = { ready, finish, settled };
    }
    return this.opened.ready;
  }

  /** Ends the transaction (if it began): COMMIT, or ROLLBACK with `err`. Resolves once done. */
  async end(commit: boolean, err?: unknown): Promise<void> {
    if (!this.opened) {
      return;
    }
    this.opened.finish(commit, err);
    try {
      await this.opened.settled;
    } catch (e) {
      if (commit) {
        throw e;
      }
    }
  }
}
