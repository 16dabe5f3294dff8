import type { Store } from './api';
import { logSlowQueries } from './postgres/driver';
import { migrate } from './postgres/migrate';
import { openNodePg } from './postgres/nodepg';
import { openPglite } from './postgres/pglite';
import { PgStore } from './postgres/store';
import type { Indexer } from './postgres/index-writer';

export interface StoreConfig {
  /** A PostgreSQL server (production). When set, dataDir and memory are ignored. */
  databaseUrl?: string;
  /** Embedded store folder (default ./data). */
  dataDir?: string;
  /** Embedded store in memory only: gone when the process ends. */
  memory?: boolean;
  /** Embedded store: PostgreSQL's shared_buffers (default 32MB). */
  sharedBuffers?: string;
  /** Embedded store: PGlite on a worker thread (default; CONTINUUM_PGLITE_THREAD=0 keeps it on this one). */
  pgliteThread?: boolean;
}

/** Opens the configured store and brings its schema up to date. */
export async function openStore(config: StoreConfig, indexer?: Indexer): Promise<Store> {
  const opened = config.databaseUrl
    ? await openNodePg(config.databaseUrl)
    : await openPglite(config.memory ? undefined : (config.dataDir ?? './data'), { sharedBuffers: config.sharedBuffers, thread: config.pgliteThread ?? process.env.CONTINUUM_PGLITE_THREAD !== '0' });
  // Diagnostics: CONTINUUM_SLOW_QUERY_MS=50 logs every statement slower than 50 ms to stderr.
  const slowMs = process.env.CONTINUUM_SLOW_QUERY_MS ? Number(process.env.CONTINUUM_SLOW_QUERY_MS) : NaN;
  const driver = Number.isFinite(slowMs) && slowMs >= 0 ? logSlowQueries(opened, slowMs, (line) => process.stderr.write(line + '\n')) : opened;
  try {
    await migrate(driver);
  } catch (err) {
    await driver.close();
    throw err;
  }
  return new PgStore(driver, indexer);
}
