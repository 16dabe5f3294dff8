/**
 * Group commit for the embedded store's plain creates. A create outside a transaction Bundle is one
 * statement (continuum_create) that commits by itself; PGlite runs one statement at a time, so
 * while one runs, the creates of other requests wait anyway. Those that arrive meanwhile are sent
 * together as one statement when it ends: one call writes many rows for much less than as many
 * calls (per resource, in the PGlite thread: ~0.97 ms alone, ~0.6 ms in groups of 10, measured
 * in process). A create that finds nothing in flight is sent at once, so a lone request waits for
 * nothing.
 *
 * Each caller still learns about its own creates only: the statement answers which resources it
 * wrote (`Type/id`), so an id another writer took fails its own caller with 409. If the group's
 * statement fails (it committed nothing), each caller's creates are sent again on their own, so a
 * bad one fails alone.
 */

/** One caller's creates, keyed `Type/id`. */
export interface GroupRow {
  resourceType: string;
  id: string;
}

/** Sends rows as one statement; resolves with the keys (`Type/id`) of those it wrote. */
export type SendRows<R extends GroupRow> = (rows: R[]) => Promise<Set<string>>;

interface Waiting<R extends GroupRow> {
  rows: R[];
  resolve: (skipped: R | undefined) => void;
  reject: (err: unknown) => void;
}

export const keyOf = (r: GroupRow): string => `${r.resourceType}/${r.id}`;

export class CreateGroups<R extends GroupRow> {
  private waiting: Waiting<R>[] = [];
  private running = false;

  /** `maxRows`: a group stops growing at this many rows (a caller's rows are never split). */
  constructor(
    private readonly send: SendRows<R>,
    private readonly maxRows: number,
  ) {}

  /** Writes `rows`; resolves with the first of them that was not written (its id was taken). */
  write(rows: R[]): Promise<R | undefined> {
    return new Promise<R | undefined>((resolve, reject) => {
      this.waiting.push({ rows, resolve, reject });
      if (!this.running) {
        void this.drain();
      }
    });
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.waiting.length > 0) {
        const group = this.waiting.splice(0, this.groupSize());
        await this.run(group);
      }
    } finally {
      this.running = false;
    }
  }

  /**
   * How many waiting callers the next group takes: at least one, then as long as the rows fit in
   * maxRows and no key repeats (of two creates of one key in one statement, the answer would show
   * the key written without saying whose create it was).
   */
  private groupSize(): number {
    const keys = new Set<string>();
    let size = 0;
    let n = 0;
    for (const w of this.waiting) {
      if (n > 0 && (size + w.rows.length > this.maxRows || w.rows.some((r) => keys.has(keyOf(r))))) {
        break;
      }
      for (const r of w.rows) {
        keys.add(keyOf(r));
      }
      size += w.rows.length;
      n++;
    }
    return n;
  }

  /** Never throws: every caller of the group is settled. */
  private async run(group: Waiting<R>[]): Promise<void> {
    try {
      const written = await this.send(group.length === 1 ? group[0].rows : group.flatMap((w) => w.rows));
      for (const w of group) {
        w.resolve(w.rows.find((r) => !written.has(keyOf(r))));
      }
    } catch (err) {
      if (group.length === 1) {
        group[0].reject(err);
        return;
      }
      for (const w of group) {
        await this.run([w]);
      }
    }
  }
}
