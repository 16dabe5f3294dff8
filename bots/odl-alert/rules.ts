/**
 * The ODL alert rules of ccm-domain.md section 6, as pure functions: an Observation in, the alerts it
 * raises out. Weight gain needs the patient's earlier weights and a heart-failure diagnosis; it is
 * not decided from one Observation, so it is not here.
 */
import type { Observation } from '@medplum/fhirtypes';

export interface Thresholds {
  systolicAtLeast: number;
  diastolicAtLeast: number;
  glucoseBelow: number;
  glucoseAbove: number;
  spo2Below: number;
  phq9AtLeast: number;
  painAtLeast: number;
}

export const DEFAULT_THRESHOLDS: Thresholds = {
  systolicAtLeast: 180,
  diastolicAtLeast: 120,
  glucoseBelow: 54,
  glucoseAbove: 400,
  spo2Below: 88,
  phq9AtLeast: 20,
  painAtLeast: 8,
};

export interface Alert {
  /** Stable per Observation and rule (used to create one Task per alert, however often the bot runs). */
  rule: 'blood-pressure' | 'glucose' | 'spo2' | 'phq9' | 'pain';
  text: string;
}

const LOINC = 'http://loinc.org';

/** Whether a CodeableConcept carries one of the LOINC codes. */
function hasLoinc(concept: Observation['code'] | undefined, ...codes: string[]): boolean {
  return (concept?.coding ?? []).some((c) => c.system === LOINC && codes.includes(c.code ?? ''));
}

/** Whether the Observation was reported by the patient (or a RelatedPerson): an ODL. */
export function isPatientReported(obs: Observation): boolean {
  return (obs.performer ?? []).some((p) => /^(Patient|RelatedPerson)\//.test(p.reference ?? ''));
}

function componentValue(obs: Observation, code: string): number | undefined {
  return obs.component?.find((c) => hasLoinc(c.code, code))?.valueQuantity?.value;
}

/** The alerts an ODL raises under `t`. */
export function alertsFor(obs: Observation, t: Thresholds = DEFAULT_THRESHOLDS): Alert[] {
  const alerts: Alert[] = [];
  const value = obs.valueQuantity?.value;
  if (hasLoinc(obs.code, '85354-9')) {
    const sys = componentValue(obs, '8480-6');
    const dia = componentValue(obs, '8462-4');
    if ((sys !== undefined && sys >= t.systolicAtLeast) || (dia !== undefined && dia >= t.diastolicAtLeast)) {
      alerts.push({ rule: 'blood-pressure', text: `Blood pressure ${sys ?? '?'}/${dia ?? '?'} mm[Hg] (alert at ${t.systolicAtLeast}/${t.diastolicAtLeast})` });
    }
  }
  if (hasLoinc(obs.code, '41653-7') && value !== undefined && (value < t.glucoseBelow || value > t.glucoseAbove)) {
    alerts.push({ rule: 'glucose', text: `Glucose ${value} mg/dL (alert below ${t.glucoseBelow} or above ${t.glucoseAbove})` });
  }
  if (hasLoinc(obs.code, '59408-5', '2708-6') && value !== undefined && value < t.spo2Below) {
    alerts.push({ rule: 'spo2', text: `SpO2 ${value} % (alert below ${t.spo2Below})` });
  }
  if (hasLoinc(obs.code, '44261-6') && value !== undefined && value >= t.phq9AtLeast) {
    alerts.push({ rule: 'phq9', text: `PHQ-9 total ${value} (alert at ${t.phq9AtLeast})` });
  }
  if (hasLoinc(obs.code, '72514-3') && value !== undefined && value >= t.painAtLeast) {
    alerts.push({ rule: 'pain', text: `Pain ${value}/10 (alert at ${t.painAtLeast})` });
  }
  return alerts;
}
