/**
 * Which searches are anchored (search-sql.ts isPatientAnchor, isStringAnchor): those are sent as
 * prepared statements planned without their values, a plan that starts from the anchor's index,
 * so the choice must take exactly the filters that pin a search to one Patient, or name a
 * lookup. And the bound that turns a string prefix into a range (prefixEnd).
 */
import { createRegistry } from '../../../src/search/definitions';
import { SearchParser } from '../../../src/search/parse';
import { byTypeAndId, isPatientAnchor, isStringAnchor, prefixEnd } from '../../../src/store/postgres/search-sql';
import { isResourceType } from '../../../src/validation/schema';
import { compartmentFilter } from '../../../src/auth/policy';
import type { SearchFilter } from '../../../src/store/api';

const parser = new SearchParser(createRegistry(), { lenient: false, baseUrl: 'http://continuum.test', defaultCount: 20, maxCount: 1000, isResourceType });

/** Which of the filters of `type?qs` `pick` takes for an anchor (isPatientAnchor by default). */
function anchors(type: string, qs: string, pick: (f: SearchFilter) => boolean = isPatientAnchor): boolean[] {
  const params: Record<string, string[]> = {};
  for (const [k, v] of new URLSearchParams(qs)) {
    (params[k] ??= []).push(v);
  }
  return parser.parse(type, params).filters.map((f) => pick(f));
}

test.each([
  ['Observation', 'subject=Patient/p1', [true]],
  ['Observation', 'patient=p1', [true]],
  ['Observation', 'patient=Patient/p1', [true]],
  ['Observation', 'code=http://loinc.org|85354-9&subject=Patient/p1', [false, true]],
  ['Observation', 'subject=p1', [false]], // a bare id of any type
  ['Observation', 'subject=Group/g1', [false]],
  ['Observation', 'subject=Patient/p1,Patient/p2', [false]], // two patients
  ['Observation', 'performer=Practitioner/x', [false]],
  ['Observation', 'subject:identifier=urn:mrn|1', [false]],
  ['Observation', 'subject=http://elsewhere.example/fhir/Patient/p1', [false]],
  ['Observation', 'subject:Patient.name=ann', [false]], // a chain
  ['Observation', 'subject:missing=true', [false]],
  ['Patient', 'general-practitioner=Practitioner/x', [false]],
])('%s?%s -> %j', (type, qs, expected) => {
  expect(anchors(type, qs)).toEqual(expected);
});

// Which filters an anchored search checks on the anchor's ids, before reading resources: those
// that read nothing but the type and id. `_lastUpdated` reads resource_current.last_updated.
test.each([
  ['Observation', 'code=http://loinc.org|85354-9&status=final&date=ge2020', [true, true, true]],
  ['Observation', '_id=a,b&subject:Patient.name=ann&value-quantity:missing=true', [true, true, true]],
  ['Observation', 'code:not=x&_has:Provenance:target:agent=Practitioner/p', [true, true]],
  ['Observation', '_lastUpdated=gt2020-01-01', [false]],
  ['Observation', '_lastUpdated:missing=true', [true]], // no column read: every resource has one
])('byTypeAndId: %s?%s -> %j', (type, qs, expected) => {
  expect(anchors(type, qs, byTypeAndId)).toEqual(expected);
});

test('byTypeAndId looks inside NOT, OR and AND', () => {
  const lastUpdated: SearchFilter = { kind: 'date', code: '_lastUpdated', values: [{ prefix: 'gt', start: '2020-01-01T00:00:00Z', end: '2020-01-02T00:00:00Z' }] };
  const token: SearchFilter = { kind: 'token', code: 'code', values: [{ value: 'x' }] };
  expect(byTypeAndId({ kind: 'not', filter: lastUpdated })).toBe(false);
  expect(byTypeAndId({ kind: 'or', filters: [token, lastUpdated] })).toBe(false);
  expect(byTypeAndId({ kind: 'and', filters: [token, { kind: 'not', filter: token }] })).toBe(true);
});

describe('a Patient compartment (Patient/x/Type, and what a patient-scoped token may see)', () => {
  const ref = (code: string, targetId: string, targetType = 'Patient'): SearchFilter => ({ kind: 'reference', code, values: [{ targetType, targetId }] });
  test.each([
    ['Observation (subject or performer)', compartmentFilter('Observation', 'p1'), true],
    ['Condition', compartmentFilter('Condition', 'p1'), true],
    ['Encounter', compartmentFilter('Encounter', 'p1'), true],
    ['two patients joined by OR', { kind: 'or', filters: [ref('subject', 'p1'), ref('performer', 'p2')] }, false],
    ['OR with a non-Patient target', { kind: 'or', filters: [ref('subject', 'p1'), ref('performer', 'x', 'Practitioner')] }, false],
    ['OR with a bare id of any type', { kind: 'or', filters: [ref('subject', 'p1'), { kind: 'reference', code: 'subject', values: [{ targetId: 'p1' }] }] }, false],
    ['an empty OR (nothing allowed)', { kind: 'or', filters: [] }, false],
  ] as [string, SearchFilter, boolean][])('%s -> %s', (_name, filter, expected) => {
    expect(isPatientAnchor(filter)).toBe(expected);
  });
});

describe('string lookups (one value, 3+ characters, matched as a prefix)', () => {
  test.each([
    ['Patient', 'name=smi', [true]],
    ['Patient', 'family=Müller&gender=female', [true, false]],
    ['Patient', 'name=sm', [false]], // too common a prefix to start from
    ['Patient', 'name=Zoë', [true]], // three characters once normalized
    ['Patient', 'name=smith,jones', [false]], // several values
    ['Patient', 'name:exact=Smith', [false]], // compares the value as written: not in the index
    ['Patient', 'name:contains=mit', [false]],
    ['Patient', 'name:missing=true', [false]],
    ['Patient', 'identifier=urn:mrn|123', [false]],
    ['Observation', 'subject=Patient/p1', [false]],
  ])('%s?%s -> %j', (type, qs, expected) => {
    expect(anchors(type, qs, isStringAnchor)).toEqual(expected);
  });
});

describe('prefixEnd: the least string after every string with the prefix (code point order)', () => {
  test.each([
    ['smi', 'smj'],
    ['a', 'b'],
    ['az', 'a{'],
    ['straß', 'straà'], // U+00DF -> U+00E0
    ['x\u{10FFFF}', 'y'], // the last code point cannot grow: the one before it does
    ['\u{1F600}', '\u{1F601}'], // astral characters are one code point, not two halves
    ['a\uD7FF', 'a\uE000'], // past the surrogates (not characters)
    ['\u{10FFFF}\u{10FFFF}', undefined],
    ['', undefined],
  ])('%j -> %j', (prefix, end) => {
    expect(prefixEnd(prefix)).toBe(end);
  });

  test('every string with the prefix sorts below it, in UTF-8 byte order as PostgreSQL compares', () => {
    const bytes = (s: string): Buffer => Buffer.from(s, 'utf8');
    for (const prefix of ['smi', 'a\u{10FFFF}', 'zo\u00EB', '\u{1F600}', 'a\uD7FF']) {
      const end = prefixEnd(prefix) as string;
      for (const tail of ['', 'a', '\u{10FFFF}\u{10FFFF}', '\uFFFF', '\u{1F600}x']) {
        expect(Buffer.compare(bytes(prefix + tail), bytes(end))).toBe(-1);
      }
      expect(Buffer.compare(bytes(prefix), bytes(end))).toBe(-1);
    }
  });
});
