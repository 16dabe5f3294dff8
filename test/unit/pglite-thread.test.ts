/**
 * The embedded store's PostgreSQL on a worker thread (src/store/postgres/pglite-thread.ts): the
 * driver must behave exactly like PGlite on the main thread — rows and types, database errors with
 * their fields, transactions that commit or roll back, PGlite's serialisation — and must neither
 * keep a process alive when idle nor lose statements sent before close.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Driver } from '../../src/store/postgres/driver';
import { openPgliteThread, type PgliteThreadDriver } from '../../src/store/postgres/pglite-thread';

const ROOT = join(__dirname, '..', '..');

describe('PGlite on a worker thread', () => {
  let db: Driver;
  beforeAll(async () => {
    db = await openPgliteThread(undefined, ['-c', 'shared_buffers=16MB']);
    await db.exec('CREATE TABLE t (id int PRIMARY KEY, name text, doc jsonb, at timestamptz, raw bytea)');
  }, 60_000);
  afterAll(async () => {
    await db.close();
  });

  test('parameters go in and rows come back with their types', async () => {
    await db.query('INSERT INTO t VALUES ($1, $2, $3, $4, $5)', [1, 'Ann', JSON.stringify({ a: [1, 2] }), '2026-01-02T03:04:05.678Z', new Uint8Array([7, 8])]);
    const rows = await db.query<{ id: number; name: string; doc: unknown; at: Date; raw: Uint8Array }>('SELECT * FROM t WHERE id = $1', [1]);
    expect(rows).toHaveLength(1);
    expect(rows[0].id).toBe(1);
    expect(rows[0].name).toBe('Ann');
    expect(rows[0].doc).toEqual({ a: [1, 2] });
    // A Date, though of the main realm rather than jest's sandbox (so not `instanceof` here).
    expect(Object.prototype.toString.call(rows[0].at)).toBe('[object Date]');
    expect(rows[0].at.toISOString()).toBe('2026-01-02T03:04:05.678Z');
    expect(Array.from(rows[0].raw)).toEqual([7, 8]);
  });

  // The worker reads rows straight from the wire (fastRows) rather than through PGlite's parser:
  // every type must come out as PGlite's own query() gives it, also over an answer of many chunks,
  // and an answer with a notice in it (read the general way) too.
  test('rows read from the wire equal what PGlite on the main thread returns, type by type', async () => {
    const { openPglite } = await import('../../src/store/postgres/pglite');
    const plain = await openPglite(undefined);
    const flat = (rows: Record<string, unknown>[]): unknown[] =>
      rows.map((r) =>
        Object.entries(r).map(([k, v]) => {
          const tag = Object.prototype.toString.call(v);
          return [k, tag === '[object Date]' ? `date:${(v as Date).toISOString()}` : tag === '[object Uint8Array]' ? `bytes:${Array.from(v as Uint8Array)}` : v];
        }),
      );
    const statements: [string, unknown[]][] = [
      [
        `SELECT 1::int2 AS a, 2::int4 AS b, 9007199254740993::int8 AS c, 1.5::float4 AS d, 2.25::float8 AS e, 12345678901234567890.5::numeric AS f,
          true AS g, false AS h, NULL::text AS i, '' AS j, 'Zoë ✓ 𝄞' AS k, '{"x":[1,null,"é"]}'::jsonb AS l, '[1,2]'::json AS m,
          ARRAY['a','b,c',NULL]::text[] AS n, ARRAY[1,2]::int[] AS o, '2026-01-02T03:04:05.678Z'::timestamptz AS p,
          '2026-01-02'::date AS q, '1 day 2 hours'::interval AS r, '\\x0102ff'::bytea AS s, $1::text AS t, $2::int AS u, 'x'::char(3) AS v,
          'f3f1c0de-0000-4000-8000-000000000001'::uuid AS w`,
        ['param', 7],
      ],
      // Parameters are encoded on the calling thread (bind-params.ts): NULL, multi-byte and
      // astral characters, array literals with quotes, backslashes and NULLs, dates, objects, bytes,
      // an empty string and a megabyte, as PGlite's own serializer sends them.
      [
        `SELECT $1::text AS a, $2::text AS b, $3::text[] AS c, $4::int AS d, $5::timestamptz AS e, $6::jsonb AS f, $7::bool AS g,
          $8::text AS h, $9::bytea AS i, length($10::text) AS j, octet_length($10::text) AS k, right($10::text, 3) AS l, $11::text AS m`,
        [
          null,
          'Zoë ✓ 𝄞 "q" \\ back',
          ['a"b', 'c\\d', null, 'é,{}', ''],
          42,
          new Date('2026-01-02T03:04:05.678Z'),
          { x: [1, 'é'] },
          true,
          '',
          new Uint8Array([0, 255]),
          'x'.repeat(1_000_000) + 'é𝄞',
          undefined,
        ],
      ],
      ['SELECT g AS n, repeat(chr(65 + g % 26), g % 300) AS s, g % 3 = 0 AS even FROM generate_series(1, 20000) g', []],
      ['SELECT 1 AS same, 2 AS same', []],
      ['SELECT 1 AS a WHERE false', []],
      ['CREATE TEMP TABLE IF NOT EXISTS wire (id int)', []],
      ['CREATE TEMP TABLE IF NOT EXISTS wire (id int)', []], // a notice: "relation already exists"
      ['INSERT INTO wire VALUES (1), (2) RETURNING id', []],
    ];
    try {
      for (const [sql, params] of statements) {
        const mine = await db.query<Record<string, unknown>>(sql, params);
        const theirs = await plain.query<Record<string, unknown>>(sql, params);
        expect({ sql, rows: flat(mine) }).toEqual({ sql, rows: flat(theirs) });
      }
    } finally {
      await plain.close();
    }
  }, 60_000);

  test('a database error keeps its SQLSTATE and message', async () => {
    await db.query('INSERT INTO t (id, name) VALUES (2, $1)', ['x']);
    const err = await db.query('INSERT INTO t (id, name) VALUES (2, $1)', ['y']).then(
      () => undefined,
      (e: unknown) => e as Error & { code?: string; constraint?: string },
    );
    expect(err).toBeInstanceOf(Error);
    expect(err?.code).toBe('23505');
    expect(err?.message).toMatch(/duplicate key/);
    expect(err?.constraint).toBe('t_pkey');
    await expect(db.query('SELEC 1')).rejects.toMatchObject({ code: '42601' });
  });

  test('a transaction commits what its callback did, and rolls all of it back when it throws', async () => {
    const got = await db.transaction(async (q) => {
      await q.query('INSERT INTO t (id, name) VALUES (10, $1)', ['kept']);
      await q.query('INSERT INTO t (id, name) VALUES (11, $1)', ['kept too']);
      return (await q.query<{ n: string }>('SELECT count(*)::text AS n FROM t WHERE id >= 10'))[0].n;
    });
    expect(got).toBe('2');
    await expect(
      db.transaction(async (q) => {
        await q.query('INSERT INTO t (id, name) VALUES (20, $1)', ['gone']);
        throw new Error('the caller changed its mind');
      }),
    ).rejects.toThrow('the caller changed its mind');
    // A failed statement inside a transaction rolls back the statements before it as well.
    await expect(
      db.transaction(async (q) => {
        await q.query('INSERT INTO t (id, name) VALUES (21, $1)', ['gone']);
        await q.query('INSERT INTO t (id, name) VALUES (10, $1)', ['clash']);
      }),
    ).rejects.toMatchObject({ code: '23505' });
    const ids = (await db.query<{ id: number }>('SELECT id FROM t WHERE id >= 10 ORDER BY id')).map((r) => r.id);
    expect(ids).toEqual([10, 11]);
  });

  test('transactions started together are serialised: no update is lost', async () => {
    await db.query('CREATE TABLE counter (n int)');
    await db.query('INSERT INTO counter VALUES (0)');
    await Promise.all(
      Array.from({ length: 20 }, () =>
        db.transaction(async (q) => {
          const [{ n }] = await q.query<{ n: number }>('SELECT n FROM counter');
          await q.query('UPDATE counter SET n = $1', [n + 1]);
        }),
      ),
    );
    expect((await db.query<{ n: number }>('SELECT n FROM counter'))[0].n).toBe(20);
  });

  test('a prepared statement is parsed once and reused, also after a failed first use', async () => {
    const sql = 'SELECT name FROM t WHERE id = $1 /* prepared-once */';
    const named = async (): Promise<number> =>
      Number((await db.query<{ n: string }>("SELECT count(*)::text AS n FROM pg_prepared_statements WHERE statement LIKE '%prepared-once%' AND name <> ''"))[0].n);
    // Its first use fails at Bind (not an integer): the statement exists all the same.
    await expect(db.query(sql, ['not a number'], { prepare: true })).rejects.toMatchObject({ code: '22P02' });
    expect(await named()).toBe(1);
    await db.query('INSERT INTO t (id, name) VALUES (30, $1)', ['Prepared']);
    for (let i = 0; i < 3; i++) {
      expect(await db.query<{ name: string }>(sql, [30], { prepare: true })).toEqual([{ name: 'Prepared' }]);
    }
    expect(await named()).toBe(1);
    // A statement that does not parse is not kept, and fails the same way next time.
    await expect(db.query('SELEC name FROM t', [], { prepare: true })).rejects.toMatchObject({ code: '42601' });
    await expect(db.query('SELEC name FROM t', [], { prepare: true })).rejects.toMatchObject({ code: '42601' });
  });

  // plan 'generic': the statement runs under SET plan_cache_mode = force_generic_plan, sent in the
  // same message when the mode was not already that. Its rows are its own (not the SET's),
  // PostgreSQL plans it without its values, and a statement that asks for nothing runs under the
  // default again, also after the statement failed (in a transaction too).
  test('a generic statement is planned without its values, and the plan cache setting is restored', async () => {
    await db.exec('CREATE TABLE gen (id int PRIMARY KEY, name text)');
    await db.query('INSERT INTO gen SELECT g, $1 || g FROM generate_series(100, 119) g', ['generic-']);
    const sql = 'SELECT id, name FROM gen WHERE id >= $1 AND id < $2 ORDER BY id /* generic-test */';
    const plans = async (): Promise<{ generic_plans: number; custom_plans: number }[]> =>
      db.query("SELECT generic_plans::int, custom_plans::int FROM pg_prepared_statements WHERE statement LIKE '%generic-test%' AND name <> ''");
    const mode = async (): Promise<string> => (await db.query<{ plan_cache_mode: string }>('SHOW plan_cache_mode'))[0].plan_cache_mode;
    for (let i = 0; i < 3; i++) {
      const rows = await db.query<{ id: number; name: string }>(sql, [100 + i, 103 + i], { prepare: true, plan: 'generic' });
      expect(rows).toEqual([0, 1, 2].map((k) => ({ id: 100 + i + k, name: `generic-${100 + i + k}` })));
    }
    expect(await plans()).toEqual([{ generic_plans: 3, custom_plans: 0 }]);
    expect(await mode()).toBe('auto');
    // A statement that fails at Bind: the SET is undone with the failed (implicit) transaction.
    await expect(db.query(sql, ['x', 1], { prepare: true, plan: 'generic' })).rejects.toMatchObject({ code: '22P02' });
    expect(await mode()).toBe('auto');
    // ... and inside a transaction, with its rollback.
    await expect(
      db.transaction(async (q) => {
        expect(await q.query(sql, [105, 107], { prepare: true, plan: 'generic' })).toHaveLength(2);
        expect(await q.query<{ plan_cache_mode: string }>('SHOW plan_cache_mode')).toEqual([{ plan_cache_mode: 'auto' }]);
        await q.query(sql, ['x', 1], { prepare: true, plan: 'generic' });
      }),
    ).rejects.toMatchObject({ code: '22P02' });
    expect(await mode()).toBe('auto');
    // A notice in the answer (read the general way): the statement's rows, not the SET's.
    await db.exec("CREATE OR REPLACE FUNCTION noisy(v int) RETURNS int LANGUAGE plpgsql AS $$ BEGIN RAISE NOTICE 'hello'; RETURN v; END $$");
    expect(await db.query('SELECT noisy(id) AS id FROM gen WHERE id = $1', [101], { prepare: true, plan: 'generic' })).toEqual([{ id: 101 }]);
    // Prepared statements made again after a script (DEALLOCATE ALL): generic still works.
    expect(await db.query<{ id: number }>(sql, [110, 112], { prepare: true, plan: 'generic' })).toHaveLength(2);
    expect(await mode()).toBe('auto');
  });

  // plan 'custom': planned with its values at every execution, where the plan cache would switch
  // to a generic plan after five (it does here when left to decide: the contrast shows it).
  test('a custom statement is planned with its values every time, and stays parsed', async () => {
    await db.exec('CREATE TABLE cus (id int PRIMARY KEY, name text)');
    await db.query("INSERT INTO cus SELECT g, 'c' || g FROM generate_series(1, 20) g");
    const plans = async (tag: string): Promise<{ generic_plans: number; custom_plans: number }[]> =>
      db.query(`SELECT generic_plans::int, custom_plans::int FROM pg_prepared_statements WHERE statement LIKE '%${tag}%' AND name <> ''`);
    for (let i = 1; i <= 8; i++) {
      expect(await db.query('SELECT name FROM cus WHERE id = $1 /* custom-test */', [i], { prepare: true, plan: 'custom' })).toEqual([{ name: `c${i}` }]);
      expect(await db.query('SELECT name FROM cus WHERE id = $1 /* auto-test */', [i], { prepare: true })).toEqual([{ name: `c${i}` }]);
    }
    expect(await plans('custom-test')).toEqual([{ generic_plans: 0, custom_plans: 8 }]);
    expect((await plans('auto-test'))[0].generic_plans).toBeGreaterThan(0);
    expect((await db.query<{ plan_cache_mode: string }>('SHOW plan_cache_mode'))[0].plan_cache_mode).toBe('auto');
  });

  // The mode stays set after a statement, so a run of statements of one kind sets it once; any
  // other kind sets it again, and so does the next statement after a failure or a rollback, which
  // undo a SET made in their transaction.
  test('plan_cache_mode is set only when the next statement needs another one', async () => {
    await db.exec('CREATE TABLE sticky (id int PRIMARY KEY, name text)');
    await db.query("INSERT INTO sticky SELECT g, 's' || g FROM generate_series(1, 30) g");
    const gen = 'SELECT name FROM sticky WHERE id = $1 /* sticky-generic */';
    const cus = 'SELECT name FROM sticky WHERE id = $1 /* sticky-custom */';
    const driver = db as PgliteThreadDriver;
    const switches = async (fn: () => Promise<unknown>): Promise<number> => {
      const before = await driver.planSwitches();
      await fn();
      return (await driver.planSwitches()) - before;
    };
    const times = async (n: number, sql: string, plan?: 'generic' | 'custom'): Promise<void> => {
      for (let i = 1; i <= n; i++) {
        expect(await db.query(sql, [i], plan ? { prepare: true, plan } : { prepare: true })).toEqual([{ name: `s${i}` }]);
      }
    };
    expect(await switches(() => times(5, gen, 'generic'))).toBe(1);
    expect(await switches(() => times(4, cus, 'custom'))).toBe(1);
    expect(await switches(() => times(3, gen, 'generic'))).toBe(1);
    expect(await switches(() => db.query('SELECT 1 AS one'))).toBe(1); // the default again
    expect(await switches(() => db.query('SELECT 2 AS two'))).toBe(0);
    // Each kind got its own plans, though they alternated.
    const plans = await db.query<{ statement: string; generic_plans: number; custom_plans: number }>(
      "SELECT statement, generic_plans::int, custom_plans::int FROM pg_prepared_statements WHERE statement LIKE '%sticky-%' AND name <> '' ORDER BY statement",
    );
    expect(plans.map((p) => [p.statement.includes('sticky-custom') ? 'custom' : 'generic', p.generic_plans, p.custom_plans])).toEqual([
      ['custom', 0, 4],
      ['generic', 8, 0],
    ]);
    // A failure undoes the SET made in its message: the next statement sets the mode again.
    await times(1, gen, 'generic');
    await expect(db.query(gen, ['x'], { prepare: true, plan: 'generic' })).rejects.toMatchObject({ code: '22P02' });
    expect(await switches(() => times(2, gen, 'generic'))).toBe(1);
    // So does a rollback, for a SET made inside the transaction.
    await db.query('SELECT 1 AS one');
    await expect(
      db.transaction(async (q) => {
        await q.query(gen, [1], { prepare: true, plan: 'generic' });
        throw new Error('changed its mind');
      }),
    ).rejects.toThrow('changed its mind');
    expect((await db.query<{ plan_cache_mode: string }>('SHOW plan_cache_mode'))[0].plan_cache_mode).toBe('auto');
    expect(await switches(() => times(1, gen, 'generic'))).toBe(1);
    // A committed one stays.
    await db.transaction(async (q) => {
      await q.query(cus, [1], { prepare: true, plan: 'custom' });
    });
    expect(await switches(() => times(2, cus, 'custom'))).toBe(0);
  });

  test('a script (a migration) makes prepared statements prepare again: a new column is seen', async () => {
    await db.exec('CREATE TABLE m (id int)');
    await db.query('INSERT INTO m VALUES (1)');
    expect(await db.query('SELECT * FROM m', [], { prepare: true })).toEqual([{ id: 1 }]);
    await db.exec("ALTER TABLE m ADD COLUMN label text DEFAULT 'new'");
    expect(await db.query('SELECT * FROM m', [], { prepare: true })).toEqual([{ id: 1, label: 'new' }]);
  });

  test('a transaction whose statement failed does not report a commit, even when the caller caught the error', async () => {
    await expect(
      db.transaction(async (q) => {
        await q.query('INSERT INTO t (id, name) VALUES (40, $1)', ['lost']);
        await q.query('INSERT INTO t (id, name) VALUES (40, $1)', ['clash']).catch(() => undefined);
      }),
    ).rejects.toThrow(/rolled back/);
    expect(await db.query('SELECT id FROM t WHERE id = 40')).toEqual([]);
  });

  test('a statement outside the open transaction waits for its end and sees only what it committed', async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let inserted!: () => void;
    const didInsert = new Promise<void>((resolve) => (inserted = resolve));
    const tx = db.transaction(async (q) => {
      await q.query('INSERT INTO t (id, name) VALUES (50, $1)', ['inside']);
      inserted();
      await held;
      await q.query('INSERT INTO t (id, name) VALUES (51, $1)', ['inside too']);
    });
    await didInsert;
    let answered = false;
    const outside = db.query<{ id: number }>('SELECT id FROM t WHERE id >= 50 ORDER BY id').then((rows) => {
      answered = true;
      return rows.map((r) => r.id);
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(answered).toBe(false);
    release();
    await tx;
    expect(await outside).toEqual([50, 51]);
  });

  test('statements sent before close finish; after close every statement fails with a clear error', async () => {
    const other = await openPgliteThread(undefined, ['-c', 'shared_buffers=16MB']);
    await other.exec('CREATE TABLE x (n int)');
    const pending = Array.from({ length: 50 }, (_, i) => other.query('INSERT INTO x VALUES ($1)', [i]));
    const count = other.query<{ n: string }>('SELECT count(*)::text AS n FROM x');
    await other.close();
    await expect(Promise.all(pending)).resolves.toHaveLength(50);
    expect((await count)[0].n).toBe('50');
    await expect(other.query('SELECT 1')).rejects.toThrow(/closed/);
  }, 60_000);

  test('an idle thread does not keep the process alive; a statement in flight does', () => {
    // A child opens the store, runs one statement without awaiting it in any other way than the
    // promise, prints the answer and never closes: it must print, then exit by itself.
    const script = `
      const { openPgliteThread } = require(${JSON.stringify(join(ROOT, 'dist', 'src', 'store', 'postgres', 'pglite-thread.js'))});
      openPgliteThread(undefined, []).then((db) => db.query('SELECT 41 + 1 AS answer')).then((rows) => console.log('answer ' + rows[0].answer));
    `;
    const run = spawnSync(process.execPath, ['-e', script], { timeout: 60_000, encoding: 'utf8' });
    expect(run.error).toBeUndefined();
    expect(run.stdout).toContain('answer 42');
    expect(run.status).toBe(0);
  }, 70_000);

  test('code after close() runs even when a statement was answered after the close began', () => {
    // The CLI sets its exit code after closing the store; a statement sent during the close (a
    // background task) used to let the thread go unreferenced, and the process exited first.
    const script = `
      const { openPgliteThread } = require(${JSON.stringify(join(ROOT, 'dist', 'src', 'store', 'postgres', 'pglite-thread.js'))});
      (async () => {
        const db = await openPgliteThread(undefined, []);
        const closing = db.close();
        const late = db.query('SELECT 1').catch((e) => 'refused: ' + e.message);
        await closing;
        console.log('after close; late statement ' + (await late));
        process.exitCode = 3;
      })();
    `;
    const run = spawnSync(process.execPath, ['-e', script], { timeout: 60_000, encoding: 'utf8' });
    expect(run.stdout).toMatch(/after close; late statement refused: (the embedded database is closed|the embedded database thread stopped)/);
    expect(run.status).toBe(3);
  }, 70_000);
});

