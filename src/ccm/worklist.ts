/**
 * `GET /$ccm-worklist`: the care team's work for the current month (server clock, UTC), most urgent
 * first. For a user whose fhirUser is a Practitioner (or PractitionerRole) on active CareTeams: the
 * patients of those care teams; for other user/ and system/ callers: every patient they may see.
 * Patient-bound callers are refused (the worklist is about many patients).
 *
 * Items (`item`, parts kind, patient, text, and what applies of focus, minutes, toNextCode,
 * nextCode, daysLeft, rank), in this order:
 * 1. `urgent-task`: open urgent Tasks (priority urgent, asap or stat), oldest first;
 * 2. `review-due`: active CCM plans whose review date has passed, most overdue first;
 * 3. `time`: enrolled patients with the month's minutes (from the running totals), the minutes to
 *    the next code and the days left; those who can still reach a code this month and need the
 *    fewest minutes per remaining day come first;
 * 4. `consent-missing`: eligible patients (stored determination) without an active CCM consent or plan;
 * 5. `not-enrolled`: eligible patients with consent but no active CCM plan.
 */
import type { CareTeam, MeasureReport, Observation, Parameters, ParametersParameter, Task } from '@medplum/fhirtypes';
import { forbidden } from '../errors';
import type { Handler, RequestContext } from '../fhir/types';
import type { Projection } from '../store/projections';
import { monthBounds } from './billing';
import { CONSENT_PROJECTION, PLAN_PROJECTION, TREATMENT } from './billing-data';
import { CCM_SYSTEM, PROGRAM_TOKENS } from './codes';
import { operationInput } from './eligibility-operation';
import { searchAll, searchProjected } from './records';

const OPEN = ['requested', 'received', 'accepted', 'ready', 'in-progress', 'on-hold'];
const MEASURE = 'http://continuum-ccm.org/fhir/Measure/ccm-minutes';
const CPT = 'http://www.ama-assn.org/go/cpt';
const LIMIT = 1_000_000;

export interface WorkItem {
  kind: 'urgent-task' | 'review-due' | 'time' | 'consent-missing' | 'not-enrolled';
  patient: string;
  text: string;
  focus?: string;
  minutes?: number;
  toNextCode?: number;
  nextCode?: string;
  daysLeft?: number;
  /** Sort key within the kind (smaller first). */
  order: number | string;
}

const KIND_ORDER: WorkItem['kind'][] = ['urgent-task', 'review-due', 'time', 'consent-missing', 'not-enrolled'];
const subjectId = (ref: string | undefined): string | undefined => (ref?.startsWith('Patient/') ? ref.slice('Patient/'.length) : undefined);
const URGENT = ['urgent', 'asap', 'stat'];

/** An open urgent Task as the worklist lists it. */
export const URGENT_TASK_PROJECTION: Projection<Task, { id: string; patient: string; status: string; text: string; order: string }> = {
  name: 'ccm-urgent-task',
  version: 1,
  types: ['Task'],
  map: (t) => {
    const patient = subjectId(t.for?.reference);
    if (!patient || !URGENT.includes(t.priority ?? '')) {
      return undefined;
    }
    const text = t.description ?? t.code?.text ?? t.code?.coding?.[0]?.display ?? 'Urgent task';
    return { id: t.id as string, patient, status: t.status, text, order: t.authoredOn ?? t.meta?.lastUpdated ?? '' };
  },
  keys: (t) => [t.status],
};

/** A running total (bots/ccm-time-totals) as the worklist reads it. */
export const MONTH_TOTAL_PROJECTION: Projection<MeasureReport, { patient: string; start?: string; minutes?: number; toNext?: number; nextCode?: string }> = {
  name: 'ccm-month-total',
  version: 1,
  types: ['MeasureReport'],
  map: (r) => {
    const patient = subjectId(r.subject?.reference);
    if (!patient || r.measure !== MEASURE) {
      return undefined;
    }
    const group = (code: string): NonNullable<MeasureReport['group']>[number] | undefined => r.group?.find((g) => g.code?.coding?.[0]?.code === code);
    const next = group('minutes-to-next-code');
    return {
      patient,
      start: r.period?.start,
      minutes: group('counted-minutes')?.measureScore?.value,
      toNext: next?.measureScore?.value,
      nextCode: next?.code?.coding?.find((c) => c.system === CPT)?.code,
    };
  },
  keys: (r) => [r.start?.slice(0, 7) ?? ''],
};

