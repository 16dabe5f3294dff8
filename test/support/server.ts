/**
 * Test servers on the store CI is running: embedded PGlite in memory by default, or, when
 * DATABASE_URL is set, the PostgreSQL server in a schema of its own (so parallel test files and
 * earlier runs never see each other's rows).
 */
import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import supertest from 'supertest';
import { createContinuum, type Continuum, type ContinuumOptions } from '../../src/server';
import type { Driver } from '../../src/store/postgres/driver';
import { migrate } from '../../src/store/postgres/migrate';
import { openNodePg } from '../../src/store/postgres/nodepg';
import { openPglite } from '../../src/store/postgres/pglite';

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

/**
 * A migrated database on the store under test, without a server: PGlite in memory, or a fresh
 * schema on the PostgreSQL server (`drop` removes it; call it after closing the driver).
 */
export async function migratedDriver(): Promise<{ driver: Driver; drop: () => Promise<void> }> {
  let driver: Driver;
  let drop = async (): Promise<void> => undefined;
  if (usingPostgres()) {
    const schema = await freshSchema();
    drop = schema.drop;
    driver = await openNodePg(schema.url, 2);
  } else {
    driver = await openPglite(undefined);
  }
  await migrate(driver);
  return { driver, drop };
}

export interface TestServer {
  continuum: Continuum;
  /** A supertest agent carrying an all-access backend token (`system/*.cruds`). */
  request: () => supertest.Agent;
  /** A supertest agent without any token. */
  anonymous: () => supertest.Agent;
  /** An access token for `scope` (and a patient or user in context). */
  token: (scope: string, context?: { patient?: string; fhirUser?: string; clientId?: string }) => Promise<string>;
  /** A supertest agent carrying a token for `scope`. */
  as: (scope: string, context?: { patient?: string; fhirUser?: string; clientId?: string }) => Promise<supertest.Agent>;
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
    // Most tests count what they stored; the CCM tests turn seeding on.
    seedConformance: false,
    ...options,
  });
  const baseUrl = options.baseUrl ?? BASE_URL;
  const token = (scope: string, context: { patient?: string; fhirUser?: string; clientId?: string } = {}): Promise<string> =>
    continuum.auth.issueToken(baseUrl, { clientId: context.clientId ?? 'test-suite', scope, patient: context.patient, fhirUser: context.fhirUser });
  const admin = await token('system/*.cruds');
  return {
    continuum,
    request: () => supertest.agent(continuum.app).set('Authorization', `Bearer ${admin}`),
    anonymous: () => supertest.agent(continuum.app),
    token,
    as: async (scope, context) => supertest.agent(continuum.app).set('Authorization', `Bearer ${await token(scope, context)}`),
    close: async () => {
      await continuum.close();
      await drop?.();
    },
  };
}

export const FHIR_JSON = 'application/fhir+json';
