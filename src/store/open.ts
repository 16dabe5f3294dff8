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
  /** Embedded store: PostgreSQL's shared_buffers (default 16MB; also CONTINUUM_SHARED_BUFFERS). */
  sharedBuffers?: string;
  /** Embedded store: PGlite on a worker thread (default; CONTINUUM_PGLITE_THREAD=0 keeps it on this one). */
  pgliteThread?: boolean;
}

/** CONTINUUM_SHARED_BUFFERS (`24MB`, `8192kB`), or undefined for the default. */
export function sharedBuffersFromEnv(): string | undefined {
  const raw = process.env.CONTINUUM_SHARED_BUFFERS;
  if (raw === undefined || raw === '') {
    return undefined;
  }
  if (!/^[1-9][0-9]{0,6}(kB|MB|GB)$/.test(raw)) {
    throw new Error(`CONTINUUM_SHARED_BUFFERS must be a size such as 16MB or 8192kB, got '${raw}'`);
  }
  return raw;
}

/** Opens the configured store and brings its schema up to date. */
export async function openStore(config: StoreConfig, indexer?: Indexer): Promise<Store> {
  const opened = config.databaseUrl
    ? await openNodePg(config.databaseUrl)
    : await openPglite(config.memory ? undefined : (config.dataDir ?? './data'), { sharedBuffers: config.sharedBuffers ?? sharedBuffersFromEnv(), thread: config.pgliteThread ?? process.env.CONTINUUM_PGLITE_THREAD !== '0' });
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