/** A stored eligibility determination (bots/ccm-eligibility): whose, and its value. */
export const DETERMINATION_PROJECTION: Projection<Observation, { patient: string; value?: string }> = {
  name: 'ccm-determination',
  version: 1,
  types: ['Observation'],
  map: (o) => {
    const patient = subjectId(o.subject?.reference);
    if (!patient || !o.code?.coding?.some((c) => c.system === CCM_SYSTEM && c.code === 'ccm-eligibility')) {
      return undefined;
    }
    return { patient, value: o.valueCodeableConcept?.coding?.find((c) => c.system === CCM_SYSTEM)?.code };
  },
  keys: (d) => [d.value ?? ''],
};

/** The patients of the caller's care teams, or undefined for "every patient the caller may see". */
async function myPatients(ctx: RequestContext): Promise<Set<string> | undefined> {
  const principal = ctx.access?.principal;
  if (principal?.patient) {
    throw forbidden('$ccm-worklist covers many patients; a patient-bound token cannot use it');
  }
  const me = principal?.fhirUser?.replace(/^.*\/((Practitioner|PractitionerRole)\/[^/]+)$/, '$1');
  if (!me || !/^(Practitioner|PractitionerRole)\//.test(me)) {
    return undefined;
  }
  const teams = await searchAll<CareTeam>(ctx, 'CareTeam', { participant: me, status: 'active' }, LIMIT);
  return new Set(teams.map((t) => subjectId(t.subject?.reference)).filter((x): x is string => x !== undefined));
}