describe('PGlite on a worker thread, in a data directory', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'continuum-thread-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  // initdb ran on the serving thread, and PGlite kept what it allocated: ~500 MB of WebAssembly
  // memory and ArrayBuffers more on that thread than after any later start, for the life of the
  // process. The directory is now created in a child process first.
  test('a fresh directory is created, and the thread holds no more memory than after a restart', async () => {
    const fresh = await openPgliteThread(dir, ['-c', 'shared_buffers=16MB']);
    let first: { external: number; arrayBuffers: number };
    try {
      expect(existsSync(join(dir, 'PG_VERSION'))).toBe(true);
      await fresh.exec('CREATE TABLE kept (n int)');
      await fresh.query('INSERT INTO kept VALUES ($1)', [7]);
      first = await fresh.threadMemory();
    } finally {
      await fresh.close();
    }
    const again = await openPgliteThread(dir, ['-c', 'shared_buffers=16MB']);
    try {
      expect(await again.query<{ n: number }>('SELECT n FROM kept')).toEqual([{ n: 7 }]);
      const later = await again.threadMemory();
      // The same instance either way: WebAssembly memory (128 MB) plus PGlite's files (~8 MB),
      // give or take garbage not yet collected (initdb's left ~430 MB external more).
      const slack = 64 * 1024 * 1024;
      expect(first.external).toBeLessThan(later.external + slack);
      expect(first.arrayBuffers).toBeLessThan(later.arrayBuffers + slack);
    } finally {
      await again.close();
    }
  }, 120_000);

  test('a directory that cannot be created fails with the reason and the path', async () => {
    await expect(openPgliteThread(dir, ['-c', 'shared_buffers=banana'])).rejects.toThrow(`could not create its data directory ${dir}`);
  }, 60_000);
});
