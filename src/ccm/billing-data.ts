/**
 * Reads the facts of a patient-month for the billing rules (src/ccm/billing.ts) through the caller's
 * store: time entries, CCM plans and consents, eligibility, inpatient stays, and the services
 * (ChargeItems, Claim items) billed for the month.
 */
import type { CarePlan, ChargeItem, Claim, Condition, Consent, Encounter, Patient, Task } from '@medplum/fhirtypes';
import type { RequestContext } from '../fhir/types';
import { monthBounds, type MonthFacts, type PerformerKind, type Period, type PlanFacts, type ServiceFact, type TimeEntry } from './billing';
import { CCM_SYSTEM, PROGRAM_TOKENS, programOf } from './codes';
import { evaluateEligibility } from './eligibility';
import { readReference, searchAll } from './records';
import type { CcmService } from './service';

export const CPT = 'http://www.ama-assn.org/go/cpt';
const HCPCS = ['https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets', 'http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets'];
const KINDS: readonly string[] = ['clinical-staff', 'billing-practitioner', 'non-clinical-staff'];

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

/** Every completed time entry whose period overlaps the month, by patient id. */
export async function entriesOfMonth(ctx: RequestContext, month: string, patientId?: string): Promise<Map<string, TimeEntry[]>> {
  const b = monthBounds(month);
  const tasks = await searchAll<Task>(
    ctx,
    'Task',
    { code: `${CCM_SYSTEM}|time-entry`, status: 'completed', period: [`ge${b.first}`, `le${b.last}`], ...(patientId ? { patient: `Patient/${patientId}` } : {}) },
    5_000_000,
  );
  const out = new Map<string, TimeEntry[]>();
  for (const t of tasks) {
    const e = timeEntryOf(t);
    if (e) {
      const { patient, ...entry } = e;
      out.set(patient, [...(out.get(patient) ?? []), entry]);
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

/** The facts of one patient-month. */
export async function monthFacts(ctx: RequestContext, ccm: CcmService, patientId: string, month: string, entries: TimeEntry[]): Promise<MonthFacts> {
  const b = monthBounds(month);
  const subject = `Patient/${patientId}`;
  const plans: PlanFacts[] = (await searchAll<CarePlan>(ctx, 'CarePlan', { subject, category: PROGRAM_TOKENS })).map((p) => ({
    id: p.id as string,
    program: programOf(p.category) ?? 'ccm',
    status: p.status,
    author: p.author?.reference,
    period: p.period,
  }));
  const consents = (await searchAll<Consent>(ctx, 'Consent', { patient: subject }))
    .filter((c) => programOf(c.category) !== undefined && c.scope?.coding?.some((x) => x.code === 'treatment'))
    .filter((c) => (c.status === 'active' || (c.status === 'inactive' && c.provision?.period?.end)) && overlaps(c.provision?.period, b))
    .map((c) => ({ start: c.provision?.period?.start ?? c.dateTime, end: c.provision?.period?.end }));
  const inpatient = (await searchAll<Encounter>(ctx, 'Encounter', { subject, date: [`le${b.last}`] }))
    .filter((e) => isInpatient(e) && e.status !== 'cancelled' && e.status !== 'entered-in-error' && overlaps(e.period, b))
    .map((e) => ({ start: e.period?.start, end: e.period?.end }));
  const services: ServiceFact[] = [];
  for (const item of await searchAll<ChargeItem>(ctx, 'ChargeItem', { subject })) {
    const period = item.occurrencePeriod ?? (item.occurrenceDateTime ? { start: item.occurrenceDateTime, end: item.occurrenceDateTime } : undefined);
    if (item.status !== 'entered-in-error' && overlaps(period, b)) {
      codesOf(item.code).forEach((code) => services.push({ code, performer: item.performer?.[0]?.actor?.reference ?? item.enterer?.reference, source: `ChargeItem/${item.id as string}` }));
    }
  }
  for (const claim of await searchAll<Claim>(ctx, 'Claim', { patient: subject })) {
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
  let eligible: boolean | null = null;
  let eligibilityReason: string | undefined;
  const patient = await readReference<Patient>(ctx, subject);
  if (patient) {
    const conditions = await searchAll<Condition>(ctx, 'Condition', { subject });
    const e = evaluateEligibility(patient, conditions, eligibilityDay(patient, b), ccm.categories);
    const pcmOnly = plans.length > 0 && plans.every((p) => p.program === 'pcm');
    eligible = pcmOnly ? e.deceased === undefined && e.categories.length >= 1 : e.eligible;
    eligibilityReason = e.reason;
  } else {
    eligible = false;
    eligibilityReason = `${subject} is not known.`;
  }
  return { patient: patientId, month, entries, plans, consents, eligible, eligibilityReason, inpatient, services };
}
