import { bloodPressure, patient } from './fixtures';
import { extract, rowsOf } from './helpers';

const none = { text: null, typeSystem: null, typeCode: null };

describe('token parameters', () => {
  const obs = extract(bloodPressure);
  const pat = extract(patient);

  test('CodeableConcept: one row per coding (display as text) plus CodeableConcept.text', () => {
    expect(rowsOf(obs, 'token', 'code')).toEqual([
      { system: 'http://loinc.org', value: '85354-9', text: 'blood pressure panel with all children optional', typeSystem: null, typeCode: null },
      { system: null, value: null, text: 'blood pressure systolic & diastolic', typeSystem: null, typeCode: null },
    ]);
  });

  test('CodeableConcept.text that reads as a coding\'s display (normalized) adds no row of its own', () => {
    const r = extract({
      resourceType: 'Observation',
      status: 'final',
      code: { coding: [{ system: 'http://loinc.org', code: '8302-2', display: 'Body Height' }], text: 'body  height' },
    });
    expect(rowsOf(r, 'token', 'code')).toEqual([{ system: 'http://loinc.org', value: '8302-2', text: 'body height', typeSystem: null, typeCode: null }]);
    // A text that differs from every display keeps its row (`:text` must find it).
    const other = extract({
      resourceType: 'Observation',
      status: 'final',
      code: { coding: [{ system: 'http://loinc.org', code: '8302-2', display: 'Body height' }], text: 'Height' },
    });
    expect(rowsOf(other, 'token', 'code').map((x) => [x.value, x.text])).toEqual([
      ['8302-2', 'body height'],
      [null, 'height'],
    ]);
  });

  test('CodeableConcept with only text', () => {
    expect(rowsOf(obs, 'token', 'method')).toEqual([{ system: null, value: null, text: 'auscultation', typeSystem: null, typeCode: null }]);
  });

  test('Coding (meta.tag, meta.security)', () => {
    expect(rowsOf(obs, 'token', '_tag')).toEqual([{ system: 'http://example.org/tags', value: 'ccm', text: 'chronic care', typeSystem: null, typeCode: null }]);
    expect(rowsOf(obs, 'token', '_security')).toEqual([
      { system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', value: 'N', ...none },
    ]);
  });

  test('Identifier: system|value, type.text for :text, type coding for :of-type', () => {
    expect(rowsOf(pat, 'token', 'identifier')).toEqual([
      {
        system: 'urn:oid:1.2.36.146.595.217.0.1',
        value: '12345',
        text: 'medical record number',
        typeSystem: 'http://terminology.hl7.org/CodeSystem/v2-0203',
        typeCode: 'MR',
      },
      { system: 'http://hl7.org/fhir/sid/us-ssn', value: '000-12-3456', ...none },
    ]);
  });

  test('Identifier with two type codings gives a row per coding', () => {
    const r = extract({
      resourceType: 'Patient',
      identifier: [
        {
          type: {
            coding: [
              { system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MR' },
              { system: 'http://example.org/id-types', code: 'chart' },
            ],
          },
          system: 'http://hospital.example.org/mrn',
          value: 'A-1',
        },
      ],
    });
    expect(rowsOf(r, 'token', 'identifier').map((x) => [x.system, x.value, x.typeSystem, x.typeCode])).toEqual([
      ['http://hospital.example.org/mrn', 'A-1', 'http://terminology.hl7.org/CodeSystem/v2-0203', 'MR'],
      ['http://hospital.example.org/mrn', 'A-1', 'http://example.org/id-types', 'chart'],
    ]);
  });

  test('ContactPoint: system is ContactPoint.system, value the number/address; where() filters', () => {
    expect(rowsOf(pat, 'token', 'telecom')).toEqual([
      { system: 'phone', value: '(03) 5555 6473', ...none },
      { system: 'email', value: 'Jim.Chalmers@example.org', ...none },
    ]);
    expect(rowsOf(pat, 'token', 'email')).toEqual([{ system: 'email', value: 'Jim.Chalmers@example.org', ...none }]);
    expect(rowsOf(pat, 'token', 'phone')).toEqual([{ system: 'phone', value: '(03) 5555 6473', ...none }]);
  });

  test.each([
    ['code element', 'gender', [{ system: null, value: 'male', ...none }]],
    ['boolean true', 'active', [{ system: null, value: 'true', ...none }]],
    ['computed boolean (deceased.exists() and deceased != false)', 'deceased', [{ system: null, value: 'false', ...none }]],
    ['id (_id)', '_id', [{ system: null, value: 'example', ...none }]],
    ['CodeableConcept under a backbone', 'language', [{ system: 'urn:ietf:bcp:47', value: 'en-AU', ...none }]],
  ])('%s', (_name, code, expected) => {
    expect(rowsOf(pat, 'token', code)).toEqual(expected);
  });

  test.each([
    [{ deceasedBoolean: true }, 'true'],
    [{ deceasedDateTime: '2020-01-01' }, 'true'],
    [{ deceasedBoolean: false }, 'false'],
  ])('Patient deceased %j -> %s', (fields, value) => {
    expect(rowsOf(extract({ resourceType: 'Patient', ...fields }), 'token', 'deceased').map((r) => r.value)).toEqual([value]);
  });

  test('no deceased[x]: the R4 expression evaluates to false, so deceased=false finds the patient', () => {
    expect(rowsOf(extract({ resourceType: 'Patient' }), 'token', 'deceased').map((r) => r.value)).toEqual(['false']);
  });

  test('string used as a code, and uri/Coding choice as a token', () => {
    const med = extract({ resourceType: 'Medication', batch: { lotNumber: 'LOT-9' } });
    expect(rowsOf(med, 'token', 'lot-number')).toEqual([{ system: null, value: 'LOT-9', ...none }]);
    const mh = extract({ resourceType: 'MessageHeader', eventUri: 'http://example.org/fhir/message-events/admit', source: { endpoint: 'http://x' } });
    expect(rowsOf(mh, 'token', 'event')).toEqual([{ system: null, value: 'http://example.org/fhir/message-events/admit', ...none }]);
  });

  test('choice type: only the matching type is indexed (value-concept vs value-quantity)', () => {
    const concept = extract({
      resourceType: 'Observation',
      status: 'final',
      code: { text: 'blood group' },
      valueCodeableConcept: { coding: [{ system: 'http://snomed.info/sct', code: '112144000', display: 'Blood group A' }] },
    });
    expect(rowsOf(concept, 'token', 'value-concept').map((r) => [r.system, r.value])).toEqual([['http://snomed.info/sct', '112144000']]);
    expect(rowsOf(concept, 'quantity', 'value-quantity')).toEqual([]);
    // value-string is (Observation.value as string) | (Observation.value as CodeableConcept).text
    expect(rowsOf(concept, 'string', 'value-string')).toEqual([]);
  });
});
