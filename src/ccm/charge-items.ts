/**
 * The ChargeItems of a closed month (ccm-domain.md section 7): one per CPT code per patient-month,
 * `code` CPT, `quantity` = units, `occurrencePeriod` = the month, `performer` the billing
 * practitioner, `priceOverride` the amount under the fee schedule, `supportingInformation` the
 * time-entry Tasks counted. The id is derived from month, code and patient, so a rerun updates.
 */
import type { ChargeItem } from '@medplum/fhirtypes';
import type { MonthResult } from './billing';
import { CPT } from './billing-data';

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

/** The ChargeItems a month's billing asks for: one per line. */
export function chargeItemsOf(month: string, results: MonthResult[], enteredDate: string): ChargeItem[] {
  const out: ChargeItem[] = [];
  for (const r of results) {
    const subject = `Patient/${r.patient}`;
    const entries = r.counted.map((reference) => ({ reference }));
    for (const l of r.lines) {
      out.push({
        resourceType: 'ChargeItem',
        id: chargeItemId(month, l.code, r.patient),
        identifier: [{ system: IDENTIFIER_SYSTEM, value: `${month}|${l.code}|${r.patient}` }],
        status: 'billable',
        code: { coding: [{ system: CPT, code: l.code }] },
        subject: { reference: subject },
        occurrencePeriod: monthPeriod(month),
        quantity: { value: l.units },
        ...(r.billingPractitioner ? { performer: [{ actor: { reference: r.billingPractitioner } }] } : {}),
        ...(l.amount !== undefined ? { priceOverride: { value: l.amount, currency: 'USD' } } : {}),
        enteredDate,
        ...(entries.length > 0 ? { supportingInformation: entries } : {}),
        note: [{ text: `${l.minutes} minutes counted (${r.chosen ?? 'ccm'}).` }],
      });
    }
  }
  return out;
}

/** Whether a ChargeItem was written by the month close of `month`. */
export function isMonthCloseCharge(c: ChargeItem, month: string): boolean {
  return c.identifier?.some((i) => i.system === IDENTIFIER_SYSTEM && i.value?.startsWith(`${month}|`)) ?? false;
}

/** Whether a stored ChargeItem already says what `next` says (ignoring meta and enteredDate). */
export function sameCharge(a: ChargeItem, b: ChargeItem): boolean {
  const strip = (c: ChargeItem): string => JSON.stringify({ ...c, meta: undefined, enteredDate: undefined });
  return strip(a) === strip(b);
}
