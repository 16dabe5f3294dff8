/**
 * Reads the facts of a patient-month for the billing rules (src/ccm/billing.ts) through the caller's
 * store: time entries, CCM plans and consents, eligibility, inpatient stays, and the services
 * (ChargeItems, Claim items) billed for the month.
 */
import type { CarePlan, ChargeItem, Claim, Condition, Consent, Encounter, Patient, Task } from '@medplum/fhirtypes';
import type { RequestContext } from '../fhir/types';
import { monthBounds, type MonthFacts, type PerformerKind, type Period, type PlanFacts, type ServiceFact, type TimeEntry } from './billing';
import { CCM_SYSTEM, PROGRAM_TOKENS, programOf, REVIEW_DATE_EXTENSION } from './codes';
import { CURRENT_CONDITION_STATUSES, ELIGIBILITY_CONDITION_PROJECTION, ELIGIBILITY_PATIENT_PROJECTION, evaluateEligibility } from './eligibility';
import { readReference, searchAll, searchProjected } from './records';
import type { CcmService } from './service';
import { monthsOf, type Projection } from '../store/projections';

export const CPT = 'http://www.ama-assn.org/go/cpt';
const HCPCS = ['https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets', 'http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets'];
const KINDS: readonly string[] = ['clinical-staff', 'billing-practitioner', 'non-clinical-staff'];
const LIMIT = 10_000_000;
export const TREATMENT = 'http://terminology.hl7.org/CodeSystem/consentscope|treatment';

/** The time entry a Task records, if it is one (code ccm|time-entry, completed). */
export function timeEntryOf(task: Task): (TimeEntry & { patient: string }) | undefined {
  const isEntry = task.code?.coding?.some((c) => c.system === CCM_SYSTEM && c.code === 'time-entry');
  const patient = task.for?.reference;
  if (!isEntry || task.status !== 'completed' || !patient?.startsWith('Patient/') || !task.executionPeriod?.start || !task.executionPeriod.end) {
    return undefined;
  }
  const kind = task.performerType?.flatMap((c) => c.coding ?? []).find((c) => c.system === CCM_SYSTEM && KINDS.includes(c.code ?? ''))?.code as PerformerKind | undefined;
  return {
    id: `Task/${task.id as string}`,
    patient: patient.slice('Patient/'.length),
    start: task.executionPeriod.start,
    end: task.executionPeriod.end,
    kind,
    plan: task.basedOn?.find((b) => b.reference?.startsWith('CarePlan/'))?.reference,
    owner: task.owner?.reference,
  };
}

/** Time entries as billing reads them: the month close reads 200,000 of these. */
export const TIME_ENTRY_PROJECTION: Projection<Task, TimeEntry & { patient: string }> = {
  name: 'ccm-time-entry',
  version: 1,
  types: ['Task'],
  map: timeEntryOf,
  // The months it overlaps (as written, like `overlaps`).
  keys: (e) => monthsOf(e.start, e.end),
};

const patientOf = (ref: string | undefined): string | undefined => (ref?.startsWith('Patient/') ? ref.slice('Patient/'.length) : undefined);
const periodOf = (p: Period | undefined): Period | undefined => (p ? { start: p.start, end: p.end } : undefined);

/** A CCM, complex CCM or PCM plan of a patient (billing's PlanFacts, and the worklist's review date). */
export interface ProjectedPlan extends PlanFacts {
  patient: string;
  /** The care-plan-review-date extension. */
  reviewDate?: string;
}

export const PLAN_PROJECTION: Projection<CarePlan, ProjectedPlan> = {
  name: 'ccm-plan',
  version: 1,
  types: ['CarePlan'],
  map: (p) => {
    const program = programOf(p.category);
    const patient = patientOf(p.subject?.reference);
    if (!program || !patient) {
      return undefined;
    }
    const reviewDate = p.extension?.find((e) => e.url === REVIEW_DATE_EXTENSION)?.valueDate;
    return { id: p.id as string, patient, program, status: p.status, author: p.author?.reference, period: periodOf(p.period), reviewDate };
  },
  keys: (p) => [p.status],
};

