/**
 * A bounded cache of current versions for the embedded store. PGlite's data directory belongs to
 * one process, so every write passes through this process and can invalidate what it changed;
 * a PostgreSQL server is shared, so it gets no cache.
 *
 * A read caches its result only if no write committed while it ran (the epoch did not move), so a
 * slow read can never put back a version that a write has just replaced.
 */
import type { StoredVersion } from '../api';

export class ReadCache {
  private readonly entries = new Map<string, StoredVersion>();
  private epochValue = 0;

  constructor(private readonly maxEntries = 10_000) {}

  get epoch(): number {
    return this.epochValue;
  }

  get(key: string): StoredVersion | undefined {
    return this.entries.get(key);
  }

  /** Remembers `version` unless a write committed since `epoch` was read. */
  set(key: string, version: StoredVersion, epoch: number): void {
    if (epoch !== this.epochValue) {
      return;
    }
    if (this.entries.size >= this.maxEntries) {
      // Oldest first: Map keeps insertion order.
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
    this.entries.set(key, version);
  }

  /** After a transaction that wrote `keys` ended (committed or not). */
  invalidate(keys: Iterable<string>): void {
    this.epochValue++;
    for (const k of keys) {
      this.entries.delete(k);
    }
  }
}

export const cacheKey = (resourceType: string, id: string): string => `${resourceType}/${id}`;
