/**
 * The audit trail's write side. Interactions record a row in memory (no I/O on the request path);
 * rows are written in batches, one INSERT of one compressed batch (see PgAuditStore) every
 * `flushMs` or `maxBatch` rows, so auditing costs a request a few microseconds of the server's
 * thread. The trade-off: rows not yet written (those of the last `flushMs`, 250 ms by default,
 * and of a write in progress, while the database accepts writes) are lost if the process dies; a
 * request that fails or throws has its row recorded all the same. If the database refuses a batch, it is kept and retried (up to
 * `maxBuffered` rows).
 */
import type { AuditRow, AuditStore } from '../store/api';

export interface AuditLogOptions {
  flushMs: number;
  maxBatch: number;
  maxBuffered: number;
  onError: (err: unknown) => void;
}

const DEFAULTS: AuditLogOptions = {
  flushMs: 250,
  maxBatch: 2000,
  maxBuffered: 200_000,
  onError: (err) => console.error('[continuum] audit trail write failed (will retry):', err),
};

export class AuditLog {
  private buffer: AuditRow[] = [];
  private timer?: NodeJS.Timeout;
  private writing?: Promise<void>;
  private readonly options: AuditLogOptions;
  private dropped = 0;

  constructor(
    private readonly store: AuditStore,
    options: Partial<AuditLogOptions> = {},
  ) {
    this.options = { ...DEFAULTS, ...options };
  }

  record(row: AuditRow): void {
    if (this.buffer.length >= this.options.maxBuffered) {
      this.buffer.shift();
      if (this.dropped++ % 1000 === 0) {
        this.options.onError(new Error(`audit buffer full: ${this.dropped} oldest rows dropped`));
      }
    }
    this.buffer.push(row);
    if (this.buffer.length >= this.options.maxBatch) {
      void this.flush();
    } else if (!this.timer) {
      this.timer = setTimeout(() => void this.flush(), this.options.flushMs);
      this.timer.unref();
    }
  }

  /** Writes everything recorded so far. */
  async flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    while (this.writing) {
      await this.writing;
    }
    while (this.buffer.length > 0) {
      const batch = this.buffer.splice(0, this.options.maxBatch);
      this.writing = this.store.append(batch);
      try {
        await this.writing;
      } catch (err) {
        this.buffer.unshift(...batch);
        this.options.onError(err);
        this.timer ??= setTimeout(() => void this.flush(), Math.max(this.options.flushMs, 1000));
        this.timer.unref();
        return;
      } finally {
        this.writing = undefined;
      }
    }
  }

  /** Rows waiting to be written (tests, shutdown). */
  get pending(): number {
    return this.buffer.length;
  }
}
