/**
 * The embedded store's group commit (create-groups.ts) on a real PGlite: concurrent plain creates
 * share continuum_create statements, each resource is written with exactly its own index rows,
 * and a create whose id is taken fails alone, leaving no index rows that describe it.
 */
import type { Patient } from '@medplum/fhirtypes';
import { extractIndexValues } from '../../src/search/extract';
import { createRegistry } from '../../src/search/definitions';
import type { ResourceLike } from '../../src/store/api';
import type { Driver } from '../../src/store/postgres/driver';
import { type TextArrayParam } from '../../src/store/postgres/text-array';
import { migrate } from '../../src/store/postgres/migrate';
import { openPglite } from '../../src/store/postgres/pglite';
import { PgStore } from '../../src/store/postgres/store';

jest.setTimeout(60_000);

const patient = (id: string, family: string): ResourceLike => ({ resourceType: 'Patient', id, name: [{ family }] }) as Patient as unknown as ResourceLike;

describe('group commit of plain creates (embedded store)', () => {
  let driver: Driver;
  let store: PgStore;
  /** The ids of each continuum_create statement sent, in order. */
  const statements: string[][] = [];

  beforeAll(async () => {
    const opened = await openPglite(undefined, { thread: true });
    await migrate(opened);
    driver = {
      ...opened,
      kind: opened.kind,
      pipelined: opened.pipelined,
      query: (sql, params, options) => {
        if (sql.includes('continuum_create')) {
          statements.push([...(params?.[1] as TextArrayParam).values] as string[]);
        }
        return opened.query(sql, params, options);
      },
      exec: (sql) => opened.exec(sql),
      transaction: (fn) => opened.transaction(fn),
      close: () => opened.close(),
    };
    const registry = createRegistry();
    store = new PgStore(driver, (r) => extractIndexValues(r, registry, {}));
  });

  afterAll(async () => {
    await store.close();
  });

  const families = async (id: string): Promise<string[]> =>
    (await driver.query<{ value: string }>(`SELECT value FROM search_string WHERE resource_type = 'Patient' AND id = $1 AND code = 'family' ORDER BY value`, [id])).map((r) => r.value);

  test('concurrent creates share statements; each resource gets its own rows', async () => {
    statements.length = 0;
    const ids = Array.from({ length: 20 }, (_, i) => `grp-${i}`);
    const written = await Promise.all(ids.map((id, i) => store.transaction((w) => w.create(patient(id, `Family${i}`)))));
    expect(written.map((v) => v.id)).toEqual(ids);
    // The first went alone (nothing in flight); the other 19 arrived while it ran.
    expect(statements).toEqual([['grp-0'], ids.slice(1)]);
    for (const [i, id] of ids.entries()) {
      expect(JSON.parse((await store.read('Patient', id))?.json ?? '{}')).toMatchObject({ id, name: [{ family: `Family${i}` }] });
      expect(await families(id)).toEqual([`Family${i}`]);
    }
  });

  test('a taken id fails its own create with 409 and leaves no rows; the group around it is written', async () => {
    await store.transaction((w) => w.create(patient('grp-keep', 'Keeper')));
    statements.length = 0;
    const results = await Promise.allSettled([
      store.transaction((w) => w.create(patient('grp-a', 'Before'))),
      store.transaction((w) => w.create(patient('grp-b', 'Other'))),
      store.transaction((w) => w.create(patient('grp-keep', 'Stray'))),
      store.transaction((w) => w.create(patient('grp-c', 'After'))),
    ]);
    expect(statements).toEqual([['grp-a'], ['grp-b', 'grp-keep', 'grp-c']]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    const failure = (results[2] as PromiseRejectedResult).reason as Error & { category?: string };
    expect(failure.message).toBe('Patient/grp-keep already exists');
    expect(failure.category).toBe('conflict');
    expect(await families('grp-keep')).toEqual(['Keeper']);
    expect(JSON.parse((await store.read('Patient', 'grp-keep'))?.json ?? '{}')).toMatchObject({ meta: { versionId: '1' }, name: [{ family: 'Keeper' }] });
    expect(await families('grp-b')).toEqual(['Other']);
    expect(await families('grp-c')).toEqual(['After']);
  });
});
