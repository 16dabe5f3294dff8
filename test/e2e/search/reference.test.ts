/**
 * reference search parameters (FHIR R4 search.html#reference) on Observation.subject: relative
 * `Type/id`, bare id, absolute URLs (on this server's base and on another server), the `:[type]`
 * and `:identifier` modifiers, the type-limited `patient` parameter, and `:missing`.
 *
 * R4: "[parameter]=[id] the logical [id] of a resource using a local reference (i.e. a relative
 * reference); [parameter]=[type]/[id] [...]; [parameter]=[url] where the [url] is an absolute URL".
 * "Note: A relative reference resolving to the same value as a specified absolute URL, or vice versa,
 * qualifies as a match. [...] If the server base address is http://example.org/fhir, then the full URL
 * for that reference is http://example.org/fhir/Patient/123, which means that the search term also
 * matches patient references like this: <reference value="http://example.org/fhir/Patient/123"/>.
 * In addition, searching for reference=http://example.org/fhir/Patient/123 will also match both
 * references."
 */
import type { Group, Observation, Patient } from '@medplum/fhirtypes';
import { BASE_URL, startTestServer, type TestServer } from '../../support/server';
import { Fixtures, matchKeys, sorted, urn } from './support';

const MRN = 'http://acme.org/mrn';
const ELSEWHERE = 'http://other.example.org/fhir';

function obs(key: string, subject?: Observation['subject']): Observation {
  return {
    resourceType: 'Observation',
    identifier: [{ system: 'urn:test:search:reference', value: key }],
    status: 'final',
    code: { coding: [{ system: 'http://loinc.org', code: '29463-7' }] },
    ...(subject ? { subject } : {}),
  };
}

let server: TestServer;
let fx: Fixtures;
let ALL: string[];
beforeAll(async () => {
  server = await startTestServer();
  fx = new Fixtures(server);
  const p123: Patient = { resourceType: 'Patient', id: '123', identifier: [{ system: MRN, value: 'MRN-123' }] };
  const group: Group = { resourceType: 'Group', id: 'g1', type: 'person', actual: true };
  await fx.load({
    p123,
    g1: group,
    // Created with a server-assigned id, referenced through its urn:uuid in the same transaction.
    'p-urn': { resourceType: 'Patient', identifier: [{ system: MRN, value: 'MRN-7' }] },
    'o-urn': obs('o-urn', { reference: urn('p-urn') }),
    // A literal reference that also carries the target's identifier.
    'o-ident-ref': obs('o-ident-ref', { reference: urn('p-urn'), identifier: { system: MRN, value: 'MRN-7' } }),
  });
  await fx.load({
    'o-rel': obs('o-rel', { reference: 'Patient/123' }),
    'o-ext': obs('o-ext', { reference: `${ELSEWHERE}/Patient/123` }), // the same id, on another server
    'o-group': obs('o-group', { reference: 'Group/g1' }),
    // A logical reference: an identifier and no literal reference.
    'o-ident': obs('o-ident', { identifier: { system: MRN, value: 'MRN-9' }, display: 'someone' }),
    'o-none': obs('o-none'),
  });
  // A plain create keeps an absolute reference to this server as written (a transaction would make it relative).
  await fx.create('o-abs', obs('o-abs', { reference: `${BASE_URL}/Patient/123` }));
  ALL = ['o-urn', 'o-ident-ref', 'o-rel', 'o-ext', 'o-group', 'o-ident', 'o-none', 'o-abs'];
});
afterAll(() => server.close());

async function expectObservations(query: string, expected: string[]): Promise<void> {
  expect(await matchKeys(server, fx, `Observation?${query}`)).toEqual(sorted(expected));
}

describe('relative, bare id and absolute forms', () => {
  test.each<[string, string[]]>([
    ['subject=Patient/123', ['o-rel', 'o-abs']], // the absolute reference on this base is the same resource
    ['subject=123', ['o-rel', 'o-abs']], // bare id: local references only, so not o-ext
    [`subject=${BASE_URL}/Patient/123`, ['o-rel', 'o-abs']], // "will also match both references"
    [`subject=${ELSEWHERE}/Patient/123`, ['o-ext']], // another server's Patient/123 is another resource
    ['subject=Patient/{p-urn}', ['o-urn', 'o-ident-ref']], // urn:uuid rewritten to Patient/<id> at create
    ['subject={p-urn}', ['o-urn', 'o-ident-ref']],
    ['subject=Group/g1', ['o-group']],
    ['subject=g1', ['o-group']],
    [`subject=${BASE_URL}/Group/g1`, ['o-group']],
    ['subject=Group/123', []], // the type is part of the reference
    ['subject=Patient/999', []], // unknown target: no match, not an error (search.html#errors)
    ['subject=Patient/123,Group/g1', ['o-rel', 'o-abs', 'o-group']], // OR
    ['subject=Patient/123&subject=Patient/{p-urn}', []], // AND: one subject each
  ])('Observation?%s', expectObservations);
});

describe(':[type] modifier and the type-limited patient parameter', () => {
  // R4: "GET [base]/Observation?subject:Patient=23 — This has the same effect as the previous search
  // [subject=Patient/23]". "there is another search parameter patient, which also refers to
  // Observation.subject, but is limited to only include references of type Patient. When using the
  // patient search parameter, there is no need to specify ":Patient" as a modifier, or "Patient/" in the
  // search value".
  test.each<[string, string[]]>([
    ['subject:Patient=123', ['o-rel', 'o-abs']],
    ['subject:Patient={p-urn}', ['o-urn', 'o-ident-ref']],
    ['subject:Group=g1', ['o-group']],
    ['subject:Patient=g1', []],
    ['subject:Group=123', []],
    ['patient=123', ['o-rel', 'o-abs']],
    ['patient=Patient/123', ['o-rel', 'o-abs']],
    [`patient=${BASE_URL}/Patient/123`, ['o-rel', 'o-abs']],
    ['patient={p-urn}', ['o-urn', 'o-ident-ref']],
    ['patient=g1', []], // Group/g1 is not a Patient
  ])('Observation?%s', expectObservations);
});

describe(':identifier — Reference.identifier, searched as a token', () => {
  // R4: "References are also allowed to have an identifier. The modifier :identifier allows for
  // searching by the identifier rather than the literal reference [...] When the :identifier modifier
  // is used, the search value works as a token search."
  test.each<[string, string[]]>([
    [`subject:identifier=${MRN}|MRN-9`, ['o-ident']],
    ['subject:identifier=MRN-7', ['o-ident-ref']],
    [`subject:identifier=${MRN}|`, ['o-ident', 'o-ident-ref']],
    ['subject:identifier=|MRN-9', []], // the reference's identifier has a system
    // Patient/123 has identifier MRN-123, but no reference to it carries an identifier: :identifier
    // looks at the Reference, not at the resource it points to (that would be subject:Patient.identifier).
    [`subject:identifier=${MRN}|MRN-123`, []],
    [`subject:Patient.identifier=${MRN}|MRN-123`, ['o-rel', 'o-abs']],
  ])('Observation?%s', expectObservations);
});

describe(':missing', () => {
  test('subject:missing=true|false', async () => {
    await expectObservations('subject:missing=true', ['o-none']);
    // o-ident has a subject element (with only an identifier), so it is not missing.
    await expectObservations(
      'subject:missing=false',
      ALL.filter((k) => k !== 'o-none'),
    );
  });
});
