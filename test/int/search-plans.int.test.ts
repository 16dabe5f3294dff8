/**
 * The common searches use indexes on a store of realistic size: 10,000 Patients and 200,000
 * Observations (index rows generated in SQL, which is much faster than loading resources), read
 * through EXPLAIN. Runs on the store under test (PGlite runs the same planner as the server).
 */
import type { Driver } from '../../src/store/postgres/driver';
import { PgStore } from '../../src/store/postgres/store';
import { createRegistry } from '../../src/search/definitions';
import { SearchParser } from '../../src/search/parse';
import { isResourceType } from '../../src/validation/schema';
import { compartmentFilter } from '../../src/auth/policy';
import type { SearchFilter } from '../../src/store/api';
import { migratedDriver } from '../support/server';

jest.setTimeout(300_000);

const PATIENTS = 10_000;
const OBSERVATIONS = 200_000;

let driver: Driver;
let store: PgStore;
let drop: (() => Promise<void>) | undefined;
const parser = new SearchParser(createRegistry(), { lenient: false, baseUrl: 'http://continuum.test', defaultCount: 20, maxCount: 1000, isResourceType });

const DATA = `
INSERT INTO resource_current (resource_type, id, version_id, last_updated, deleted, content)
SELECT 'Patient', 'p' || g, 1, timestamptz '2020-01-01' + g * interval '1 minute', false, '{"resourceType":"Patient","id":"p' || g || '"}'
FROM generate_series(1, ${PATIENTS}) g;
INSERT INTO search_string (resource_type, id, code, value, normalized)
SELECT 'Patient', 'p' || g, c, 'Name' || g, 'name' || g FROM generate_series(1, ${PATIENTS}) g, unnest(ARRAY['name', 'family']) c;
INSERT INTO search_token (resource_type, id, code, system, value)
SELECT 'Patient', 'p' || g, 'identifier', 'urn:mrn', 'mrn' || g FROM generate_series(1, ${PATIENTS}) g;
INSERT INTO search_token (resource_type, id, code, system, value)
SELECT 'Patient', 'p' || g, 'gender', NULL, CASE WHEN g % 2 = 0 THEN 'female' ELSE 'male' END FROM generate_series(1, ${PATIENTS}) g;
INSERT INTO search_date (resource_type, id, code, start_at, end_at)
SELECT 'Patient', 'p' || g, 'birthdate', d, d + interval '1 day'
FROM (SELECT g, timestamptz '1930-01-01' + (g % 25000) * interval '1 day' AS d FROM generate_series(1, ${PATIENTS}) g) x;

INSERT INTO resource_current (resource_type, id, version_id, last_updated, deleted, content)
SELECT 'Observation', 'o' || g, 1, timestamptz '2021-01-01' + g * interval '1 minute', false, '{"resourceType":"Observation","id":"o' || g || '"}'
FROM generate_series(1, ${OBSERVATIONS}) g;
INSERT INTO search_reference (resource_type, id, code, target_type, target_id)
SELECT 'Observation', 'o' || g, c, 'Patient', 'p' || (g % ${PATIENTS} + 1) FROM generate_series(1, ${OBSERVATIONS}) g, unnest(ARRAY['subject', 'patient']) c;
INSERT INTO search_token (resource_type, id, code, system, value)
SELECT 'Observation', 'o' || g, 'code', 'http://loinc.org', (ARRAY['85354-9', '29463-7', '8302-2', '2339-0', '4548-4'])[g % 5 + 1]
FROM generate_series(1, ${OBSERVATIONS}) g;
INSERT INTO search_date (resource_type, id, code, start_at, end_at)
SELECT 'Observation', 'o' || g, c, t, t + interval '1 second'
FROM (SELECT g, timestamptz '2019-01-01' + g * interval '7 minutes' AS t FROM generate_series(1, ${OBSERVATIONS}) g) x, unnest(ARRAY['date']) c;
ANALYZE;
`;

beforeAll(async () => {
  ({ driver, drop } = await migratedDriver());
  await driver.exec(DATA);
  store = new PgStore(driver);
});

afterAll(async () => {
  await store?.close();
  await drop?.();
});

function query(type: string, qs: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [k, v] of new URLSearchParams(qs)) {
    (out[k] ??= []).push(v);
  }
  return out;
}

async function planOf(type: string, qs: string, generic = false): Promise<string> {
  const parsed = parser.parse(type, query(type, qs));
  return store.explain({ resourceType: type, filters: parsed.filters, count: parsed.count, sort: parsed.sort }, { generic });
}

