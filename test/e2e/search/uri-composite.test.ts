/**
 * uri search parameters (FHIR R4 search.html#uri) on ValueSet.url / CodeSystem.url, and composite
 * parameters (search.html#composite) on Observation.
 *
 * uri: "By default, matches are precise (e.g. case, accent, and escape) sensitive, and the entire URI
 * must match. The modifier :above or :below can be used to indicate that partial matching is used";
 * "url:below=http://acme.org/fhir/ [...] will return any value sets that have a URL that starts with
 * http://acme.org/fhir/"; "url:above=http://acme.org/fhir/ValueSet/123/_history/5 [...] search for any
 * value set above a given specific URL".
 *
 * composite: "a resource may also specify composite parameters that take sequences of single values
 * that match other defined parameters as an argument [...] formed by joining the single values with a
 * $". The components are evaluated on each repetition the composite's expression selects
 * (component-code-value-quantity: Observation.component, code and value.as(Quantity)), so both
 * components must match within the SAME component - that is what composites are for: "doesn't allow a
 * search based on a pair of values, such as all observations with a sodium value >150 mmol/L".
 */
import type { CodeSystem, Observation, ObservationComponent, Resource, ValueSet } from '@medplum/fhirtypes';
import { startTestServer, type TestServer } from '../../support/server';
import { Fixtures, matchKeys, sorted } from './support';

const LOINC = 'http://loinc.org';
const SNOMED = 'http://snomed.info/sct';
const UCUM = 'http://unitsofmeasure.org';

function vs(key: string, url?: string): ValueSet {
  return { resourceType: 'ValueSet', identifier: [{ system: 'urn:test:search:uri', value: key }], status: 'active', ...(url ? { url } : {}) };
}

const VALUE_SETS: Record<string, ValueSet> = {
  'vs-123': vs('vs-123', 'http://acme.org/fhir/ValueSet/123'),
  'vs-124': vs('vs-124', 'http://acme.org/fhir/ValueSet/124'),
  'vs-upper': vs('vs-upper', 'http://acme.org/fhir/ValueSet/ABC'),
  'vs-root': vs('vs-root', 'http://acme.org/fhir'),
  'vs-other': vs('vs-other', 'http://other.org/fhir/ValueSet/123'),
  'vs-oid': vs('vs-oid', 'urn:oid:1.2.3.4.5'),
  'vs-nourl': vs('vs-nourl'),
};

const CODE_SYSTEMS: Record<string, CodeSystem> = {
  'cs-acme': { resourceType: 'CodeSystem', url: 'http://acme.org/fhir/CodeSystem/x', status: 'active', content: 'not-present' },
};

const mmHg = (value: number): { valueQuantity: Observation['valueQuantity'] } => ({ valueQuantity: { value, unit: 'mmHg', system: UCUM, code: 'mm[Hg]' } });
const component = (code: string, value: number): ObservationComponent => ({ code: { coding: [{ system: LOINC, code }] }, ...mmHg(value) });
const SYSTOLIC = '8480-6';
const DIASTOLIC = '8462-4';

function obs(key: string, fields: Partial<Observation>): Observation {
  return { resourceType: 'Observation', identifier: [{ system: 'urn:test:search:composite', value: key }], status: 'final', code: { text: key }, ...fields };
}
const bp = (key: string, systolic: number, diastolic: number): Observation =>
  obs(key, { code: { coding: [{ system: LOINC, code: '85354-9' }] }, component: [component(SYSTOLIC, systolic), component(DIASTOLIC, diastolic)] });

const OBSERVATIONS: Record<string, Observation> = {
  'bp-high': bp('bp-high', 150, 90), // systolic 150, diastolic 90
  'bp-normal': bp('bp-normal', 115, 75),
  'bp-swapped': bp('bp-swapped', 90, 150), // diastolic above 100
  'sys-130': obs('sys-130', { code: { coding: [{ system: LOINC, code: SYSTOLIC }] }, ...mmHg(130) }),
  'sys-95': obs('sys-95', { code: { coding: [{ system: LOINC, code: SYSTOLIC }] }, ...mmHg(95) }),
  'dia-120': obs('dia-120', { code: { coding: [{ system: LOINC, code: DIASTOLIC }] }, ...mmHg(120) }),
  // Two codings for one concept; the value pairs with either.
  'sys-140-2codes': obs('sys-140-2codes', { code: { coding: [{ system: LOINC, code: SYSTOLIC }, { system: SNOMED, code: '271649006' }] }, ...mmHg(140) }),
};

let server: TestServer;
let fx: Fixtures;
beforeAll(async () => {
  server = await startTestServer();
  fx = new Fixtures(server);
  await fx.load({ ...VALUE_SETS, ...CODE_SYSTEMS, ...OBSERVATIONS } as Record<string, Resource>);
});
afterAll(() => server.close());

function expectSearch(type: string): (query: string, expected: string[]) => Promise<void> {
  return async (query, expected) => {
    expect(await matchKeys(server, fx, `${type}?${query}`)).toEqual(sorted(expected));
  };
}

