/** Typed builders for test resources. */
import type { Bundle, BundleEntry, Condition, Observation, Patient, Resource } from '@medplum/fhirtypes';

export function patient(overrides: Partial<Patient> = {}): Patient {
  return {
    resourceType: 'Patient',
    name: [{ family: 'Testperson', given: ['Ada'] }],
    gender: 'female',
    birthDate: '1950-04-02',
    ...overrides,
  };
}

export function condition(subject: string, code: string, overrides: Partial<Condition> = {}): Condition {
  return {
    resourceType: 'Condition',
    subject: { reference: subject },
    clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'active' }] },
    code: { coding: [{ system: 'http://snomed.info/sct', code }] },
    ...overrides,
  };
}

export function observation(subject: string, overrides: Partial<Observation> = {}): Observation {
  return {
    resourceType: 'Observation',
    status: 'final',
    code: { coding: [{ system: 'http://loinc.org', code: '29463-7', display: 'Body weight' }] },
    subject: { reference: subject },
    valueQuantity: { value: 72.5, unit: 'kg', system: 'http://unitsofmeasure.org', code: 'kg' },
    ...overrides,
  };
}

export function transactionBundle(entries: BundleEntry[], type: 'transaction' | 'batch' = 'transaction'): Bundle {
  return { resourceType: 'Bundle', type, entry: entries };
}

export function postEntry(fullUrl: string, resource: Resource): BundleEntry {
  return { fullUrl, resource, request: { method: 'POST', url: resource.resourceType } };
}