describe('query plans on 10,000 Patients and 200,000 Observations', () => {
  test.each([
    ['token', 'Patient', 'identifier=urn:mrn|mrn5000'],
    ['string', 'Patient', 'name=name5000'],
    ['reference', 'Observation', 'subject=Patient/p42'],
    ['date (one day)', 'Observation', 'date=2019-06-01'],
    ['_lastUpdated (the newest writes)', 'Observation', '_lastUpdated=gt2021-05-10'],
    ['chained one level', 'Observation', 'subject:Patient.name=name42'],
    ['reference + token, sorted by date', 'Observation', 'subject=Patient/p42&code=http://loinc.org|85354-9&_sort=-date'],
  ])('%s: %s?%s uses indexes, no sequential scan', async (_kind, type, qs) => {
    const plan = await planOf(type, qs);
    if (process.env.SHOW_PLANS) {
      console.log(`${type}?${qs}\n${plan}`);
    }
    expect({ qs, plan }).toEqual({ qs, plan: expect.not.stringMatching(/Seq Scan on (search_\w+|resource_current)/) });
    expect(plan).toMatch(/Index (Only )?Scan|Bitmap Index Scan/);
  });

  // Searches pinned to one patient are kept prepared, so PostgreSQL may reuse a plan made without
  // the values: it must still start from that patient's references, whatever else is asked.
  test.each([
    ['reference + token, sorted by date', 'Observation', 'subject=Patient/p42&code=http://loinc.org|85354-9&_sort=-date'],
    ['reference + a common token', 'Observation', 'patient=Patient/p42&code=http://loinc.org|29463-7'],
    ['a bare patient id + a token', 'Observation', 'patient=p42&code=http://loinc.org|29463-7'],
    ['reference + a date range, sorted by _lastUpdated', 'Observation', 'subject=Patient/p42&date=ge2019-01-01&_sort=-_lastUpdated'],
  ])('generic plan of an anchored search (%s) starts from the anchor', async (_kind, type, qs) => {
    const plan = await planOf(type, qs, true);
    if (process.env.SHOW_PLANS) {
      console.log(`generic ${type}?${qs}\n${plan}`);
    }
    expect({ qs, plan }).toEqual({ qs, plan: expect.not.stringMatching(/Seq Scan on (search_\w+|resource_current)/) });
    // The anchor's references are looked up, each resource read by key, the other filters checked
    // per resource through their owner index (never looked up by value).
    expect(plan).toMatch(/Index (Only )?Scan using search_reference_lookup on search_reference/);
    expect(plan).toMatch(/Index Scan using resource_current_pkey on resource_current/);
    expect(plan).not.toMatch(/using (search_token_lookup|search_date_lookup|resource_current_type_updated)/);
  });

  // The other filters are checked on the anchor's ids before any resource is read (anchorSql
  // `inner`): of a patient's observations only those of the code are then read by key.
  test.each([
    ['a token', 'subject=Patient/p42&code=http://loinc.org|85354-9&_sort=-date', /on search_token/],
    ['a date range', 'subject=Patient/p42&date=ge2019-01-01', /on search_date/],
  ])('generic plan of an anchored search checks %s before reading resources', async (_kind, qs, check) => {
    const plan = await planOf('Observation', qs, true);
    const checkAt = plan.search(check);
    const readAt = plan.search(/using resource_current_pkey on resource_current/);
    expect({ plan, checkAt: checkAt >= 0, readAt: readAt >= 0 }).toEqual({ plan, checkAt: true, readAt: true });
    // EXPLAIN prints a nested loop's outer side first: the check feeds the reads.
    expect({ plan, checkFirst: checkAt < readAt }).toEqual({ plan, checkFirst: true });
  });

  // A name lookup (one value, 3+ characters) is anchored too: its range over the index's prefix
  // keeps index bounds in a plan made without the value (LIKE 'x%' would not), so the embedded
  // store plans it once; planning took as long as running it.
  test.each([
    ['a one-hit name', 'Patient', 'name=name5000'],
    ['a family prefix with a token', 'Patient', 'family=name50&gender=female'],
    ['a name sorted by birthdate', 'Patient', 'name=name42&_sort=-birthdate'],
    ['a name prefix, five to a page', 'Patient', 'name=name1&_count=5'],
  ])('generic plan of a string lookup (%s) starts from the string index', async (_kind, type, qs) => {
    const plan = await planOf(type, qs, true);
    if (process.env.SHOW_PLANS) {
      console.log(`generic ${type}?${qs}\n${plan}`);
    }
    expect({ qs, plan }).toEqual({ qs, plan: expect.not.stringMatching(/Seq Scan on (search_\w+|resource_current)/) });
    // Index bounds from the parameters: both ends of the prefix's range are index conditions.
    expect(plan).toMatch(/Index (Only )?Scan using search_string_lookup on search_string[^\n]*\n\s*Index Cond: [^\n]*~>=~ \$\d+[^\n]*~<~ \$\d+/);
    expect(plan).toMatch(/Index Scan using resource_current_pkey on resource_current/);
    expect(plan).not.toMatch(/using (search_token_lookup|search_date_lookup|resource_current_type_updated)/);
  });

  // Patient/x/Observation, and every search of a patient-scoped token, adds the compartment as an
  // OR of references (subject or performer): it took ~2 s per search on this store before it was
  // anchored (sorted by _lastUpdated, PostgreSQL walked every Observation to test the OR).
  test.each([
    ['with a token', 'code=http://loinc.org|29463-7'],
    ['sorted by date', 'code=http://loinc.org|85354-9&_sort=-date'],
    ['alone', ''],
  ])('a Patient compartment search (%s) starts from the patient, no scan', async (_kind, qs) => {
    const parsed = parser.parse('Observation', query('Observation', qs));
    const filters = [...parsed.filters, compartmentFilter('Observation', 'p42')];
    const plan = await store.explain({ resourceType: 'Observation', filters, count: parsed.count, sort: parsed.sort });
    if (process.env.SHOW_PLANS) {
      console.log(`compartment Observation?${qs}\n${plan}`);
    }
    expect(plan).not.toMatch(/Seq Scan on (search_\w+|resource_current)/);
    expect(plan).toMatch(/Index (Only )?Scan using search_reference_lookup on search_reference/);
    expect(plan).not.toMatch(/using resource_current_type_updated/);
  });

  test('a patient-scoped grant with a restriction (an AND holding the compartment) starts from the patient too', async () => {
    const restriction = parser.parse('Observation', query('Observation', 'code=http://loinc.org|29463-7')).filters[0];
    const rule: SearchFilter = { kind: 'and', filters: [restriction, compartmentFilter('Observation', 'p42')] };
    const plan = await store.explain({ resourceType: 'Observation', filters: [rule], count: 20 });
    expect(plan).not.toMatch(/Seq Scan on (search_\w+|resource_current)/);
    expect(plan).toMatch(/Index (Only )?Scan using search_reference_lookup on search_reference/);
    expect(plan).not.toMatch(/using resource_current_type_updated/);
  });

  test('generic plan of a Patient compartment search (subject or performer) starts from the anchor', async () => {
    const parsed = parser.parse('Observation', query('Observation', 'code=http://loinc.org|29463-7'));
    const filters = [...parsed.filters, compartmentFilter('Observation', 'p42')];
    const plan = await store.explain({ resourceType: 'Observation', filters, count: parsed.count, sort: parsed.sort }, { generic: true });
    expect(plan).not.toMatch(/Seq Scan on (search_\w+|resource_current)/);
    expect(plan).toMatch(/Index (Only )?Scan using search_reference_lookup on search_reference/);
    expect(plan).toMatch(/Index Scan using resource_current_pkey on resource_current/);
    expect(plan).not.toMatch(/using (search_token_lookup|resource_current_type_updated)/);
  });

  test('a broad search (5,000 matches) finds them through the index, not by scanning every resource', async () => {
    const plan = await planOf('Patient', 'gender=female&_count=20');
    expect(plan).toMatch(/Limit/);
    expect(plan).not.toMatch(/Seq Scan on resource_current/);
  });
});

test('ANALYZE keeps no statistics of resource JSON or composite components (migration 013), and keeps those of searched columns', async () => {
  await driver.exec(`INSERT INTO search_composite (resource_type, id, code, components)
    SELECT 'Observation', 'o' || g, 'code-value-quantity', jsonb_build_array(jsonb_build_object('value', '85354-9'), jsonb_build_object('value', g)) FROM generate_series(1, 100) g;
    ANALYZE search_composite;`);
  const rows = await driver.query<{ tablename: string; attname: string }>(
    `SELECT tablename, attname FROM pg_stats WHERE schemaname = current_schema() AND tablename IN ('resource_current', 'search_composite') ORDER BY 1, 2`,
  );
  const columns = rows.map((r) => `${r.tablename}.${r.attname}`);
  expect(columns).toEqual(expect.arrayContaining(['resource_current.resource_type', 'resource_current.id', 'search_composite.code']));
  expect(columns).not.toContain('resource_current.content');
  expect(columns).not.toContain('search_composite.components');
});
