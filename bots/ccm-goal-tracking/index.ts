/**
 * ccm-goal-tracking: keeps Goal.achievementStatus of the patient's active Goals current from the
 * patient's own readings (ODLs). Post-commit on an ODL written or deleted: every active Goal of the
 * patient with a target measuring what the ODL measures is re-evaluated by the rule of rules.ts
 * (the last `trendReadings` readings of each target) and written only when its status changes.
 * `$execute` with a `patient` parameter re-evaluates every active Goal of that patient.
 *
 * The status is a function of the stored readings, not of the event: a retried, late or
 * out-of-order run computes the same answer. Writes use If-Match on the version read: a Goal changed
 * in between (by a clinician or an overlapping run) is read again and re-evaluated.
 * A Goal whose achievementStatus a clinician set to a code this bot does not set (not-attainable,
 * no-change, sustaining, ...) is left alone.
 */
import type { Goal, Observation, Parameters, ParametersParameter } from '@medplum/fhirtypes';
import type { BotContext, BotEvent } from '../../src/bots/types';
import { currentStatus, DEFAULT_TREND_READINGS, DISPLAY, GOAL_ACHIEVEMENT, goalStatus, isPatientReported, managed, measures, trackedTargets } from './rules';

export interface GoalTrackingConfig {
  /** N: readings a trend needs (default 3). */
  trendReadings?: number;
  /** Most recent Observations fetched per measure (default 100). */
  lookback?: number;
}

type Change = 'updated' | 'unchanged' | 'left-alone' | 'untracked' | 'gone';
const ATTEMPTS = 3;

function patientOf(ref: string | undefined): string | undefined {
  return /^(?:.+\/)?Patient\/([^/]+)(?:\/_history\/[^/]+)?$/.exec(ref ?? '')?.[1];
}

function inputPatient(input: unknown): string | undefined {
  const p = input as Parameters | undefined;
  if (p?.resourceType !== 'Parameters') {
    return undefined;
  }
  const v = p.parameter?.find((x) => x.name === 'patient');
  return patientOf(v?.valueReference?.reference) ?? (v?.valueString ?? v?.valueId)?.replace(/^Patient\//, '');
}

/** The patient's recent Observations of every measure the goal tracks. */
async function observationsFor(goal: Goal, patient: string, ctx: BotContext<GoalTrackingConfig>): Promise<Observation[]> {
  const codes = new Set<string>();
  for (const t of trackedTargets(goal)) {
    (t.measure?.coding ?? []).filter((c) => c.code).forEach((c) => codes.add(c.system ? `${c.system}|${c.code as string}` : (c.code as string)));
  }
  if (codes.size === 0) {
    return [];
  }
  // combo-code: the Observation's code or a component's (systolic within a blood pressure panel).
  return ctx.fhir.searchResources<Observation>('Observation', {
    subject: `Patient/${patient}`,
    'combo-code': [...codes].join(','),
    status: 'final,amended,corrected',
    _sort: '-date',
    _count: ctx.config.lookback ?? 100,
  });
}

async function track(start: Goal, patient: string, ctx: BotContext<GoalTrackingConfig>): Promise<{ change: Change; status?: string }> {
  let goal = start;
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    const observations = await observationsFor(goal, patient, ctx);
    const { status, why } = goalStatus(goal, observations, ctx.now(), ctx.config.trendReadings ?? DEFAULT_TREND_READINGS);
    if (!status) {
      return { change: 'untracked' };
    }
    if (!managed(goal)) {
      ctx.log.info(`Goal/${goal.id as string}: achievementStatus '${goal.achievementStatus?.coding?.[0]?.code ?? goal.achievementStatus?.text ?? ''}' was set by a person; left alone (the readings say ${status})`);
      return { change: 'left-alone', status: currentStatus(goal) };
    }
    if (currentStatus(goal) === status) {
      return { change: 'unchanged', status };
    }
    try {
      await ctx.fhir.updateResource<Goal>(
        { ...goal, achievementStatus: { coding: [{ system: GOAL_ACHIEVEMENT, code: status, display: DISPLAY[status] }] } },
        { ifMatch: goal.meta?.versionId as string },
      );
      ctx.log.info(`Goal/${goal.id as string}: ${currentStatus(goal) ?? 'none'} -> ${status}; ${why.join('; ')}`);
      return { change: 'updated', status };
    } catch (err) {
      if ((err as { status?: number }).status !== 412) {
        throw err;
      }
      goal = await ctx.fhir.readResource<Goal>('Goal', goal.id as string);
      if (goal.lifecycleStatus !== 'active') {
        return { change: 'gone' };
      }
    }
  }
  throw new Error(`Goal/${goal.id as string} kept changing under ${ATTEMPTS} attempts; retrying later`);
}

export async function handler(event: BotEvent, ctx: BotContext<GoalTrackingConfig>): Promise<Parameters> {
  let patient: string | undefined;
  let obs: Observation | undefined;
  if (event.trigger === 'manual') {
    patient = inputPatient(event.input);
  } else {
    obs = event.resource as Observation | undefined;
    if (obs?.resourceType === 'Observation' && isPatientReported(obs)) {
      patient = patientOf(obs.subject?.reference);
    }
  }
  const parameter: ParametersParameter[] = [];
  if (!patient) {
    return { resourceType: 'Parameters', parameter };
  }
  const goals = await ctx.fhir.searchResources<Goal>('Goal', { subject: `Patient/${patient}`, 'lifecycle-status': 'active', _count: 1000 });
  for (const goal of goals) {
    const targets = trackedTargets(goal);
    if (targets.length === 0 || (obs && !targets.some((t) => measures(obs as Observation, t)))) {
      continue;
    }
    const r = await track(goal, patient, ctx);
    parameter.push({
      name: 'goal',
      part: [
        { name: 'goal', valueReference: { reference: `Goal/${goal.id as string}` } },
        { name: 'change', valueCode: r.change },
        ...(r.status ? [{ name: 'status', valueCode: r.status }] : []),
      ],
    });
  }
  return { resourceType: 'Parameters', parameter };
}