export async function worklist(ctx: RequestContext): Promise<WorkItem[]> {
  const mine = await myPatients(ctx);
  const now = ctx.now();
  const today = now.toISOString().slice(0, 10);
  const month = today.slice(0, 7);
  const bounds = monthBounds(month);
  const daysLeft = Math.max(0, Math.ceil((bounds.end - now.getTime()) / 86_400_000));
  const include = (patient: string | undefined): patient is string => patient !== undefined && (!mine || mine.has(patient));
  const items: WorkItem[] = [];

  // Independent reads, sent together: the store works on one while this thread parses another.
  // The month's totals are asked by one date condition (periods ending on or after the first day;
  // the start is checked below): two conditions on one date parameter are two joins of its index.
  // Each read asks for the projection (src/store/projections.ts) of its matches: the few values
  // used here, not 40,000 whole resources.
  const [plansRead, urgent, reports, eligibility, consentsRead] = await Promise.all([
    searchProjected(ctx, 'CarePlan', PLAN_PROJECTION, { keys: ['active'], narrow: { status: 'active', category: PROGRAM_TOKENS }, limit: LIMIT }),
    searchProjected(ctx, 'Task', URGENT_TASK_PROJECTION, { keys: OPEN, narrow: { priority: URGENT.join(','), status: OPEN.join(',') }, limit: LIMIT }),
    searchProjected(ctx, 'MeasureReport', MONTH_TOTAL_PROJECTION, { keys: [month], narrow: { measure: MEASURE, period: `ge${bounds.first}` }, limit: LIMIT }),
    searchProjected(ctx, 'Observation', DETERMINATION_PROJECTION, { keys: ['eligible'], narrow: { code: `${CCM_SYSTEM}|ccm-eligibility` }, limit: LIMIT }),
    searchProjected(ctx, 'Consent', CONSENT_PROJECTION, { keys: ['active'], narrow: { status: 'active', scope: TREATMENT }, limit: LIMIT }),
  ]);
  const consents = consentsRead.filter((c) => c.treatment);
  const plans = plansRead.filter((p) => include(p.patient));
  const enrolled = new Map(plans.map((p) => [p.patient, p]));

  for (const t of urgent) {
    if (include(t.patient)) {
      items.push({ kind: 'urgent-task', patient: t.patient, focus: `Task/${t.id}`, text: t.text, order: t.order });
    }
  }

  for (const p of plans) {
    const due = p.reviewDate;
    if (due && due <= today) {
      items.push({ kind: 'review-due', patient: p.patient, focus: `CarePlan/${p.id}`, text: `Care plan review was due on ${due}.`, order: due });
    }
  }

  const totals = new Map<string, (typeof reports)[number]>();
  for (const r of reports) {
    if (r.start === bounds.first) {
      totals.set(r.patient, r);
    }
  }
  for (const [patient, plan] of enrolled) {
    const r = totals.get(patient);
    const minutes = r?.minutes ?? 0;
    const toNext = r ? r.toNext : plan.program === 'pcm' ? 30 : 20;
    const nextCode = r ? r.nextCode : plan.program === 'pcm' ? '99426' : '99490';
    const text =
      toNext !== undefined && nextCode
        ? `${minutes} minutes logged, ${toNext} to the next code (${nextCode}), ${daysLeft} day${daysLeft === 1 ? '' : 's'} left.`
        : `${minutes} minutes logged; every code of the month is earned.`;
    // Needing few minutes per remaining day means the code is within reach: do that work first.
    const perDay = toNext === undefined ? Infinity : toNext / Math.max(1, daysLeft);
    items.push({ kind: 'time', patient, focus: `CarePlan/${plan.id as string}`, minutes, toNextCode: toNext, nextCode, daysLeft, text, order: perDay });
  }

  const eligible = eligibility
    .map((o) => o.patient)
    .filter(include)
    .filter((p) => !enrolled.has(p));
  if (eligible.length > 0) {
    const consented = new Set(
      consents.filter((c) => !c.period?.end || c.period.end.slice(0, 10) >= today).map((c) => c.patient),
    );
    for (const patient of eligible.sort()) {
      items.push(
        consented.has(patient)
          ? { kind: 'not-enrolled', patient, text: 'Eligible and consented, but no active CCM care plan.', order: patient }
          : { kind: 'consent-missing', patient, text: 'Eligible for CCM; no CCM consent is on record.', order: patient },
      );
    }
  }

  return items.sort((a, b) => KIND_ORDER.indexOf(a.kind) - KIND_ORDER.indexOf(b.kind) || (a.order < b.order ? -1 : a.order > b.order ? 1 : a.patient.localeCompare(b.patient)));
}

export function worklistParameters(items: WorkItem[], month: string): Parameters {
  const parameter: ParametersParameter[] = [{ name: 'month', valueString: month }];
  items.forEach((item, i) => {
    const part: ParametersParameter[] = [
      { name: 'rank', valueInteger: i + 1 },
      { name: 'kind', valueCode: item.kind },
      { name: 'patient', valueReference: { reference: `Patient/${item.patient}` } },
      { name: 'text', valueString: item.text },
    ];
    if (item.focus) {
      part.push({ name: 'focus', valueReference: { reference: item.focus } });
    }
    if (item.minutes !== undefined) {
      part.push({ name: 'minutes', valueInteger: item.minutes });
    }
    if (item.toNextCode !== undefined) {
      part.push({ name: 'toNextCode', valueInteger: item.toNextCode });
    }
    if (item.nextCode) {
      part.push({ name: 'nextCode', valueCoding: { system: CPT, code: item.nextCode } });
    }
    if (item.daysLeft !== undefined) {
      part.push({ name: 'daysLeft', valueInteger: item.daysLeft });
    }
    parameter.push({ name: 'item', part });
  });
  return { resourceType: 'Parameters', parameter };
}

export const worklistOperation: Handler = async (req, ctx) => {
  operationInput(req, []);
  const items = await worklist(ctx);
  return { status: 200, resource: worklistParameters(items, ctx.now().toISOString().slice(0, 7)) };
};
