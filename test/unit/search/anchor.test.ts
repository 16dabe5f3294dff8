/**
 * Which searches are anchored on one patient (search-sql.ts isPatientAnchor): those are sent as
 * prepared statements whose generic plan starts from the patient's references, so the choice
 * must take exactly the filters that pin a search to one Patient.
 */
import { createRegistry } from '../../../src/search/definitions';
import { SearchParser } from '../../../src/search/parse';
import { isPatientAnchor } from '../../../src/store/postgres/search-sql';
import { isResourceType } from '../../../src/validation/schema';
import { compartmentFilter } from '../../../src/auth/policy';
import type { SearchFilter } from '../../../src/store/api';

const parser = new SearchParser(createRegistry(), { lenient: false, baseUrl: 'http://continuum.test', defaultCount: 20, maxCount: 1000, isResourceType });

function anchors(type: string, qs: string): boolean[] {
  const params: Record<string, string[]> = {};
  for (const [k, v] of new URLSearchParams(qs)) {
    (params[k] ??= []).push(v);
  }
  return parser.parse(type, params).filters.map(isPatientAnchor);
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
