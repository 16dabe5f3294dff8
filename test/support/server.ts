/**
 * Test servers on the store CI is running: embedded PGlite in memory by default, or, when
 * DATABASE_URL is set, the PostgreSQL server in a schema of its own (so parallel test files and
 * earlier runs never see each other's rows).
 */
import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import supertest from 'supertest';
import { createContinuum, type Continuum, type ContinuumOptions } from '../../src/server';

export const BASE_URL = 'http://continuum.test';

export const usingPostgres = (): boolean => Boolean(process.env.DATABASE_URL);

/** A fresh, empty schema on the PostgreSQL server; returns a connection string bound to it. */
export async function freshSchema(): Promise<{ url: string; drop: () => Promise<void> }> {
  const base = process.env.DATABASE_URL as string;
  const schema = 't_' + randomUUID().replace(/-/g, '').slice(0, 16);
  const admin = new Client({ connectionString: base });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${schema}`);
  await admin.end();
  const url = new URL(base);
  url.searchParams.set('options', `-c search_path=${schema}`);
  return {
    url: url.toString(),
    drop: async () => {
      const c = new Client({ connectionString: base });
      await c.connect();
      await c.query(`DROP SCHEMA ${schema} CASCADE`);
      await c.end();
    },
  };
}

export interface TestServer {
  continuum: Continuum;
  request: () => supertest.Agent;
  close: () => Promise<void>;
}

/** Starts Continuum on a clean store of the kind under test. */
export async function startTestServer(options: Partial<ContinuumOptions> = {}): Promise<TestServer> {
  let drop: (() => Promise<void>) | undefined;
  let storeOptions: ContinuumOptions;
  if (usingPostgres()) {
    const s = await freshSchema();
    drop = s.drop;
    storeOptions = { databaseUrl: s.url };
  } else {
    storeOptions = { memory: true };
  }
  const continuum = await createContinuum({
    baseUrl: BASE_URL,
    logError: (err) => {
      throw err;
    },
    ...storeOptions,
    ...options,
  });
  return {
    continuum,
    request: () => supertest.agent(continuum.app),
    close: async () => {
      await continuum.close();
      await drop?.();
    },
  };
}

export const FHIR_JSON = 'application/fhir+json';
