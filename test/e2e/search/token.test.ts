/**
 * token search parameters (FHIR R4 search.html#token): Identifier (Patient.identifier),
 * CodeableConcept (Observation.code, Condition.code with several codings), boolean (Patient.active)
 * and code (Patient.gender, Observation.status); the modifiers :not, :text, :of-type and :missing.
 *
 * R4 value forms:
 * - "[parameter]=[code]: the value of [code] matches a Coding.code or Identifier.value irrespective of
 *   the value of the system property"
 * - "[parameter]=[system]|[code]: [...] and the value of [system] matches the system property"
 * - "[parameter]=|[code]: [...] and the Coding/Identifier has no system property"
 * - "[parameter]=[system]|: any element where the value of [system] matches the system property"
 */
import type { Condition, Observation, Patient, Resource } from '@medplum/fhirtypes';
import { startTestServer, type TestServer } from '../../support/server';
import { Fixtures, matchKeys, sorted, urn } from './support';

const V2_0203 = 'http://terminology.hl7.org/CodeSystem/v2-0203';
const ACME_MRN = 'http://acme.org/mrn';
const OTHER_MRN = 'http://other.org/mrn';
const SSN = 'http://hl7.org/fhir/sid/us-ssn';
const LOINC = 'http://loinc.org';
const SNOMED = 'http://snomed.info/sct';
const ICD10 = 'http://hl7.org/fhir/sid/icd-10-cm';
const ACME_CODES = 'http://acme.org/codes';

const PATIENTS: Record<string, Patient> = {
  alice: {
    resourceType: 'Patient',
    identifier: [
      { system: ACME_MRN, value: 'A100', type: { coding: [{ system: V2_0203, code: 'MR' }], text: 'Medical record number' } },
      { system: SSN, value: '123-45-6789', type: { coding: [{ system: V2_0203, code: 'SS' }] } },
    ],
    active: true,
    gender: 'female',
  },
  // The same identifier value as alice, in another system.
  bob: { resourceType: 'Patient', identifier: [{ system: OTHER_MRN, value: 'A100' }], active: false, gender: 'male' },
  // The same value again, with no system at all.
  carol: { resourceType: 'Patient', identifier: [{ value: 'A100' }], active: true, gender: 'unknown' },
  dave: {
    resourceType: 'Patient',
    identifier: [{ system: ACME_MRN, value: 'B200', type: { coding: [{ system: V2_0203, code: 'MR' }] } }],
  },
  // No identifier, no active flag.
  eve: { resourceType: 'Patient', name: [{ given: ['Eve'] }], gender: 'male' },
};
const PATIENT_KEYS = Object.keys(PATIENTS);

function obs(key: string, code: Observation['code'], status: Observation['status']): Observation {
  return { resourceType: 'Observation', identifier: [{ system: 'urn:test:search:token', value: key }], status, code, subject: { reference: urn('alice') } };
}

const OBSERVATIONS: Record<string, Observation> = {
  'o-weight': obs('o-weight', { coding: [{ system: LOINC, code: '29463-7', display: 'Body weight' }], text: 'Weight' }, 'final'),
  // Its text repeats the display, as Synthea writes them (stored as one row: extract/token.ts).
  'o-height': obs('o-height', { coding: [{ system: LOINC, code: '8302-2', display: 'Body height' }], text: 'Body height' }, 'preliminary'),
  // The same code 'W1' with no system, and in a local system.
  'o-local': obs('o-local', { coding: [{ code: 'W1' }], text: 'Local weight code' }, 'amended'),
  'o-local-sys': obs('o-local-sys', { coding: [{ system: ACME_CODES, code: 'W1', display: 'Weight (acme)' }] }, 'final'),
};

function cond(key: string, code: Condition['code']): Condition {
  return { resourceType: 'Condition', identifier: [{ system: 'urn:test:search:token', value: key }], subject: { reference: urn('alice') }, ...(code ? { code } : {}) };
}

const CONDITIONS: Record<string, Condition> = {
  'c-diabetes': cond('c-diabetes', {
    coding: [
      { system: SNOMED, code: '44054006', display: 'Diabetes mellitus type 2' },
      { system: ICD10, code: 'E11.9', display: 'Type 2 diabetes mellitus without complications' },
    ],
    text: 'Type 2 diabetes',
  }),
  'c-htn': cond('c-htn', { coding: [{ system: SNOMED, code: '38341003', display: 'Hypertension' }] }),
  'c-nocode': cond('c-nocode', undefined),
};

