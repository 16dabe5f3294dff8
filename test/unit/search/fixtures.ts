/**
 * R4-shaped resources for the search extraction tests and the measurement script
 * (test/unit/search/measure.ts). Based on the FHIR R4 examples (Observation/blood-pressure,
 * Patient/example), with accents, several identifiers and telecoms added.
 */
import type { Observation, Patient } from '@medplum/fhirtypes';

export const bloodPressure = {
  resourceType: 'Observation',
  id: 'blood-pressure',
  meta: {
    versionId: '1',
    lastUpdated: '2024-05-06T07:08:09.123Z',
    profile: ['http://hl7.org/fhir/StructureDefinition/vitalsigns|4.0.1'],
    tag: [{ system: 'http://example.org/tags', code: 'ccm', display: 'Chronic care' }],
    security: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'N' }],
    source: 'http://example.org/device/bp-cuff-17',
  },
  identifier: [{ system: 'urn:ietf:rfc:3986', value: 'urn:uuid:187e0c12-8dd2-67e2-99b2-bf273c878281' }],
  basedOn: [{ identifier: { system: 'https://acme.org/identifiers', value: '1234' } }],
  status: 'final',
  category: [
    {
      coding: [
        {
          system: 'http://terminology.hl7.org/CodeSystem/observation-category',
          code: 'vital-signs',
          display: 'Vital Signs',
        },
      ],
    },
  ],
  code: {
    coding: [
      { system: 'http://loinc.org', code: '85354-9', display: 'Blood pressure panel with all children optional' },
    ],
    text: 'Blood pressure systolic & diastolic',
  },
  subject: { reference: 'Patient/example' },
  encounter: { reference: 'Encounter/e1/_history/3' },
  performer: [{ reference: 'Practitioner/example' }, { reference: 'https://other.example.org/fhir/Organization/o9' }],
  effectiveDateTime: '2012-09-17',
  issued: '2012-09-17T10:11:12.345+02:00',
  interpretation: [
    {
      coding: [
        {
          system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation',
          code: 'L',
          display: 'low',
        },
      ],
      text: 'Below low normal',
    },
  ],
  bodySite: { coding: [{ system: 'http://snomed.info/sct', code: '368209003', display: 'Right arm' }] },
  method: { text: 'Auscultation' },
  component: [
    {
      code: {
        coding: [
          { system: 'http://loinc.org', code: '8480-6', display: 'Systolic blood pressure' },
          { system: 'http://snomed.info/sct', code: '271649006', display: 'Systolic blood pressure' },
        ],
      },
      valueQuantity: { value: 107, unit: 'mmHg', system: 'http://unitsofmeasure.org', code: 'mm[Hg]' },
    },
    {
      code: { coding: [{ system: 'http://loinc.org', code: '8462-4', display: 'Diastolic blood pressure' }] },
      valueQuantity: { value: 60, unit: 'mmHg', system: 'http://unitsofmeasure.org', code: 'mm[Hg]' },
    },
  ],
} satisfies Observation;

export const glucose = {
  resourceType: 'Observation',
  id: 'f001',
  status: 'final',
  code: { coding: [{ system: 'http://loinc.org', code: '15074-8', display: 'Glucose [Moles/volume] in Blood' }] },
  subject: { reference: 'Patient/f001', display: 'P. van de Heuvel' },
  effectivePeriod: { start: '2013-04-02T09:30:10+01:00' },
  issued: '2013-04-03T15:30:10+01:00',
  valueQuantity: { value: 6.3, unit: 'mmol/l', system: 'http://unitsofmeasure.org', code: 'mmol/L' },
  referenceRange: [
    {
      low: { value: 3.1, unit: 'mmol/l', system: 'http://unitsofmeasure.org', code: 'mmol/L' },
      high: { value: 6.2, unit: 'mmol/l', system: 'http://unitsofmeasure.org', code: 'mmol/L' },
    },
  ],
} satisfies Observation;

const patientElements = {
  resourceType: 'Patient',
  id: 'example',
  meta: { lastUpdated: '2024-05-06T07:08:09Z' },
  extension: [
    {
      url: 'http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex',
      valueCode: 'F',
    },
  ],
  identifier: [
    {
      use: 'usual',
      type: {
        coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MR' }],
        text: 'Medical record number',
      },
      system: 'urn:oid:1.2.36.146.595.217.0.1',
      value: '12345',
      period: { start: '2001-05-06' },
      assigner: { display: 'Acme Healthcare' },
    },
    { system: 'http://hl7.org/fhir/sid/us-ssn', value: '000-12-3456' },
  ],
  active: true,
  name: [
    { use: 'official', family: 'Chalmers', given: ['Peter', 'James'] },
    { use: 'usual', given: ['Jim'] },
    { use: 'maiden', family: 'Müller-Ångström', given: ['Zoë', 'Renée'], prefix: ['Dr.'], period: { end: '2002' } },
  ],
  telecom: [
    { system: 'phone', value: '(03) 5555 6473', use: 'work', rank: 1 },
    { system: 'email', value: 'Jim.Chalmers@example.org', use: 'home' },
  ],
  gender: 'male',
  birthDate: '1974-12-25',
  deceasedBoolean: false,
  address: [
    {
      use: 'home',
      type: 'both',
      text: '534 Erewhon St PeasantVille, Rainbow, Vic  3999',
      line: ['534 Erewhon St'],
      city: 'PleasantVille',
      district: 'Rainbow',
      state: 'Vic',
      postalCode: '3999',
      country: 'AU',
      period: { start: '1974-12-25' },
    },
  ],
  contact: [
    {
      relationship: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0131', code: 'N' }] }],
      name: { family: 'du Marché', given: ['Bénédicte'] },
      telecom: [{ system: 'phone', value: '+33 (237) 998327' }],
    },
  ],
  communication: [{ language: { coding: [{ system: 'urn:ietf:bcp:47', code: 'en-AU' }] } }],
  generalPractitioner: [{ reference: 'Organization/1' }],
  managingOrganization: { reference: 'Organization/1' },
  link: [{ other: { reference: 'Patient/pat2' }, type: 'seealso' }],
} satisfies Patient;

/** With a primitive extension (`_birthDate`), which the TypeScript types do not model. */
export const patient = {
  ...patientElements,
  _birthDate: {
    extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/patient-birthTime', valueDateTime: '1974-12-25T14:35:45-05:00' }],
  },
};
