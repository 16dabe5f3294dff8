/**
 * TextArrayParam (src/store/postgres/text-array.ts): text[] parameters in PostgreSQL's binary array
 * format arrive as the same values through every driver: the PGlite thread, PGlite in this thread,
 * and node-postgres (when DATABASE_URL is set).
 */
import type { Driver } from '../../src/store/postgres/driver';
import { openNodePg } from '../../src/store/postgres/nodepg';
import { openPglite } from '../../src/store/postgres/pglite';
import { encodeTextArray, TextArrayParam } from '../../src/store/postgres/text-array';

const VALUES: (string | null)[] = ['plain', '', null, 'quotes " and \\ backslashes', '{braces}, commas', 'NULL', 'é ü 漢字 🎉', '{"resourceType":"Patient","name":[{"family":"O\'Brien"}]}'];

const drivers: [string, () => Promise<Driver>][] = [
  ['PGlite thread', () => openPglite(undefined, { thread: true })],
  ['PGlite in this thread', () => openPglite(undefined, { thread: false })],
];
if (process.env.DATABASE_URL) {
  drivers.push(['node-postgres', () => openNodePg(process.env.DATABASE_URL as string, 1)]);
}

describe.each(drivers)('%s', (_name, open) => {
  let driver: Driver;
  beforeAll(async () => {
    driver = await open();
  });
  afterAll(async () => {
    await driver.close();
  });

  test('values with quotes, backslashes, braces, NULL and non-ASCII text arrive unchanged', async () => {
    const rows = await driver.query<{ a: (string | null)[]; n: number }>('SELECT $1::text[] AS a, cardinality($1::text[]) AS n', [new TextArrayParam(VALUES)]);
    expect(rows[0].a).toEqual(VALUES);
    expect(rows[0].n).toBe(VALUES.length);
  });

  test('an empty array', async () => {
    const rows = await driver.query<{ n: number }>('SELECT cardinality($1::text[]) AS n', [new TextArrayParam([])]);
    expect(rows[0].n).toBe(0);
  });

  test('unnested in order, next to a text-form array', async () => {
    const rows = await driver.query<{ v: string | null; k: string }>('SELECT * FROM unnest($1::text[], $2::text[]) AS t(v, k)', [new TextArrayParam(['a', null, 'c']), ['1', '2', '3']]);
    expect(rows.map((r) => [r.v, r.k])).toEqual([
      ['a', '1'],
      [null, '2'],
      ['c', '3'],
    ]);
  });
});

test('the encoding: header (one dimension, null flag, text oid, length, lower bound 1), then each length and bytes', () => {
  const bytes = encodeTextArray(['é', null]);
  const ints = (at: number, n: number): number[] => Array.from({ length: n }, (_, i) => bytes.readInt32BE(at + 4 * i));
  expect(ints(0, 5)).toEqual([1, 1, 25, 2, 1]);
  expect(bytes.readInt32BE(20)).toBe(2);
  expect(bytes.subarray(24, 26).toString('utf8')).toBe('é');
  expect(bytes.readInt32BE(26)).toBe(-1);
  expect(bytes.length).toBe(30);
});
