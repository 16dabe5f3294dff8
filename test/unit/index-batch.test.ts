/**
 * IndexBatch (src/store/postgres/index-writer.ts) leaves out the rows search never reads: `_id`
 * and `_lastUpdated` are answered from resource_current's own columns (search-sql.ts).
 */
import { IndexBatch } from '../../src/store/postgres/index-writer';
import type { IndexRows } from '../../src/search/extract';

const empty: IndexRows = { string: [], token: [], reference: [], date: [], number: [], quantity: [], uri: [], composite: [] };

test('_id token rows and _lastUpdated date rows are not written; other rows are, in table order', () => {
  const batch = new IndexBatch();
  batch.add('Patient', 'p1', {
    ...empty,
    token: [
      { code: '_id', system: null, value: 'p1', text: null, typeSystem: null, typeCode: null },
      { code: 'gender', system: 'http://hl7.org/fhir/administrative-gender', value: 'female', text: null, typeSystem: null, typeCode: null },
    ],
    date: [
      { code: '_lastUpdated', start: '2026-12-03T04:00:00.000Z', end: '2026-12-03T04:00:00.001Z' },
      { code: 'birthdate', start: '1970-01-01T00:00:00.000Z', end: '1970-01-02T00:00:00.000Z' },
    ],
  });
  expect(JSON.parse(batch.json() as string)).toEqual({
    token: [['Patient', 'p1', 'gender', 'http://hl7.org/fhir/administrative-gender', 'female', null, null, null]],
    date: [['Patient', 'p1', 'birthdate', '1970-01-01T00:00:00.000Z', '1970-01-02T00:00:00.000Z']],
  });
});

test('a resource with only those rows writes no index document', () => {
  const batch = new IndexBatch();
  batch.add('Patient', 'p2', {
    ...empty,
    token: [{ code: '_id', system: null, value: 'p2', text: null, typeSystem: null, typeCode: null }],
    date: [{ code: '_lastUpdated', start: '2026-12-03T04:00:00.000Z', end: '2026-12-03T04:00:00.001Z' }],
  });
  expect(batch.json()).toBeNull();
});

test('composite components are stored without their type tag and null fields; open ends as text', () => {
  const batch = new IndexBatch();
  batch.add('Observation', 'o1', {
    ...empty,
    composite: [
      {
        code: 'code-value-quantity',
        components: [
          { type: 'token', system: 'http://loinc.org', value: '8302-2', text: 'body height', typeSystem: null, typeCode: null },
          { type: 'quantity', value: null, low: 100, high: Infinity, system: null, unitCode: 'cm', unit: null, canonicalValue: null, canonicalUnit: null },
        ],
      },
    ],
  });
  expect(JSON.parse(batch.json() as string)).toEqual({
    composite: [['Observation', 'o1', 'code-value-quantity', [{ system: 'http://loinc.org', value: '8302-2', text: 'body height' }, { low: 100, high: 'Infinity', unitCode: 'cm' }]]],
  });
});
