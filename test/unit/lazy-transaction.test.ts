import type { Driver, Queryable } from '../../src/store/postgres/driver';
import { LazyTransaction } from '../../src/store/postgres/lazy-transaction';

/** A driver that records what happens, with transactions that commit or roll back as told. */
function recordingDriver(log: string[], beginFails = false): Driver {
  const q = (prefix: string): Queryable => ({
    query: async <R>(sql: string): Promise<R[]> => {
      log.push(`${prefix}${sql}`);
      return [] as R[];
    },
    exec: async (sql: string) => {
      log.push(`${prefix}${sql}`);
    },
  });
  return {
    kind: 'pglite',
    ...q(''),
    transaction: async <T>(fn: (tq: Queryable) => Promise<T>): Promise<T> => {
      if (beginFails) {
        throw new Error('BEGIN failed');
      }
      log.push('BEGIN');
      try {
        const r = await fn(q('tx:'));
        log.push('COMMIT');
        return r;
      } catch (err) {
        log.push('ROLLBACK');
        throw err;
      }
    },
    close: async () => undefined,
  };
}

describe('LazyTransaction', () => {
  test('sends nothing, not even BEGIN, when no statement is made', async () => {
    const log: string[] = [];
    const tx = new LazyTransaction(recordingDriver(log));
    await tx.end(true);
    expect(tx.started).toBe(false);
    expect(log).toEqual([]);
  });

  test('begins on the first statement, shares one transaction between concurrent statements, commits', async () => {
    const log: string[] = [];
    const tx = new LazyTransaction(recordingDriver(log));
    await Promise.all([tx.queryable.query('SELECT 1'), tx.queryable.query('SELECT 2')]);
    await tx.end(true);
    expect(log).toEqual(['BEGIN', 'tx:SELECT 1', 'tx:SELECT 2', 'COMMIT']);
  });

  test('rolls back when ended with an error', async () => {
    const log: string[] = [];
    const tx = new LazyTransaction(recordingDriver(log));
    await tx.queryable.query('INSERT');
    await tx.end(false, new Error('entry 3 is invalid'));
    expect(log).toEqual(['BEGIN', 'tx:INSERT', 'ROLLBACK']);
  });

  test('a failing BEGIN fails the statement instead of hanging', async () => {
    const tx = new LazyTransaction(recordingDriver([], true));
    await expect(tx.queryable.query('SELECT 1')).rejects.toThrow('BEGIN failed');
  });
});
