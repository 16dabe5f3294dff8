/**
 * The monthly billing rules of ccm-domain.md section 5, as pure functions of one patient-month:
 * which minutes count, which codes they earn, and why a month bills nothing. `$ccm-billing` and the
 * month-close bot feed it what they read from the store (src/ccm/billing-data.ts).
 *
 * Minutes: a time entry (section 7) counts for the month its minutes fall in (months are UTC
 * calendar months; an entry across midnight at a month's end is split), only when logged by clinical
 * staff or the billing practitioner, based on one of the patient's CCM plans (time for RPM or TCM is
 * logged against those services, so a minute counts toward one service only), after consent, and
 * outside inpatient or SNF stays. The month's countable minutes are summed in milliseconds and
 * floored to whole minutes; add-ons need full increments.
 *
 * Codes (the options a month can bill; the one that pays most under the fee schedule is chosen and
 * the others are reported as rejected):
 * - pooled as clinical-staff time (practitioner minutes count as staff minutes): 99490 at 20, +99439
 *   per further full 20 (at most `staffAddOnCap`, 2);
 * - pooled complex, only when a complex-ccm plan was active in the month and the pool reaches 60:
 *   99487, +99489 per further full 30 (no cap by default); in a complex month below 60 the month
 *   falls back to the non-complex codes, and at 60 or more non-complex codes are not an option
 *   (complex and non-complex never together);
 * - practitioner-only (staff minutes dropped): 99491 at 30 of the practitioner's own minutes,
 *   +99437 per further full 30 (at most `practitionerAddOnCap`, 2);
 * - for a PCM plan: 99424 (+99425 per 30) on the practitioner's own minutes, 99426 (+99427 per 30) on
 *   pooled staff time.
 */

import type { Program } from './codes';

export type { Program };

export type PerformerKind = 'clinical-staff' | 'billing-practitioner' | 'non-clinical-staff';

export interface FeeSchedule {
  [code: string]: number | undefined;
}

/** Default fees: ccm-domain.md section 5 (CY2026 national non-facility; 99426 unpublished). */
export const DEFAULT_FEES: FeeSchedule = {
  '99490': 66.13,
  '99439': 47.43,
  '99491': 84.84,
  '99437': 63.13,
  '99487': 144.29,
  '99489': 78.16,
  '99424': 87.51,
  '99425': 61.46,
  '99426': undefined,
  '99427': 45.42,
};

export interface BillingPolicy {
  fees: FeeSchedule;
  /** Most 99439 units in a month (CMS: 2). */
  staffAddOnCap: number;
  /** Most 99437 units in a month (policy: 2). */
  practitionerAddOnCap: number;
  /** Most 99489 units in a month (policy: none). */
  complexAddOnCap: number;
  /** Most 99425 / 99427 units (policy: none). */
  pcmAddOnCap: number;
}

export const DEFAULT_BILLING_POLICY: BillingPolicy = {
  fees: DEFAULT_FEES,
  staffAddOnCap: 2,
  practitionerAddOnCap: 2,
  complexAddOnCap: Infinity,
  pcmAddOnCap: Infinity,
};

/** Codes of care management itself (a second practitioner's are a conflict). */
export const CCM_CODES = ['99490', '99439', '99491', '99437', '99487', '99489', '99424', '99425', '99426', '99427'];
/** Services that exclude CCM in the same month. */
export function isExcludingService(code: string): boolean {
  if (code === 'G0181' || code === 'G0182' || code === 'G0556' || code === 'G0557' || code === 'G0558') {
    return true;
  }
  const n = /^\d{5}$/.test(code) ? Number(code) : NaN;
  return n >= 90951 && n <= 90970;
}

export interface TimeEntry {
  id: string;
  start: string;
  end: string;
  kind?: PerformerKind;
  /** The CarePlan it is based on (`CarePlan/id`), if any. */
  plan?: string;
  owner?: string;
}

export interface Period {
  start?: string;
  end?: string;
}

export interface PlanFacts {
  id: string;
  program: Program;
  status: string;
  author?: string;
  period?: Period;
}

export interface ServiceFact {
  code: string;
  /** Who billed it (a CCM code by another practitioner is a conflict). */
  performer?: string;
  source: string;
}

