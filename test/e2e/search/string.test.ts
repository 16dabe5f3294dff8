/**
 * string search parameters (FHIR R4 search.html#string) on Patient name, family, given, address and
 * address-city.
 *
 * R4: "This search is insensitive to casing and included combining characters, like accents or other
 * diacritical marks. [...] By default, a field matches a string query if the value of the field
 * equals or starts with the supplied parameter value, after both have been normalized by case and
 * combining characters. [...] The :contains modifier returns results that include the supplied
 * parameter value anywhere within the field being searched. The :exact modifier returns results that
 * match the entire supplied parameter, including casing and accents."
 */
import type { Patient } from '@medplum/fhirtypes';
import { startTestServer, type TestServer } from '../../support/server';
import { Fixtures, matchKeys, sorted } from './support';

const MARK = 'urn:test:search:string';

function p(key: string, fields: Partial<Patient>): Patient {
  return { resourceType: 'Patient', identifier: [{ system: MARK, value: key }], ...fields };
}

const PATIENTS: Record<string, Patient> = {
  jose: p('jose', {
    name: [{ family: 'García', given: ['José', 'Luis'] }],
    address: [{ line: ['Rue de la Paix 2'], city: 'Paris', postalCode: '75002', country: 'France' }],
  }),
  upper: p('upper', { name: [{ family: 'GARCIA', given: ['JOSE'] }], address: [{ city: 'Madrid' }] }),
  josephine: p('josephine', { name: [{ family: 'Baker', given: ['Josephine'] }], address: [{ city: 'Saint Louis' }] }),
  eve: p('eve', { name: [{ family: 'Smith', given: ['Eve'] }] }),
  evelyn: p('evelyn', { name: [{ family: 'Smithson', given: ['Evelyn'] }] }),
  severine: p('severine', { name: [{ family: 'Durand', given: ['Séverine'] }] }),
  doc: p('doc', { name: [{ prefix: ['Dr'], family: 'Who', given: ['John'], text: 'Doctor Who' }] }),
  alias: p('alias', { name: [{ family: 'Nakamura', given: ['Yuki'] }, { use: 'maiden', family: 'Tanaka' }] }),
  textonly: p('textonly', { name: [{ text: 'Madonna' }] }),
  noname: p('noname', { gender: 'unknown' }),
};

const ALL = Object.keys(PATIENTS);
const except = (...keys: string[]): string[] => ALL.filter((k) => !keys.includes(k));

let server: TestServer;
let fx: Fixtures;
beforeAll(async () => {
  server = await startTestServer();
  fx = new Fixtures(server);
  await fx.load(PATIENTS);
});
afterAll(() => server.close());

async function expectPatients(query: string, expected: string[]): Promise<void> {
  expect(await matchKeys(server, fx, `Patient?${query}`)).toEqual(sorted(expected));
}

describe('default: case- and accent-insensitive, equals or starts with', () => {
  test.each<[string, string[]]>([
    ['family=Smith', ['eve', 'evelyn']],
    ['family=smith', ['eve', 'evelyn']],
    ['family=SMITHSON', ['evelyn']],
    ['family=garcia', ['jose', 'upper']], // accent-insensitive: "García" and "GARCIA"
    ['family=garcía', ['jose', 'upper']], // ... in both directions
    ['family=GARC', ['jose', 'upper']], // starts with
    ['family=arcia', []], // starts with, not contains
    ['given=jose', ['jose', 'upper', 'josephine']], // "José", "JOSE", "Josephine" (starts with)
    ['given=josé', ['jose', 'upper', 'josephine']],
    ['given=luis', ['jose']], // any given name, not just the first
    // R4 examples: given=eve includes "Eve", "Evelyn" but not "Severine".
    ['given=eve', ['eve', 'evelyn']],
    ['given=severine', ['severine']], // "Séverine"
    ['given=SÉVERINE', ['severine']],
    ['family=tanaka', ['alias']], // any repetition of name
    ['family=nobody', []],
  ])('Patient?%s', expectPatients);
});

