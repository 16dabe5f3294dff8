/**
 * The running total of one patient-month as a MeasureReport (individual, measure ccm-minutes):
 * groups `logged-minutes`, `counted-minutes`, `clinical-staff`, `billing-practitioner` and, while a
 * further code can be earned, `minutes-to-next-code` (its stratifier-free group code names the CPT
 * code in `group.code.coding[1]`). The id is derived from patient and month.
 */
import type { MeasureReport, MeasureReportGroup, Parameters, ParametersParameter } from '@medplum/fhirtypes';

export const CCM = 'http://continuum-ccm.org/fhir/CodeSystem/ccm';
export const MEASURE = 'http://continuum-ccm.org/fhir/Measure/ccm-minutes';
const CPT = 'http://www.ama-assn.org/go/cpt';

export function totalId(patientId: string, month: string): string {
  const base = `ccm-minutes-${month}-`;
  if (base.length + patientId.length <= 64) {
    return base + patientId;
  }
  let h = 0x811c9dc5;
  for (let i = 0; i < patientId.length; i++) {
    h ^= patientId.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  const hash = h.toString(16);
  return base + patientId.slice(0, 64 - base.length - hash.length - 1) + '-' + hash;
}

/** The months an entry's period touches (UTC), e.g. ['2026-03'] or ['2026-03', '2026-04']. */
export function monthsOf(start: string | undefined, end: string | undefined): string[] {
  const a = start?.slice(0, 7);
  const b = (end ?? start)?.slice(0, 7);
  if (!a || !/^\d{4}-\d{2}$/.test(a)) {
    return [];
  }
  return b && b !== a && /^\d{4}-\d{2}$/.test(b) ? [a, b] : [a];
}

const minutes = (value: number): MeasureReportGroup['measureScore'] => ({ value, unit: 'min', system: 'http://unitsofmeasure.org', code: 'min' });

export function totalReport(patientId: string, month: string, billing: Parameters, now: string): MeasureReport {
  const row = (billing.parameter ?? []).find((p) => p.name === 'minutes' && p.part?.[0]?.valueReference?.reference === `Patient/${patientId}`);
  const get = (name: string): ParametersParameter | undefined => row?.part?.find((x) => x.name === name);
  const staff = get('clinicalStaff')?.valueInteger ?? 0;
  const practitioner = get('billingPractitioner')?.valueInteger ?? 0;
  const group = (code: string, value: number, extra?: { system: string; code: string }): MeasureReportGroup => ({
    code: { coding: [{ system: CCM, code }, ...(extra ? [extra] : [])] },
    measureScore: minutes(value),
  });
  const [y, m] = month.split('-').map(Number);
  const last = new Date(Date.UTC(y, m, 0)).getUTCDate();
  const next = get('nextCode')?.valueCoding?.code;
  return {
    resourceType: 'MeasureReport',
    id: totalId(patientId, month),
    status: 'complete',
    type: 'individual',
    measure: MEASURE,
    subject: { reference: `Patient/${patientId}` },
    date: now,
    period: { start: `${month}-01`, end: `${month}-${String(last).padStart(2, '0')}` },
    group: [
      group('logged-minutes', get('logged')?.valueInteger ?? 0),
      group('counted-minutes', staff + practitioner),
      group('clinical-staff', staff),
      group('billing-practitioner', practitioner),
      ...(next ? [group('minutes-to-next-code', get('toNextCode')?.valueInteger ?? 0, { system: CPT, code: next })] : []),
    ],
  };
}

export function sameTotals(a: MeasureReport, b: MeasureReport): boolean {
  return JSON.stringify(a.group) === JSON.stringify(b.group);
}
