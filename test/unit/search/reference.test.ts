import { parseReference } from '../../../src/search/extract';
import { bloodPressure } from './fixtures';
import { extract, rowsOf } from './helpers';

const ref = { targetType: null, targetId: null, version: null, url: null, identifierSystem: null, identifierValue: null };
const ctx = { resource: { resourceType: 'Observation', contained: [{ resourceType: 'Practitioner', id: 'pr1' }] }, baseUrl: 'https://fhir.example.org/r4' };

describe('parseReference', () => {
  test.each([
    ['Patient/123', { targetType: 'Patient', targetId: '123' }],
    ['Patient/123/_history/2', { targetType: 'Patient', targetId: '123', version: '2' }],
    ['Patient/A.b-9', { targetType: 'Patient', targetId: 'A.b-9' }],
    ['https://fhir.example.org/r4/Patient/123', { targetType: 'Patient', targetId: '123' }],
    ['https://fhir.example.org/r4/Patient/123/_history/7', { targetType: 'Patient', targetId: '123', version: '7' }],
    ['http://other.org/fhir/Patient/123', { targetType: 'Patient', url: 'http://other.org/fhir/Patient/123' }],
    ['http://other.org/fhir/Patient/123/_history/4', { targetType: 'Patient', url: 'http://other.org/fhir/Patient/123/_history/4', version: '4' }],
    // A base URL that is only a prefix of the host is not ours.
    ['https://fhir.example.org/r4x/Patient/1', { targetType: 'Patient', url: 'https://fhir.example.org/r4x/Patient/1' }],
    ['urn:uuid:9e2e3f1a-46e4-4b3a-9d0e-3e6f1a2b3c4d', { url: 'urn:uuid:9e2e3f1a-46e4-4b3a-9d0e-3e6f1a2b3c4d' }],
    ['urn:oid:1.2.3.4', { url: 'urn:oid:1.2.3.4' }],
    ['#pr1', { targetType: 'Practitioner', url: '#pr1' }],
    ['#missing', { url: '#missing' }],
  ])('%s', (text, expected) => {
    expect(parseReference(text, ctx)).toEqual({ ...ref, ...expected });
  });

  test('Reference.type is used when the string does not tell', () => {
    expect(parseReference('urn:uuid:1', ctx, false, 'Patient')).toEqual({ ...ref, url: 'urn:uuid:1', targetType: 'Patient' });
  });

  test.each([
    ['http://example.org/Questionnaire/phq9|2.0', { url: 'http://example.org/Questionnaire/phq9', version: '2.0', targetType: 'Questionnaire' }],
    ['http://example.org/Questionnaire/phq9', { url: 'http://example.org/Questionnaire/phq9', targetType: 'Questionnaire' }],
    // Canonicals are matched by URL even under our base URL.
    ['https://fhir.example.org/r4/ValueSet/vs1', { url: 'https://fhir.example.org/r4/ValueSet/vs1', targetType: 'ValueSet' }],
    ['http://loinc.org/vs', { url: 'http://loinc.org/vs' }],
  ])('canonical %s', (text, expected) => {
    expect(parseReference(text, ctx, true)).toEqual({ ...ref, ...expected });
  });
});