describe('name and address cover every string element of HumanName / Address', () => {
  // R4: "When a string search parameter refers to the types HumanName and Address, the search covers
  // the elements of type string, and does not cover elements such as use and period."
  test.each<[string, string[]]>([
    ['name=garcia', ['jose', 'upper']], // family
    ['name=luis', ['jose']], // given
    ['name=dr', ['doc']], // prefix
    ['name=doctor', ['doc']], // text
    ['name=madonna', ['textonly']], // text only
    ['name=tanaka', ['alias']], // second name
    ['name=maiden', []], // HumanName.use is a code, not covered
    ['address=paris', ['jose']], // city
    ['address=rue de la', ['jose']], // line, with a space
    ['address=75002', ['jose']], // postalCode
    ['address=fran', ['jose']], // country
    ['address=saint', ['josephine']],
    ['address-city=PAR', ['jose']],
    ['address-city=madrid', ['upper']],
    ['address-city=france', []], // country is not the city
  ])('Patient?%s', expectPatients);
});

describe(':exact — the whole value, case- and accent-sensitive', () => {
  test.each<[string, string[]]>([
    ['family:exact=García', ['jose']],
    ['family:exact=Garcia', []], // accent differs
    ['family:exact=garcía', []], // case differs
    ['family:exact=GARCIA', ['upper']],
    ['family:exact=Garc', []], // whole value only
    ['family:exact=Smith', ['eve']], // not "Smithson"
    ['given:exact=José', ['jose']],
    ['given:exact=Luis', ['jose']],
    ['given:exact=jose', []],
    // R4 example: given:exact=Eve "would not include patients with the given name eve or EVE" (or Evelyn).
    ['given:exact=Eve', ['eve']],
    ['name:exact=Tanaka', ['alias']],
    ['address-city:exact=Paris', ['jose']],
    ['address-city:exact=paris', []],
  ])('Patient?%s', expectPatients);
});

describe(':contains — anywhere in the value, case- and accent-insensitive', () => {
  test.each<[string, string[]]>([
    // R4 example: given:contains=eve includes "Eve", "Evelyn", and also "Severine".
    ['given:contains=eve', ['eve', 'evelyn', 'severine']],
    ['family:contains=son', ['evelyn']], // "Smithson"
    ['family:contains=SMITH', ['eve', 'evelyn']],
    ['family:contains=rci', ['jose', 'upper']], // "García" (accent-insensitive), "GARCIA"
    ['name:contains=akam', ['alias']],
    ['address:contains=paix', ['jose']],
    ['address:contains=louis', ['josephine']],
    ['given:contains=xyz', []],
  ])('Patient?%s', expectPatients);
});

describe('several values: comma is OR, repeated parameters are AND', () => {
  test.each<[string, string[]]>([
    ['family=smith,garcia', ['eve', 'evelyn', 'jose', 'upper']],
    ['family=baker,durand,nobody', ['josephine', 'severine']],
    ['given:exact=Eve,Evelyn', ['eve', 'evelyn']],
    ['given=jose&family=garcia', ['jose', 'upper']],
    ['given=jose&family=baker', ['josephine']],
    // Each value is matched on its own: "Evelyn" starts with both "eve" and "evelyn".
    ['given=eve&given=evelyn', ['evelyn']],
    ['family=smith&family=garcia', []],
    ['family=smith,garcia&given=eve', ['eve', 'evelyn']],
    ['family=smith,garcia&_total=accurate', ['eve', 'evelyn', 'jose', 'upper']], // and Bundle.total is 4
    // Escaping (search.html#escaping): "\," is a literal comma, so this is one value that matches nothing.
    ['family=smith\\,garcia', []],
  ])('Patient?%s', expectPatients);
});

describe(':missing', () => {
  // R4: "Searching for gender:missing=true will return all the resources that don't have a value for
  // the gender parameter [...] gender:missing=false will return all the resources that have a value".
  test.each<[string, string[]]>([
    ['name:missing=true', ['noname']],
    ['name:missing=false', except('noname')],
    ['family:missing=true', ['noname', 'textonly']], // a name with text only has no family
    ['family:missing=false', except('noname', 'textonly')],
    ['given:missing=true', ['noname', 'textonly']], // the alias's maiden name has no given, but her other name does
    ['address:missing=true', ['eve', 'evelyn', 'severine', 'doc', 'alias', 'textonly', 'noname']],
    ['address:missing=false', ['jose', 'upper', 'josephine']],
    ['address-city:missing=false&family=garcia', ['jose', 'upper']],
  ])('Patient?%s', expectPatients);
});