/** A patient's consent to a care-management program. */
export interface ProjectedConsent {
  patient: string;
  status: string;
  /** Whether its scope is treatment. */
  treatment: boolean;
  /** provision.period */
  period?: Period;
  dateTime?: string;
}

export const CONSENT_PROJECTION: Projection<Consent, ProjectedConsent> = {
  name: 'ccm-consent',
  version: 1,
  types: ['Consent'],
  map: (c) => {
    const patient = patientOf(c.patient?.reference);
    if (programOf(c.category) === undefined || !patient) {
      return undefined;
    }
    const treatment = c.scope?.coding?.some((x) => x.code === 'treatment') === true;
    return { patient, status: c.status, treatment, period: periodOf(c.provision?.period), dateTime: c.dateTime };
  },
  keys: (c) => [c.status],
};

/**
 * Every completed time entry whose period overlaps the month, by patient id. The store is asked
 * only for Tasks whose period ends in the month or later (one date condition: see MONTH_ON); that
 * they are completed time entries in the month is checked here (timeEntryOf, overlaps), which costs
 * less than more index joins over every Task of the month.
 */
export async function entriesOfMonth(ctx: RequestContext, month: string, patientId?: string): Promise<Map<string, TimeEntry[]>> {
  const b = monthBounds(month);
  const found = await searchProjected(ctx, 'Task', TIME_ENTRY_PROJECTION, {
    keys: [month, 'long'],
    query: patientId ? { patient: `Patient/${patientId}` } : {},
    narrow: { period: `ge${b.first}` },
    limit: LIMIT,
  });
  const out = new Map<string, TimeEntry[]>();
  for (const { patient, ...entry } of found) {
    if (!overlaps({ start: entry.start, end: entry.end }, b)) {
      continue;
    }
    const list = out.get(patient);
    if (list) {
      list.push(entry);
    } else {
      out.set(patient, [entry]);
    }
  }
  return out;
}

const codesOf = (concept: { coding?: { system?: string; code?: string }[] } | undefined): string[] =>
  (concept?.coding ?? []).filter((c) => c.code && (c.system === CPT || HCPCS.includes(c.system ?? ''))).map((c) => c.code as string);

function overlaps(p: Period | undefined, b: { first: string; last: string }): boolean {
  return (!p?.start || p.start.slice(0, 10) <= b.last) && (!p?.end || p.end.slice(0, 10) >= b.first);
}

/** Day D on which eligibility in the month is judged: its last day, or the day before a death in it. */
function eligibilityDay(patient: Patient, b: { first: string; last: string }): string {
  const died = patient.deceasedDateTime?.slice(0, 10);
  if (died && died >= b.first && died <= b.last) {
    const d = new Date(`${died}T00:00:00Z`);
    d.setUTCDate(d.getUTCDate() - 1);
    return d.toISOString().slice(0, 10) < b.first ? b.first : d.toISOString().slice(0, 10);
  }
  return b.last;
}

const INPATIENT_CLASSES = ['IMP', 'ACUTE', 'NONAC'];
/** SNOMED 'skilled nursing facility' style Encounter types are matched by text too. */
function isInpatient(e: Encounter): boolean {
  if (INPATIENT_CLASSES.includes(e.class?.code ?? '')) {
    return true;
  }
  const text = JSON.stringify([e.type, e.serviceType, e.hospitalization?.admitSource]).toLowerCase();
  return /skilled nursing|\bsnf\b/.test(text);
}