export interface MonthFacts {
  patient: string;
  /** YYYY-MM */
  month: string;
  entries: TimeEntry[];
  /** The patient's CCM plans (any status). */
  plans: PlanFacts[];
  /** The start of each CCM consent that covers part of the month (end included), else empty. */
  consents: Period[];
  /** Eligibility in the month (null: not evaluated, e.g. nothing else to bill). */
  eligible: boolean | null;
  eligibilityReason?: string;
  /** Inpatient and SNF stays. */
  inpatient: Period[];
  /** ChargeItems and Claim items of the patient whose service period overlaps the month. */
  services: ServiceFact[];
}

export interface BillingLine {
  code: string;
  units: number;
  minutes: number;
  amount?: number;
}

export interface BillingOption {
  label: 'pooled-staff' | 'pooled-complex' | 'practitioner-only' | 'pcm-practitioner' | 'pcm-staff';
  lines: BillingLine[];
  amount: number;
  /** Why it cannot be billed, when it cannot. */
  notCompliant?: string;
}

export type SkipReason = 'below-threshold' | 'no-consent' | 'not-eligible' | 'not-enrolled' | 'another-practitioner' | 'excluded-service' | 'time-non-countable';

export interface MonthResult {
  patient: string;
  month: string;
  /** Minutes logged in the month, counted or not. */
  loggedMinutes: number;
  countedMinutes: { staff: number; practitioner: number };
  lines: BillingLine[];
  skipped?: { reason: SkipReason; text: string };
  chosen?: BillingOption['label'];
  rejected: BillingOption[];
  /** Entries whose minutes the chosen option counts (ChargeItem.supportingInformation). */
  counted: string[];
  /** Why minutes did not count (entry id -> reason), for the record. */
  notCounted: { entry: string; reason: string; minutes: number }[];
  billingPractitioner?: string;
  program?: Program;
  /** Minutes still needed for the next code of the chosen (or default) family, if any. */
  toNextCode?: { code: string; minutes: number };
  warnings: string[];
}

const MINUTE = 60_000;

export function monthBounds(month: string): { start: number; end: number; first: string; last: string } {
  const [y, m] = month.split('-').map(Number);
  const start = Date.UTC(y, m - 1, 1);
  const end = Date.UTC(y, m, 1);
  return { start, end, first: `${month}-01`, last: new Date(end - 1).toISOString().slice(0, 10) };
}

const ms = (v: string | undefined, fallback: number): number => {
  if (!v) {
    return fallback;
  }
  // A date without a time covers the whole day.
  const t = Date.parse(v.length === 10 ? `${v}T00:00:00Z` : v.length === 7 ? `${v}-01T00:00:00Z` : v.length === 4 ? `${v}-01-01T00:00:00Z` : v);
  return Number.isNaN(t) ? fallback : t;
};
const endMs = (v: string | undefined, fallback: number): number => (v && v.length === 10 ? ms(v, fallback) + 86_400_000 : ms(v, fallback));

function overlapMs(a0: number, a1: number, b0: number, b1: number): number {
  return Math.max(0, Math.min(a1, b1) - Math.max(a0, b0));
}

function overlapsMonth(p: Period | undefined, month: { start: number; end: number }): boolean {
  const s = ms(p?.start, -Infinity);
  const e = endMs(p?.end, Infinity);
  return s < month.end && e > month.start;
}

/** Units of a base code at `threshold` and an add-on per further full `step`, at most `cap` add-ons. */
function family(minutes: number, base: string, threshold: number, addOn: string, step: number, cap: number): BillingLine[] {
  if (minutes < threshold) {
    return [];
  }
  const lines: BillingLine[] = [{ code: base, units: 1, minutes }];
  const addOns = Math.min(cap, Math.floor((minutes - threshold) / step));
  if (addOns > 0) {
    lines.push({ code: addOn, units: addOns, minutes });
  }
  return lines;
}

function priced(label: BillingOption['label'], lines: BillingLine[], fees: FeeSchedule, warnings: string[], notCompliant?: string): BillingOption {
  let amount = 0;
  for (const l of lines) {
    const fee = fees[l.code];
    if (fee === undefined) {
      warnings.push(`No fee is configured for ${l.code}; its amount is not reported`);
    } else {
      l.amount = Math.round(fee * l.units * 100) / 100;
      amount += l.amount;
    }
  }
  return { label, lines, amount: Math.round(amount * 100) / 100, ...(notCompliant ? { notCompliant } : {}) };
}