describe('reference parameters', () => {
  const rows = extract(bloodPressure);

  test('relative, versioned, absolute-elsewhere and logical references', () => {
    expect(rowsOf(rows, 'reference', 'subject')).toEqual([{ ...ref, targetType: 'Patient', targetId: 'example' }]);
    expect(rowsOf(rows, 'reference', 'encounter')).toEqual([{ ...ref, targetType: 'Encounter', targetId: 'e1', version: '3' }]);
    expect(rowsOf(rows, 'reference', 'performer')).toEqual([
      { ...ref, targetType: 'Practitioner', targetId: 'example' },
      { ...ref, targetType: 'Organization', url: 'https://other.example.org/fhir/Organization/o9' },
    ]);
    expect(rowsOf(rows, 'reference', 'based-on')).toEqual([{ ...ref, identifierSystem: 'https://acme.org/identifiers', identifierValue: '1234' }]);
  });

  test('the base URL option makes absolute references to this server local', () => {
    const obs = { ...bloodPressure, subject: { reference: 'https://fhir.example.org/r4/Patient/example' } };
    expect(rowsOf(extract(obs, { baseUrl: 'https://fhir.example.org/r4/' }), 'reference', 'subject')).toEqual([
      { ...ref, targetType: 'Patient', targetId: 'example' },
    ]);
    expect(rowsOf(extract(obs), 'reference', 'subject')).toEqual([
      { ...ref, targetType: 'Patient', url: 'https://fhir.example.org/r4/Patient/example' },
    ]);
  });

  test.each([
    ['Patient/1', true],
    ['Group/1', false],
    ['http://other.org/fhir/Patient/1', true],
    ['urn:uuid:1', false],
  ])('where(resolve() is Patient): subject %s -> patient row %s', (reference, present) => {
    const obs = { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference } };
    const rows = extract(obs);
    expect(rowsOf(rows, 'reference', 'subject')).toHaveLength(1);
    expect(rowsOf(rows, 'reference', 'patient')).toHaveLength(present ? 1 : 0);
  });

  test('where(resolve() is Patient) uses Reference.type and contained resources', () => {
    const typed = extract({ resourceType: 'Observation', subject: { reference: 'urn:uuid:1', type: 'Patient' } });
    expect(rowsOf(typed, 'reference', 'patient')).toEqual([{ ...ref, targetType: 'Patient', url: 'urn:uuid:1' }]);
    const logical = extract({ resourceType: 'Observation', subject: { type: 'Patient', identifier: { system: 'urn:mrn', value: '7' } } });
    expect(rowsOf(logical, 'reference', 'patient')).toEqual([{ ...ref, targetType: 'Patient', identifierSystem: 'urn:mrn', identifierValue: '7' }]);
    const contained = extract({
      resourceType: 'Encounter',
      contained: [{ resourceType: 'Practitioner', id: 'p1' }, { resourceType: 'RelatedPerson', id: 'r1', patient: { reference: 'Patient/1' } }],
      participant: [{ individual: { reference: '#p1' } }, { individual: { reference: '#r1' } }],
    });
    expect(rowsOf(contained, 'reference', 'practitioner')).toEqual([{ ...ref, targetType: 'Practitioner', url: '#p1' }]);
    expect(rowsOf(contained, 'reference', 'participant')).toHaveLength(2);
  });

  test('a reference with only a display gives no row', () => {
    const obs = extract({ resourceType: 'Observation', subject: { display: 'Someone' } });
    expect(rowsOf(obs, 'reference', 'subject')).toEqual([]);
  });

  test('canonical elements (QuestionnaireResponse.questionnaire) split the version', () => {
    const qr = extract({ resourceType: 'QuestionnaireResponse', status: 'completed', questionnaire: 'http://example.org/Questionnaire/phq9|2.0' });
    expect(rowsOf(qr, 'reference', 'questionnaire')).toEqual([
      { ...ref, targetType: 'Questionnaire', url: 'http://example.org/Questionnaire/phq9', version: '2.0' },
    ]);
  });

  test('choice of canonical/uri (ConceptMap source) and Reference/Attachment (Consent source)', () => {
    const cm = extract({ resourceType: 'ConceptMap', status: 'active', sourceCanonical: 'http://example.org/ValueSet/a', targetUri: 'urn:oid:1.2' });
    expect(rowsOf(cm, 'reference', 'source')).toEqual([{ ...ref, targetType: 'ValueSet', url: 'http://example.org/ValueSet/a' }]);
    // canonical specializes uri, so `source as uri` (FHIRPath `is` semantics) holds the canonical too...
    expect(rowsOf(cm, 'reference', 'source-uri')).toEqual([{ ...ref, targetType: 'ValueSet', url: 'http://example.org/ValueSet/a' }]);
    // ...but a uri is not a canonical.
    expect(rowsOf(cm, 'reference', 'target')).toEqual([]);
    expect(rowsOf(cm, 'reference', 'target-uri')).toEqual([{ ...ref, url: 'urn:oid:1.2' }]);
    const consent = extract({ resourceType: 'Consent', sourceAttachment: { url: 'http://example.org/scan.pdf' } });
    expect(rowsOf(consent, 'reference', 'source-reference')).toEqual([]);
  });

  test('inline resources (Bundle.entry[0].resource) are references to their type and id', () => {
    const b = extract({ resourceType: 'Bundle', type: 'document', entry: [{ resource: { resourceType: 'Composition', id: 'c1' } }] });
    expect(rowsOf(b, 'reference', 'composition')).toEqual([{ ...ref, targetType: 'Composition', targetId: 'c1' }]);
  });
});