let server: TestServer;
let fx: Fixtures;
beforeAll(async () => {
  server = await startTestServer();
  fx = new Fixtures(server);
  await fx.load({ ...PATIENTS, ...OBSERVATIONS, ...CONDITIONS } as Record<string, Resource>);
});
afterAll(() => server.close());

function expectSearch(type: string): (query: string, expected: string[]) => Promise<void> {
  return async (query, expected) => {
    expect(await matchKeys(server, fx, `${type}?${query}`)).toEqual(sorted(expected));
  };
}

describe('Identifier: Patient.identifier', () => {
  test.each<[string, string[]]>([
    ['identifier=A100', ['alice', 'bob', 'carol']], // any system
    [`identifier=${ACME_MRN}|A100`, ['alice']],
    [`identifier=${OTHER_MRN}|A100`, ['bob']],
    ['identifier=|A100', ['carol']], // no system
    [`identifier=${ACME_MRN}|`, ['alice', 'dave']], // any value in the system
    [`identifier=${SSN}|123-45-6789`, ['alice']], // the second identifier
    [`identifier=${ACME_MRN}|123-45-6789`, []], // system and value must come from the same Identifier
    [`identifier=${ACME_MRN}|A10`, []], // tokens are not prefix matches
    ['identifier=B200,123-45-6789', ['alice', 'dave']], // OR
    ['identifier=A100&_total=accurate', ['alice', 'bob', 'carol']], // and Bundle.total is 3
    [`identifier=${ACME_MRN}|A100&identifier=${SSN}|123-45-6789`, ['alice']], // AND: both on one patient
    [`identifier=${ACME_MRN}|A100&identifier=${OTHER_MRN}|A100`, []],
    ['identifier=http://nowhere.example|', []],
  ])('Patient?%s', expectSearch('Patient'));
});

describe('boolean (Patient.active) and code (Patient.gender, Observation.status)', () => {
  test.each<[string, string[]]>([
    ['active=true', ['alice', 'carol']],
    ['active=false', ['bob']],
    ['gender=male', ['bob', 'eve']],
    ['gender=female,unknown', ['alice', 'carol']],
    ['gender=other', []],
    ['gender=male&active=false', ['bob']],
  ])('Patient?%s', expectSearch('Patient'));

  test.each<[string, string[]]>([
    ['status=final', ['o-weight', 'o-local-sys']],
    ['status=final,amended', ['o-weight', 'o-local-sys', 'o-local']],
    ['status=cancelled', []],
  ])('Observation?%s', expectSearch('Observation'));
});

describe('Coding / CodeableConcept: Observation.code', () => {
  test.each<[string, string[]]>([
    ['code=29463-7', ['o-weight']],
    [`code=${LOINC}|29463-7`, ['o-weight']],
    [`code=${LOINC}|`, ['o-weight', 'o-height']],
    ['code=W1', ['o-local', 'o-local-sys']], // any system
    ['code=|W1', ['o-local']], // only the coding without a system
    [`code=${ACME_CODES}|W1`, ['o-local-sys']],
    [`code=${LOINC}|W1`, []],
    [`code=${LOINC}|29463-7,${LOINC}|8302-2`, ['o-weight', 'o-height']],
    ['code=29463', []], // no partial codes
  ])('Observation?%s', expectSearch('Observation'));
});

describe('CodeableConcept with several codings: Condition.code', () => {
  test.each<[string, string[]]>([
    ['code=44054006', ['c-diabetes']],
    [`code=${ICD10}|E11.9`, ['c-diabetes']], // "Matches against any coding in the CodeableConcept"
    [`code=${SNOMED}|44054006,${SNOMED}|38341003`, ['c-diabetes', 'c-htn']],
    [`code=${SNOMED}|44054006&code=${ICD10}|E11.9`, ['c-diabetes']], // AND over two codings of one concept
    [`code=${SNOMED}|E11.9`, []], // system and code must come from the same Coding
    [`code=${SNOMED}|`, ['c-diabetes', 'c-htn']],
  ])('Condition?%s', expectSearch('Condition'));
});