/** Minutes to the next code of a family (undefined when capped). */
function nextStep(minutes: number, base: string, threshold: number, addOn: string, step: number, cap: number): { code: string; minutes: number } | undefined {
  if (minutes < threshold) {
    return { code: base, minutes: threshold - minutes };
  }
  const units = Math.floor((minutes - threshold) / step);
  if (units >= cap) {
    return undefined;
  }
  return { code: addOn, minutes: threshold + (units + 1) * step - minutes };
}

/** Applies every rule of section 5 to one patient-month. */
export function billMonth(f: MonthFacts, policy: BillingPolicy = DEFAULT_BILLING_POLICY): MonthResult {
  const month = monthBounds(f.month);
  const warnings: string[] = [];
  const result: MonthResult = { patient: f.patient, month: f.month, loggedMinutes: 0, countedMinutes: { staff: 0, practitioner: 0 }, lines: [], rejected: [], notCounted: [], counted: [], warnings };
  const skip = (reason: SkipReason, text: string): MonthResult => {
    result.lines = [];
    result.skipped = { reason, text };
    return result;
  };

  // The plans in force in the month: enrolled means a CCM plan active at some point of it.
  const inForce = f.plans.filter((p) => ['active', 'completed', 'revoked'].includes(p.status) && overlapsMonth(p.period, month));
  const planIds = new Set(f.plans.map((p) => `CarePlan/${p.id}`));
  const complex = inForce.some((p) => p.program === 'complex-ccm');
  const pcm = inForce.length > 0 && inForce.every((p) => p.program === 'pcm');
  const billing = inForce.find((p) => p.program !== 'pcm' || pcm);
  result.program = pcm ? 'pcm' : complex ? 'complex-ccm' : billing ? 'ccm' : undefined;
  result.billingPractitioner = billing?.author;
  const consentStart = f.consents.map((c) => ms(c.start, -Infinity)).sort((a, b) => a - b)[0];

  let staffMs = 0;
  let practitionerMs = 0;
  const countedBy: { id: string; kind: PerformerKind }[] = [];
  let loggedMs = 0;
  for (const e of f.entries) {
    const s = ms(e.start, NaN);
    const t = ms(e.end, NaN);
    const inMonth = overlapMs(s, t, month.start, month.end);
    if (!(inMonth > 0)) {
      continue;
    }
    loggedMs += inMonth;
    const minutes = Math.floor(inMonth / MINUTE);
    const notCounted = (reason: string, lost = minutes): void => {
      result.notCounted.push({ entry: e.id, reason, minutes: lost });
    };
    if (t - s > 24 * 60 * MINUTE) {
      notCounted('the entry is longer than 24 hours');
      continue;
    }
    if (e.kind !== 'clinical-staff' && e.kind !== 'billing-practitioner') {
      notCounted(e.kind === 'non-clinical-staff' ? 'non-clinical staff time never counts' : 'the entry does not say who spent the time (performerType)');
      continue;
    }
    if (!e.plan || !planIds.has(e.plan)) {
      notCounted('not based on a CCM plan of the patient (time of another service, such as RPM or TCM, counts there)');
      continue;
    }
    // Clip to the month, to after consent, and out of inpatient stays.
    let from = Math.max(s, month.start);
    const to = Math.min(t, month.end);
    if (consentStart !== undefined && from < consentStart) {
      const before = Math.min(to, consentStart) - from;
      if (before > 0) {
        notCounted('before the patient consented', Math.floor(before / MINUTE));
      }
      from = Math.max(from, consentStart);
    }
    let counted = Math.max(0, to - from);
    for (const stay of f.inpatient) {
      const lost = overlapMs(from, to, ms(stay.start, -Infinity), endMs(stay.end, Infinity));
      if (lost > 0) {
        counted -= lost;
        notCounted('during an inpatient or SNF stay', Math.floor(lost / MINUTE));
      }
    }
    if (counted > 0) {
      countedBy.push({ id: e.id, kind: e.kind });
    }
    if (e.kind === 'billing-practitioner') {
      practitionerMs += Math.max(0, counted);
    } else {
      staffMs += Math.max(0, counted);
    }
  }
  result.loggedMinutes = Math.floor(loggedMs / MINUTE);
  const staff = Math.floor(staffMs / MINUTE);
  const practitioner = Math.floor(practitionerMs / MINUTE);
  const pooled = Math.floor((staffMs + practitionerMs) / MINUTE);
  result.countedMinutes = { staff, practitioner };

  // Next-code guidance for worklists, whatever the gates say.
  result.toNextCode = pcm
    ? nextStep(pooled, '99426', 30, '99427', 30, policy.pcmAddOnCap)
    : complex && pooled >= 60
      ? nextStep(pooled, '99487', 60, '99489', 30, policy.complexAddOnCap)
      : nextStep(pooled, '99490', 20, '99439', 20, policy.staffAddOnCap);

  // Gates, in the order a biller would ask.
  if (result.loggedMinutes === 0) {
    return skip('time-non-countable', 'No time was logged in the month.');
  }
  if (!billing) {
    return skip('not-enrolled', `No CCM care plan of the patient was in force in ${f.month} (a CarePlan with a ccm, complex-ccm or pcm category, active during the month).`);
  }
  if (f.consents.length === 0) {
    return skip('no-consent', `No CCM consent of the patient covers ${f.month}.`);
  }
  if (f.eligible === false) {
    return skip('not-eligible', `The patient was not CCM-eligible in ${f.month}. ${f.eligibilityReason ?? ''}`.trim());
  }
  const excluding = f.services.find((s) => isExcludingService(s.code));
  if (excluding) {
    return skip('excluded-service', `${excluding.code} (${excluding.source}) was billed for ${f.month}; CCM cannot be billed with it in the same month.`);
  }
  const rival = f.services.find((s) => CCM_CODES.includes(s.code) && s.performer && billing.author && s.performer !== billing.author);
  if (rival) {
    return skip('another-practitioner', `${rival.performer as string} already billed care management (${rival.code}, ${rival.source}) for ${f.month}; only one practitioner may bill CCM in a month.`);
  }
  if (staff + practitioner === 0) {
    return skip('time-non-countable', `None of the ${result.loggedMinutes} minutes logged in ${f.month} counts (${[...new Set(result.notCounted.map((n) => n.reason))].join('; ')}).`);
  }

  const options: BillingOption[] = [];
  if (pcm) {
    options.push(priced('pcm-practitioner', family(practitioner, '99424', 30, '99425', 30, policy.pcmAddOnCap), policy.fees, warnings));
    options.push(priced('pcm-staff', family(pooled, '99426', 30, '99427', 30, policy.pcmAddOnCap), policy.fees, warnings));
  } else {
    const complexLines = complex ? family(pooled, '99487', 60, '99489', 30, policy.complexAddOnCap) : [];
    options.push(
      priced('pooled-complex', complexLines, policy.fees, warnings, complex ? (complexLines.length ? undefined : `${pooled} pooled minutes are below the 60 complex CCM needs`) : 'no complex-ccm plan was active in the month'),
    );
    options.push(
      priced('pooled-staff', family(pooled, '99490', 20, '99439', 20, policy.staffAddOnCap), policy.fees, warnings, complexLines.length ? 'complex and non-complex CCM are never billed together, and the month reaches complex CCM' : undefined),
    );
    options.push(priced('practitioner-only', family(practitioner, '99491', 30, '99437', 30, policy.practitionerAddOnCap), policy.fees, warnings));
  }
  const billable = options.filter((o) => !o.notCompliant && o.lines.length > 0);
  if (billable.length === 0) {
    result.rejected = options;
    return skip('below-threshold', `${pooled} countable minutes in ${f.month} (${staff} clinical staff, ${practitioner} billing practitioner) do not reach a code's threshold.`);
  }
  // Highest payment; on a tie (or unpriced codes), more units of care first, then the order above.
  const best = [...billable].sort((a, b) => b.amount - a.amount || b.lines.reduce((n, l) => n + l.units, 0) - a.lines.reduce((n, l) => n + l.units, 0))[0];
  result.lines = best.lines;
  result.chosen = best.label;
  const practitionerOnly = best.label === 'practitioner-only' || best.label === 'pcm-practitioner';
  result.counted = countedBy.filter((c) => !practitionerOnly || c.kind === 'billing-practitioner').map((c) => c.id);
  result.rejected = options.filter((o) => o !== best);
  return result;
}
