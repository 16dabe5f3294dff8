/**
 * The stored eligibility determination (profile ccm-eligibility-determination): an Observation per
 * patient, made from the Parameters `$ccm-eligibility` answers. Searchable with the usual parameters:
 * `Observation?code=http://continuum-ccm.org/fhir/CodeSystem/ccm|ccm-eligibility&value-concept=...|eligible`,
 * `component-value-concept=...|diabetes`, `subject=Patient/...`.
 */
import type { Observation, Parameters } from '@medplum/fhirtypes';

export const CCM = 'http://continuum-ccm.org/fhir/CodeSystem/ccm';
export const IDENTIFIER_SYSTEM = 'http://continuum-ccm.org/fhir/NamingSystem/ccm-eligibility';
export const PROFILE = 'http://continuum-ccm.org/fhir/StructureDefinition/ccm-eligibility-determination';

/** The determination's id: one per patient, so a re-evaluation updates it (ids are at most 64 characters). */
export function determinationId(patientId: string): string {
  if (patientId.length <= 48) {
    return `ccm-eligibility-${patientId}`;
  }
  // FNV-1a over the id: long patient ids still map to one stable, valid id.
  let h = 0x811c9dc5;
  for (let i = 0; i < patientId.length; i++) {
    h ^= patientId.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return `ccm-eligibility-${patientId.slice(0, 38)}-${h.toString(16)}`;
}

export function determination(patientId: string, answer: Parameters, issued: string): Observation {
  const params = answer.parameter ?? [];
  const eligible = params.find((p) => p.name === 'eligible')?.valueBoolean === true;
  const date = params.find((p) => p.name === 'date')?.valueDate ?? issued.slice(0, 10);
  const reason = params.find((p) => p.name === 'reason')?.valueString;
  const categories = params.filter((p) => p.name === 'category').map((p) => p.valueCode as string);
  const conditions = params.filter((p) => p.name === 'condition' && p.valueReference?.reference).map((p) => ({ reference: p.valueReference?.reference as string }));
  return {
    resourceType: 'Observation',
    id: determinationId(patientId),
    meta: { profile: [PROFILE] },
    identifier: [{ system: IDENTIFIER_SYSTEM, value: patientId }],
    status: 'final',
    code: { coding: [{ system: CCM, code: 'ccm-eligibility', display: 'CCM eligibility determination' }] },
    subject: { reference: `Patient/${patientId}` },
    effectiveDateTime: date,
    issued,
    valueCodeableConcept: { coding: [{ system: CCM, code: eligible ? 'eligible' : 'not-eligible', display: eligible ? 'Eligible for CCM' : 'Not eligible for CCM' }] },
    ...(categories.length > 0
      ? { component: categories.map((c) => ({ code: { coding: [{ system: CCM, code: 'chronic-category' }] }, valueCodeableConcept: { coding: [{ system: CCM, code: c }] } })) }
      : {}),
    ...(conditions.length > 0 ? { derivedFrom: conditions } : {}),
    ...(reason ? { note: [{ text: reason }] } : {}),
  };
}

/** Whether two determinations say the same (ignoring when they were made). */
export function sameFinding(a: Observation, b: Observation): boolean {
  const strip = (o: Observation): string => JSON.stringify({ ...o, meta: undefined, issued: undefined, effectiveDateTime: undefined });
  return strip(a) === strip(b);
}