describe('uri: ValueSet?url', () => {
  test.each<[string, string[]]>([
    ['url=http://acme.org/fhir/ValueSet/123', ['vs-123']],
    ['url=http://acme.org/fhir/ValueSet/12', []], // the entire URI must match
    ['url=http://acme.org/fhir/valueset/123', []], // case-sensitive
    ['url=http://acme.org/fhir/ValueSet/abc', []],
    ['url=http://acme.org/fhir/ValueSet/ABC', ['vs-upper']],
    ['url=urn:oid:1.2.3.4.5', ['vs-oid']], // R4 example
    ['url=http://acme.org/fhir/ValueSet/123,urn:oid:1.2.3.4.5', ['vs-123', 'vs-oid']],
    // :below - the stored URL starts with the value.
    ['url:below=http://acme.org/fhir/ValueSet', ['vs-123', 'vs-124', 'vs-upper']],
    ['url:below=http://acme.org/fhir', ['vs-123', 'vs-124', 'vs-upper', 'vs-root']],
    ['url:below=http://other.org', ['vs-other']],
    // :above - the stored URL is the value or one of its ancestors (R4 example value).
    ['url:above=http://acme.org/fhir/ValueSet/123/_history/5', ['vs-123', 'vs-root']],
    ['url:above=http://acme.org/fhir/ValueSet/124', ['vs-124', 'vs-root']],
    ['url:missing=true', ['vs-nourl']],
    ['url:missing=false', Object.keys(VALUE_SETS).filter((k) => k !== 'vs-nourl')],
  ])('ValueSet?%s', expectSearch('ValueSet'));

  test.each<[string, string[]]>([
    ['url:below=http://acme.org/fhir', ['cs-acme']], // a type search never returns the ValueSets
    ['url=http://acme.org/fhir/CodeSystem/x', ['cs-acme']],
  ])('CodeSystem?%s', expectSearch('CodeSystem'));
});

describe('composite: code-value-quantity on Observation.code and Observation.value', () => {
  test.each<[string, string[]]>([
    [`code-value-quantity=${LOINC}|${SYSTOLIC}$gt100`, ['sys-130', 'sys-140-2codes']],
    [`code-value-quantity=${LOINC}|${SYSTOLIC}$lt100`, ['sys-95']],
    [`code-value-quantity=${SYSTOLIC}$130`, ['sys-130']], // a code without system; a value without unit
    [`code-value-quantity=${LOINC}|${SYSTOLIC}$gt100|${UCUM}|mm[Hg]`, ['sys-130', 'sys-140-2codes']],
    [`code-value-quantity=${LOINC}|${SYSTOLIC}$gt100|${UCUM}|kg`, []],
    [`code-value-quantity=${SNOMED}|271649006$gt100`, ['sys-140-2codes']],
    // dia-120 has a value above 100, but not with the systolic code.
    [`code-value-quantity=${LOINC}|${DIASTOLIC}$gt100`, ['dia-120']],
    // OR of two composite values.
    [`code-value-quantity=${LOINC}|${SYSTOLIC}$gt135,${LOINC}|${DIASTOLIC}$gt100`, ['sys-140-2codes', 'dia-120']],
    // The blood-pressure panels have their values in components, not in Observation.value.
    [`code-value-quantity=${LOINC}|85354-9$gt0`, []],
  ])('Observation?%s', expectSearch('Observation'));
});

describe('composite: component-code-value-quantity matches code and value in the same component', () => {
  test.each<[string, string[]]>([
    [`component-code-value-quantity=${LOINC}|${SYSTOLIC}$gt140`, ['bp-high']],
    // bp-high has diastolic 90 and a (systolic) component of 150: no single component is
    // "diastolic > 100", so it must NOT match. Only bp-swapped has one.
    [`component-code-value-quantity=${LOINC}|${DIASTOLIC}$gt100`, ['bp-swapped']],
    [`component-code-value-quantity=${LOINC}|${DIASTOLIC}$lt80`, ['bp-normal']],
    [`component-code-value-quantity=${LOINC}|${SYSTOLIC}$lt100`, ['bp-swapped']],
    // R4 example: "component-code-value-quantity=http://loinc.org|8480-6$lt60 — systolic blood pressure < 60".
    [`component-code-value-quantity=${LOINC}|${SYSTOLIC}$lt60`, []],
    [`component-code-value-quantity=${LOINC}|${SYSTOLIC}$150|${UCUM}|mm[Hg]`, ['bp-high']],
    // AND of two composites: each may match a different component.
    [`component-code-value-quantity=${LOINC}|${SYSTOLIC}$gt140&component-code-value-quantity=${LOINC}|${DIASTOLIC}$ge90`, ['bp-high']],
    // Contrast: separate parameters are matched independently, so they cannot tie a value to a code.
    [`component-code=${LOINC}|${DIASTOLIC}&component-value-quantity=gt120`, ['bp-high', 'bp-swapped']],
    [`component-code-value-quantity=${LOINC}|${DIASTOLIC}$gt120`, ['bp-swapped']],
    // The Observation-level systolic readings (sys-130, ...) have no components.
    [`component-code-value-quantity=${LOINC}|${SYSTOLIC}$gt100`, ['bp-high', 'bp-normal']],
  ])('Observation?%s', expectSearch('Observation'));

  test.each<[string, string[]]>([
    // combo-: Observation.code/value and each component.
    [`combo-code-value-quantity=${LOINC}|${SYSTOLIC}$gt135`, ['bp-high', 'sys-140-2codes']],
    [`combo-code-value-quantity=${LOINC}|${DIASTOLIC}$gt100`, ['bp-swapped', 'dia-120']],
  ])('Observation?%s', expectSearch('Observation'));
});