/** `items` grouped by the patient id of `ref(item)` (`Patient/x` or `x`). */
export const byRef = <T>(items: T[], ref: (t: T) => string | undefined): Map<string, T[]> => {
  const out = new Map<string, T[]>();
  for (const item of items) {
    const id = ref(item)?.replace(/^Patient\//, '');
    if (id) {
      const list = out.get(id);
      if (list) {
        list.push(item);
      } else {
        out.set(id, [item]);
      }
    }
  }
  return out;
};

/** What a month's billing reads: the facts of each patient-month, and every ChargeItem of the month. */
export interface MonthRecords {
  facts: MonthFacts[];
  /** ChargeItems whose occurrence falls in the month, of every patient read (the month close's own among them). */
  chargeItems: ChargeItem[];
}

/**
 * The facts of the patient-months of `month`: of one patient (`only`), or of every patient with a
 * time entry in the month. For one patient each search is narrowed to them; for all, each kind of
 * resource is read in one search and grouped, so a month close costs a handful of searches rather
 * than several per patient.
 */
export async function loadMonth(ctx: RequestContext, ccm: CcmService, month: string, only?: string): Promise<MonthFacts[]> {
  return (await readMonth(ctx, ccm, month, only)).facts;
}

/**
 * loadMonth, with the month's ChargeItems as read (the month close compares its own with them).
 *
 * MONTH_ON: resources are asked by one date condition, "ends on or after the month's first day"
 * (what a month close, run just after the month, reads little more than the month with), and the
 * rest of "overlaps the month" is checked in memory. Two conditions on one date parameter are two
 * joins of the date index, which PostgreSQL may nest (each row scanning the other's range) when
 * its statistics predate the rows: 44 s instead of 0.7 s for a month's 16,000 ChargeItems.
 */
export async function readMonth(ctx: RequestContext, ccm: CcmService, month: string, only?: string): Promise<MonthRecords> {
  const b = monthBounds(month);
  const one = (param: string): Record<string, string> => (only ? { [param]: `Patient/${only}` } : {});
  // The reads are independent: sent together, the store works on one while this thread parses
  // another (the embedded store's PostgreSQL has its own thread; a server has a pool).
  const [entries, chargeItemsRead, plansRead, consentsRead, encountersRead, claimsRead, conditionsRead] = await Promise.all([
    entriesOfMonth(ctx, month, only),
    searchAll<ChargeItem>(ctx, 'ChargeItem', { ...one('subject'), occurrence: `ge${b.first}` }, LIMIT),
    searchProjected(ctx, 'CarePlan', PLAN_PROJECTION, { query: one('subject'), narrow: { category: PROGRAM_TOKENS }, limit: LIMIT }),
    searchProjected(ctx, 'Consent', CONSENT_PROJECTION, { query: one('patient'), narrow: { scope: TREATMENT }, limit: LIMIT }),
    searchAll<Encounter>(ctx, 'Encounter', { ...one('subject'), date: `ge${b.first}` }, LIMIT),
    // A claim for a month's services is made during or after that month.
    searchAll<Claim>(ctx, 'Claim', { ...one('patient'), created: `ge${b.first}` }, LIMIT),
    // What eligibility reads of each Condition (not whole Conditions: the month close reads every patient's).
    searchProjected(ctx, 'Condition', ELIGIBILITY_CONDITION_PROJECTION, {
      keys: CURRENT_CONDITION_STATUSES,
      query: one('subject'),
      narrow: { 'clinical-status': CURRENT_CONDITION_STATUSES.join(',') },
      limit: LIMIT,
    }),
  ]);
  const ids = only ? [only] : [...entries.keys()].sort();
  const allChargeItems = chargeItemsRead.filter((c) =>
    overlaps(c.occurrencePeriod ?? (c.occurrenceDateTime ? { start: c.occurrenceDateTime, end: c.occurrenceDateTime } : undefined), b),
  );
  if (ids.length === 0) {
    return { facts: [], chargeItems: allChargeItems };
  }
  const plans = byRef(plansRead, (p) => p.patient);
  const consents = byRef(consentsRead, (c) => c.patient);
  const encounters = byRef(encountersRead, (e) => e.subject?.reference);
  const chargeItems = byRef(allChargeItems, (c) => c.subject?.reference);
  const claims = byRef(claimsRead, (c) => c.patient?.reference);
  const conditions = byRef(conditionsRead, (c) => c.subject?.reference);
  const patients = new Map<string, Patient>();
  if (only) {
    const p = await readReference<Patient>(ctx, `Patient/${only}`);
    if (p) {
      patients.set(only, p);
    }
  } else {
    for (const p of await searchProjected(ctx, 'Patient', ELIGIBILITY_PATIENT_PROJECTION, { ids, limit: LIMIT })) {
      patients.set(p.id as string, p);
    }
  }
  const facts = ids.map((id) =>
    monthFactsOf(ccm, id, month, entries.get(id) ?? [], {
      plans: plans.get(id) ?? [],
      consents: consents.get(id) ?? [],
      encounters: encounters.get(id) ?? [],
      chargeItems: chargeItems.get(id) ?? [],
      claims: claims.get(id) ?? [],
      conditions: conditions.get(id) ?? [],
      patient: patients.get(id),
    }),
  );
  return { facts, chargeItems: allChargeItems };
}

interface Records {
  plans: ProjectedPlan[];
  consents: ProjectedConsent[];
  encounters: Encounter[];
  chargeItems: ChargeItem[];
  claims: Claim[];
  conditions: Condition[];
  patient?: Patient;
}

/** The facts of one patient-month from the patient's records. */
function monthFactsOf(ccm: CcmService, patientId: string, month: string, entries: TimeEntry[], r: Records): MonthFacts {
  const b = monthBounds(month);
  const subject = `Patient/${patientId}`;
  const plans: PlanFacts[] = r.plans.map((p) => ({ id: p.id, program: p.program, status: p.status, author: p.author, period: p.period }));
  const consents = r.consents
    .filter((c) => c.treatment && (c.status === 'active' || (c.status === 'inactive' && c.period?.end)) && overlaps(c.period, b))
    .map((c) => ({ start: c.period?.start ?? c.dateTime, end: c.period?.end }));
  const inpatient = r.encounters
    .filter((e) => isInpatient(e) && e.status !== 'cancelled' && e.status !== 'entered-in-error' && overlaps(e.period, b))
    .map((e) => ({ start: e.period?.start, end: e.period?.end }));
  const services: ServiceFact[] = [];
  for (const item of r.chargeItems) {
    const period = item.occurrencePeriod ?? (item.occurrenceDateTime ? { start: item.occurrenceDateTime, end: item.occurrenceDateTime } : undefined);
    if (item.status !== 'entered-in-error' && overlaps(period, b)) {
      codesOf(item.code).forEach((code) => services.push({ code, performer: item.performer?.[0]?.actor?.reference ?? item.enterer?.reference, source: `ChargeItem/${item.id as string}` }));
    }
  }
  for (const claim of r.claims) {
    if (claim.status === 'entered-in-error' || claim.status === 'cancelled') {
      continue;
    }
    for (const item of claim.item ?? []) {
      const period = item.servicedPeriod ?? (item.servicedDate ? { start: item.servicedDate, end: item.servicedDate } : claim.billablePeriod);
      if (overlaps(period, b)) {
        codesOf(item.productOrService).forEach((code) => services.push({ code, performer: claim.provider?.reference, source: `Claim/${claim.id as string}` }));
      }
    }
  }
  let eligible: boolean | null;
  let eligibilityReason: string | undefined;
  if (r.patient) {
    const e = evaluateEligibility(r.patient, r.conditions, eligibilityDay(r.patient, b), ccm.categories);
    const pcmOnly = plans.length > 0 && plans.every((p) => p.program === 'pcm');
    eligible = pcmOnly ? e.deceased === undefined && e.categories.length >= 1 : e.eligible;
    eligibilityReason = e.reason;
  } else {
    eligible = false;
    eligibilityReason = `${subject} is not known.`;
  }
  return { patient: patientId, month, entries, plans, consents, eligible, eligibilityReason, inpatient, services };
}
