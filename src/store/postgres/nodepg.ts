import { createHash } from 'node:crypto';
import { Pool, type QueryConfig, types } from 'pg';
import type { Driver, Queryable, QueryOptions } from './driver';

// Return bigint (int8) as string and timestamps untouched, matching PGlite's behaviour below.
types.setTypeParser(20, (v) => v);

/**
 * Named statements kept at most: node-postgres keeps every named statement on each connection for
 * its lifetime, so beyond this many (a search shape is one) statements go unnamed.
 */
const MAX_PREPARED = 500;
const prepared = new Map<string, string>();

/**
 * A query config; fixed statements get a name so each connection prepares them once, unless
 * they must be planned with their values each time (`plan: 'custom'`: PostgreSQL's plan cache
 * could otherwise settle on a plan made without them).
 */
function config(sql: string, params: unknown[] | undefined, options: QueryOptions | undefined): QueryConfig {
  const prepare = options?.prepare === true && options.plan !== 'custom';
  let name = prepare ? prepared.get(sql) : undefined;
  if (prepare && name === undefined && prepared.size < MAX_PREPARED) {
    name = 'c' + createHash('sha1').update(sql).digest('hex').slice(0, 20);
    prepared.set(sql, name);
  }
  return name === undefined ? { text: sql, values: params } : { name, text: sql, values: params };
}

/** A PostgreSQL server through a node-postgres pool (DATABASE_URL). */
export async function openNodePg(connectionString: string, poolSize = 10): Promise<Driver> {
  const pool = new Pool({ connectionString, max: poolSize });
  // Surface a bad URL at start-up rather than on the first request.
  const probe = await pool.connect();
  probe.release();
  pool.on('error', () => {
    // An idle client died (server restart); the pool replaces it. Nothing to do here.
  });
  return {
    kind: 'postgres',
    pipelined: true,
    async query<R>(sql: string, params?: unknown[], options?: QueryOptions): Promise<R[]> {
      const res = await pool.query(config(sql, params, options));
      return res.rows as R[];
    },
    async transaction<T>(fn: (q: Queryable) => Promise<T>): Promise<T> {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const q: Queryable = {
          async query<R>(sql: string, params?: unknown[], options?: QueryOptions): Promise<R[]> {
            const res = await client.query(config(sql, params, options));
            return res.rows as R[];
          },
          async exec(sql: string): Promise<void> {
            await client.query(sql);
          },
        };
        const result = await fn(q);
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      } finally {
        client.release();
      }
    },
    async exec(sql: string): Promise<void> {
      await pool.query(sql);
    },
    close: () => pool.end(),
  };
}
