/**
 * The ChargeItems of a closed month (ccm-domain.md section 7): one per CPT code per patient-month,
 * `code` CPT, `quantity` = units, `occurrencePeriod` = the month, `performer` the billing
 * practitioner, `priceOverride` the amount under the fee schedule, `supportingInformation` the
 * time-entry Tasks counted. The id is derived from month, code and patient, so a rerun updates.
 */
import type { ChargeItem, Parameters, ParametersParameter } from '@medplum/fhirtypes';

export const CPT = 'http://www.ama-assn.org/go/cpt';
export const IDENTIFIER_SYSTEM = 'http://continuum-ccm.org/fhir/NamingSystem/ccm-charge';

export function chargeItemId(month: string, code: string, patientId: string): string {
  const base = `ccm-${month}-${code}-`;
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

function monthPeriod(month: string): { start: string; end: string } {
  const [y, m] = month.split('-').map(Number);
  const last = new Date(Date.UTC(y, m, 0)).getUTCDate();
  return { start: `${month}-01`, end: `${month}-${String(last).padStart(2, '0')}` };
}

const part = (p: ParametersParameter, name: string): ParametersParameter | undefined => p.part?.find((x) => x.name === name);

/** The ChargeItems the billing answer of a month asks for. */
export function chargeItems(month: string, billing: Parameters, enteredDate: string): ChargeItem[] {
  const out: ChargeItem[] = [];
  for (const line of (billing.parameter ?? []).filter((p) => p.name === 'line')) {
    const patient = part(line, 'patient')?.valueReference?.reference as string;
    const code = part(line, 'code')?.valueCoding?.code as string;
    const patientId = patient.slice('Patient/'.length);
    const practitioner = part(line, 'practitioner')?.valueReference;
    const amount = part(line, 'amount')?.valueMoney;
    const entries = (line.part ?? []).filter((x) => x.name === 'entry').map((x) => ({ reference: x.valueReference?.reference as string }));
    out.push({
      resourceType: 'ChargeItem',
      id: chargeItemId(month, code, patientId),
      identifier: [{ system: IDENTIFIER_SYSTEM, value: `${month}|${code}|${patientId}` }],
      status: 'billable',
      code: { coding: [{ system: CPT, code }] },
      subject: { reference: patient },
      occurrencePeriod: monthPeriod(month),
      quantity: { value: part(line, 'units')?.valueInteger ?? 1 },
      ...(practitioner ? { performer: [{ actor: practitioner as NonNullable<ChargeItem['performer']>[number]['actor'] }] } : {}),
      ...(amount ? { priceOverride: amount } : {}),
      enteredDate,
      ...(entries.length > 0 ? { supportingInformation: entries } : {}),
      note: [{ text: `${part(line, 'minutes')?.valueInteger ?? 0} minutes counted (${part(line, 'option')?.valueCode ?? 'ccm'}).` }],
    });
  }
  return out;
}

/** Whether a stored ChargeItem already says what `next` says (ignoring meta and enteredDate). */
export function sameCharge(a: ChargeItem, b: ChargeItem): boolean {
  const strip = (c: ChargeItem): string => JSON.stringify({ ...c, meta: undefined, enteredDate: undefined });
  return strip(a) === strip(b);
}

/** The month before `today` (YYYY-MM-DD): what the scheduled run on the 1st closes. */
export function previousMonth(today: string): string {
  const [y, m] = today.split('-').map(Number);
  return m === 1 ? `${y - 1}-12` : `${y}-${String(m - 1).padStart(2, '0')}`;
}
