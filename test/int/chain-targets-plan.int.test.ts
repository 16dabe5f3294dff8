/**
 * A chain whose targets are found first (store.ts resolveChains) finds them with the targets' own
 * search, anchored when it is a lookup: `Observation?subject:Patient.name=x` reads the names
 * starting with x from the string index and is planned once (QueryOptions plan 'generic'), as
 * `Patient?name=x` is. Planned afresh for every request, its first statement cost more than the
 * rest of the search on the embedded store. Always on the embedded store's worker-thread driver:
 * forcing the plan is what that driver does (a PostgreSQL server's plan cache decides there).
 */
import type { Driver } from '../../src/store/postgres/driver';
import { migrate } from '../../src/store/postgres/migrate';
import { openPgliteThread } from '../../src/store/postgres/pglite-thread';
import { PgStore } from '../../src/store/postgres/store';
import type { SearchFilter } from '../../src/store/api';

let driver: Driver;
let store: PgStore;

beforeAll(async () => {
  driver = await openPgliteThread(undefined, ['-c', 'shared_buffers=16MB']);
  await migrate(driver);
  await driver.exec(`
    INSERT INTO resource_current (resource_type, id, version_id, last_updated, deleted, content)
    SELECT 'Patient', 'p' || g, 1, timestamptz '2020-01-01' + g * interval '1 minute', false, '{"resourceType":"Patient","id":"p' || g || '"}'
    FROM generate_series(1, 200) g;
    INSERT INTO search_string (resource_type, id, code, value, normalized)
    SELECT 'Patient', 'p' || g, 'name', 'Name' || g, 'name' || g FROM generate_series(1, 200) g;
    INSERT INTO resource_current (resource_type, id, version_id, last_updated, deleted, content)
    SELECT 'Observation', 'o' || g, 1, timestamptz '2021-01-01' + g * interval '1 minute', false, '{"resourceType":"Observation","id":"o' || g || '"}'
    FROM generate_series(1, 1000) g;
    INSERT INTO search_reference (resource_type, id, code, target_type, target_id)
    SELECT 'Observation', 'o' || g, 'subject', 'Patient', 'p' || (g % 200 + 1) FROM generate_series(1, 1000) g;
    ANALYZE;
  `);
  store = new PgStore(driver);
}, 60_000);

afterAll(async () => {
  await store?.close();
});

const chain = (name: string): SearchFilter => ({
  kind: 'chain',
  code: 'subject',
  targetType: 'Patient',
  filters: [{ kind: 'string', code: 'name', mode: 'starts', values: [name] }],
});

test('the targets of a chained name search are looked up by name and planned once', async () => {
  for (const [name, patient] of [
    ['name42', 'p42'],
    ['name117', 'p117'],
    ['name199', 'p199'],
  ]) {
    const page = await store.search({ resourceType: 'Observation', filters: [chain(name)], count: 20 });
    const expected = Array.from({ length: 1000 }, (_, i) => i + 1)
      .filter((g) => `p${(g % 200) + 1}` === patient)
      .map((g) => `o${g}`)
      .sort();
    expect(page.versions.map((v) => v.id).sort()).toEqual(expected);
  }
  const statements = await driver.query<{ statement: string; generic_plans: string | number; custom_plans: string | number }>(
    `SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE 'SELECT r.id FROM resource_current r %'`,
  );
  expect(statements).toHaveLength(1);
  expect(statements[0].statement).toMatch(/search_string/);
  expect(Number(statements[0].generic_plans)).toBeGreaterThanOrEqual(3);
  expect(Number(statements[0].custom_plans)).toBe(0);
});