describe(':text — a string search on CodeableConcept.text, Coding.display or Identifier.type.text', () => {
  // R4: ":text The search parameter is processed as a string that searches text associated with the
  // code/value - either CodeableConcept.text, Coding.display, or Identifier.type.text. In this case,
  // the search functions as a normal string search" (i.e. case-insensitive, equals or starts with).
  test.each<[string, string[]]>([
    ['code:text=weight', ['o-weight', 'o-local-sys']], // text "Weight"; display "Weight (acme)"; not "Local weight code"
    ['code:text=BODY', ['o-weight', 'o-height']], // displays "Body weight", "Body height"
    ['code:text=body w', ['o-weight']],
    ['code:text=body h', ['o-height']],
    ['code:text=local', ['o-local']], // CodeableConcept.text
    ['code:text=29463', []], // codes are not text
  ])('Observation?%s', expectSearch('Observation'));

  test.each<[string, string[]]>([
    ['code:text=type 2', ['c-diabetes']], // text, and the ICD-10 display
    ['code:text=diabetes', ['c-diabetes']], // SNOMED display
    ['code:text=hyper', ['c-htn']],
    ['code:text=hyper,diab', ['c-diabetes', 'c-htn']],
  ])('Condition?%s', expectSearch('Condition'));

  test.each<[string, string[]]>([['identifier:text=medical', ['alice']]])('Patient?%s', expectSearch('Patient'));
});

describe(':not — resources without a matching value, including those with no value', () => {
  // R4: ":not Reverse the code matching [...]: return all resources that do not have a matching item.
  // Note that this includes resources that have no value for the parameter - e.g. ?gender:not=male
  // includes all patients that do not have gender = male, including patients that do not have a
  // gender at all".
  test.each<[string, string[]]>([
    ['gender:not=male', ['alice', 'carol', 'dave']], // dave has no gender
    ['active:not=true', ['bob', 'dave', 'eve']], // dave and eve have no active flag
    [`identifier:not=${ACME_MRN}|A100`, ['bob', 'carol', 'dave', 'eve']],
    // R4 (Composition?section:not): "the negation applies to the set, not each individual entry" -
    // alice has another identifier that is not A100, but is still excluded.
    ['identifier:not=A100', ['dave', 'eve']],
  ])('Patient?%s', expectSearch('Patient'));

  test.each<[string, string[]]>([
    ['status:not=final', ['o-height', 'o-local']],
    [`code:not=${LOINC}|29463-7`, ['o-height', 'o-local', 'o-local-sys']],
  ])('Observation?%s', expectSearch('Observation'));

  test.each<[string, string[]]>([
    [`code:not=${SNOMED}|44054006`, ['c-htn', 'c-nocode']],
    // Negating the ICD-10 code excludes the concept, although its SNOMED coding does not match.
    [`code:not=${ICD10}|E11.9`, ['c-htn', 'c-nocode']],
  ])('Condition?%s', expectSearch('Condition'));
});

describe(':of-type — Identifier.type system|code, then the value', () => {
  // R4: ":of-type The search parameter has the format system|code|value, where the system and code
  // refer to a Identifier.type.coding.system and .code, and match if any of the type codes match. All
  // 3 parts must be present"
  test.each<[string, string[]]>([
    [`identifier:of-type=${V2_0203}|MR|A100`, ['alice']], // not bob or carol: their A100 has no type
    [`identifier:of-type=${V2_0203}|MR|B200`, ['dave']],
    [`identifier:of-type=${V2_0203}|SS|123-45-6789`, ['alice']],
    // Type and value must belong to the same Identifier: alice's MR is A100, not 123-45-6789.
    [`identifier:of-type=${V2_0203}|MR|123-45-6789`, []],
    [`identifier:of-type=${V2_0203}|SS|A100`, []],
    [`identifier:of-type=http://other.example/types|MR|A100`, []],
  ])('Patient?%s', expectSearch('Patient'));
});

describe(':missing', () => {
  test.each<[string, string[]]>([
    ['identifier:missing=true', ['eve']],
    ['identifier:missing=false', ['alice', 'bob', 'carol', 'dave']],
    ['active:missing=true', ['dave', 'eve']],
    ['active:missing=false', ['alice', 'bob', 'carol']],
    ['gender:missing=true', ['dave']],
    ['gender:missing=false', PATIENT_KEYS.filter((k) => k !== 'dave')],
  ])('Patient?%s', expectSearch('Patient'));

  test.each<[string, string[]]>([
    ['code:missing=true', ['c-nocode']],
    ['code:missing=false', ['c-diabetes', 'c-htn']],
  ])('Condition?%s', expectSearch('Condition'));
});
