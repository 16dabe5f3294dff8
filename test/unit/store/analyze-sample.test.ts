/**
 * ANALYZE samples the resource tables (whose rows carry the resources' JSON) at statistics target
 * 10 (migration 014): 3,000 rows held in memory rather than 30,000, which PGlite's WebAssembly
 * memory would keep resident for good. A histogram has at most target + 1 bounds, so a column
 * with more distinct values than that shows the target in force. Runs on the store under test.
 */
import type { Driver } from '../../../src/store/postgres/driver';
import { migratedDriver } from '../../support/server';

jest.setTimeout(120_000);

let driver: Driver;
let drop: (() => Promise<void>) | undefined;

beforeAll(async () => {
  ({ driver, drop } = await migratedDriver());
  await driver.exec(`
INSERT INTO resource_current (resource_type, id, version_id, last_updated, deleted, content)
SELECT 'Patient', 'p' || g, 1, timestamptz '2020-01-01' + g * interval '1 minute', false, '{"resourceType":"Patient","id":"p' || g || '"}'
FROM generate_series(1, 500) g;
INSERT INTO resource_version (resource_type, id, version_id, last_updated, deleted, method, content)
SELECT resource_type, id, version_id, last_updated, deleted, 'POST', content FROM resource_current;
INSERT INTO search_date (resource_type, id, code, start_at, end_at)
SELECT 'Patient', 'p' || g, 'birthdate', d, d FROM (SELECT g, timestamptz '1930-01-01' + g * interval '1 day' AS d FROM generate_series(1, 500) g) x;
ANALYZE resource_current, resource_version, search_date;
`);
});

afterAll(async () => {
  await driver?.close();
  await drop?.();
});

/** How many histogram bounds ANALYZE kept for a column (0: none). */
async function bounds(table: string, column: string): Promise<number> {
  const rows = (await driver.query(
    `SELECT coalesce(array_length(histogram_bounds::text::text[], 1), 0) AS n FROM pg_stats WHERE schemaname = current_schema() AND tablename = $1 AND attname = $2`,
    [table, column],
  )) as { n: number }[];
  expect(rows).toHaveLength(1);
  return Number(rows[0].n);
}

describe('ANALYZE on the resource tables (migration 014)', () => {
  test.each([
    ['resource_current', 'last_updated'],
    ['resource_current', 'id'],
    ['resource_version', 'last_updated'],
    ['resource_version', 'seq'],
  ])('%s.%s: a histogram of at most 11 bounds (statistics target 10)', async (table, column) => {
    const n = await bounds(table, column);
    expect(n).toBeGreaterThan(1);
    expect(n).toBeLessThanOrEqual(11);
  });

  test('the index tables keep the default target (a finer histogram)', async () => {
    expect(await bounds('search_date', 'start_at')).toBeGreaterThan(11);
  });
});
