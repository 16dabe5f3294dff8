/**
 * odl-alert: when a patient (or a related person) reports an Observation of Daily Living outside
 * the thresholds of ccm-domain.md section 6, makes sure ONE open urgent Task for the patient's care
 * coordinator says so: the first out-of-range reading of a kind opens the Task, later ones of the
 * same kind are added to it (task.ts) until someone closes it (completed, cancelled, ...); the next
 * one then opens a new Task.
 *
 * - Thresholds: rules.ts defaults < bot.json `config` < the `odl-thresholds` extension on the
 *   patient's active CCM CarePlan (the most recently updated one that has it).
 * - Weight gain: only for a patient with heart failure (a current Condition, rules.ts), against the
 *   patient's earlier patient-reported weights of the 7 days before.
 * - Owner: the participant of the patient's active CareTeam whose role is one of
 *   `config.coordinatorRoles`; else the CareTeam; else none (logged). Set when the Task is opened (and
 *   on a later reading if it has none); a Task someone reassigned keeps its owner.
 *
 * Post-commit, at least once, and runs may overlap: adding a reading is idempotent (a Task that
 * lists it already is left alone), updates use If-Match on the version read (a lost race re-reads and
 * retries), the Task is opened with a conditional create on its series, and if two runs opened one
 * each at the same moment (possible on a PostgreSQL server) the next run to see both merges the
 * later into the earlier and cancels it.
 */
import type { CarePlan, CareTeam, Condition, Observation, Task } from '@medplum/fhirtypes';
import type { BotContext, BotEvent } from '../../src/bots/types';
import {
  careCoordinator,
  DEFAULT_COORDINATOR_ROLES,
  DEFAULT_HEART_FAILURE,
  DEFAULT_THRESHOLDS,
  effectiveOf,
  evaluate,
  hasHeartFailure,
  hasLoinc,
  isPatientReported,
  isReading,
  LOINC,
  patientId,
  thresholdOverrides,
  thresholdsOf,
  THRESHOLDS_EXTENSION,
  WEIGHT,
  addDays,
  type Alert,
  type HeartFailureCodes,
  type RoleCoding,
  type Thresholds,
  type WeightContext,
} from './rules';
import { isOpen, keeperFirst, newTask, openTaskQuery, readingsOf, withReadings, type Reading } from './task';

export { SERIES_SYSTEM } from './task';

export interface OdlAlertConfig extends Partial<Thresholds> {
  /** Role codings that make a CareTeam participant the care coordinator (default SNOMED 768820003). */
  coordinatorRoles?: RoleCoding[];
  /** What counts as heart failure for the weight-gain rule. */
  heartFailure?: HeartFailureCodes;
  /** The Task is due this many hours after it is opened (`restriction.period.end`); 0 for no due date. */
  dueWithinHours?: number;
}

const CCM = 'http://continuum-ccm.org/fhir/CodeSystem/ccm';
const PROGRAMS = ['ccm', 'complex-ccm', 'pcm'].map((p) => `${CCM}|${p}`).join(',');
const ATTEMPTS = 5;

const status = (err: unknown): number | undefined => (err as { status?: number }).status;

/** Defaults < bot.json < the patient's active CCM CarePlan. */
async function thresholdsFor(patient: string, ctx: BotContext<OdlAlertConfig>): Promise<Thresholds> {
  const plans = await ctx.fhir.searchResources<CarePlan>('CarePlan', {
    subject: `Patient/${patient}`,
    status: 'active',
    category: PROGRAMS,
    _sort: '-_lastUpdated',
    _count: 20,
  });
  const plan = plans.find((p) => (p.extension ?? []).some((e) => e.url === THRESHOLDS_EXTENSION));
  const { overrides, problems } = thresholdOverrides(plan?.extension);
  problems.forEach((p) => ctx.log.warn(`Patient/${patient}: ${p}`));
  return { ...DEFAULT_THRESHOLDS, ...thresholdsOf(ctx.config as Record<string, unknown>), ...overrides };
}

/** Heart failure and, when the patient has it, the patient-reported weights of the 8 days before. */
async function weightContext(patient: string, obs: Observation, ctx: BotContext<OdlAlertConfig>): Promise<WeightContext> {
  const conditions = await ctx.fhir.searchResources<Condition>('Condition', { subject: `Patient/${patient}`, _count: 1000 });
  const heartFailure = hasHeartFailure(conditions, ctx.config.heartFailure ?? DEFAULT_HEART_FAILURE);
  const day = effectiveOf(obs)?.day;
  if (!heartFailure || !day) {
    return { heartFailure, previousWeights: [] };
  }
  // A day of margin for readings written in other time zones; the rule itself picks by calendar day.
  const weights = await ctx.fhir.searchResources<Observation>('Observation', {
    subject: `Patient/${patient}`,
    code: `${LOINC}|${WEIGHT}`,
    date: [`ge${addDays(day, -8)}`, `le${addDays(day, 1)}`],
    status: 'final,amended,corrected',
    _count: 1000,
  });
  return { heartFailure, previousWeights: weights.filter(isPatientReported) };
}

export async function handler(event: BotEvent, ctx: BotContext<OdlAlertConfig>): Promise<Task[]> {
  const obs = event.resource as Observation | undefined;
  if (event.trigger === 'delete' || obs?.resourceType !== 'Observation' || !isPatientReported(obs) || !isReading(obs)) {
    return [];
  }
  const patient = patientId(obs.subject);
  if (!patient) {
    ctx.log.warn(`Observation/${obs.id as string}: the subject is not a Patient; no alert`);
    return [];
  }
  const thresholds = await thresholdsFor(patient, ctx);
  const weight = hasLoinc(obs.code, WEIGHT) ? await weightContext(patient, obs, ctx) : undefined;
  const { alerts, warnings } = evaluate(obs, thresholds, weight);
  warnings.forEach((w) => ctx.log.warn(`Observation/${obs.id as string}: ${w}`));
  if (alerts.length === 0) {
    return [];
  }
  let coordinator: { owner?: Task['owner']; why: string } | undefined;
  const owner = async (): Promise<{ owner?: Task['owner']; why: string }> => {
    if (!coordinator) {
      const teams = await ctx.fhir.searchResources<CareTeam>('CareTeam', { subject: `Patient/${patient}`, status: 'active', _sort: '-_lastUpdated', _count: 50 });
      coordinator = careCoordinator(teams, ctx.config.coordinatorRoles ?? DEFAULT_COORDINATOR_ROLES, ctx.now());
    }
    return coordinator;
  };
  const tasks: Task[] = [];
  for (const alert of alerts) {
    const reading: Reading = { observation: `Observation/${obs.id as string}`, effective: effectiveOf(obs)?.written ?? ctx.now().toISOString(), text: alert.text };
    tasks.push(await record(patient, alert, reading, ctx, owner));
  }
  return tasks;
}

/** Adds the reading to the open Task of its series, opening one if there is none. */
async function record(patient: string, alert: Alert, reading: Reading, ctx: BotContext<OdlAlertConfig>, owner: () => Promise<{ owner?: Task['owner']; why: string }>): Promise<Task> {
  const query = openTaskQuery(patient, alert.rule);
  const now = ctx.now();
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    const open = keeperFirst((await ctx.fhir.searchResources<Task>('Task', { ...query, _count: 50 })).filter(isOpen));
    try {
      if (open.length > 1) {
        await merge(open, ctx);
        continue;
      }
      if (open.length === 0) {
        const who = await owner();
        const task = await ctx.fhir.createResourceIfNoneExist<Task>(
          newTask({ patient, rule: alert.rule, reading, owner: who.owner, now, dueWithinHours: ctx.config.dueWithinHours }),
          query,
        );
        if (readingsOf(task).some((r) => r.observation === reading.observation && r.text === reading.text)) {
          ctx.log.info(`Task/${task.id as string} opened for ${task.owner?.reference ?? 'no owner'} (${who.why}): ${alert.text}`);
          return task;
        }
        continue; // another run opened it first: add the reading to that one
      }
      const task = open[0];
      let next = withReadings(task, [reading], now);
      if (!next) {
        return task; // already listed (a retry, or an update that changed nothing the Task shows)
      }
      if (!task.owner) {
        const who = await owner();
        if (who.owner) {
          next = { ...next, owner: who.owner };
        }
      }
      const updated = await ctx.fhir.updateResource<Task>(next, { ifMatch: task.meta?.versionId as string });
      ctx.log.info(`Task/${task.id as string}: ${readingsOf(updated).length} reading(s); ${alert.text}`);
      return updated;
    } catch (err) {
      if (status(err) !== 412) {
        throw err;
      }
      // Another run wrote first (If-Match), or opened a second Task (If-None-Exist matched two): look again.
    }
  }
  throw new Error(`The open ${alert.rule} Task of Patient/${patient} kept changing under ${ATTEMPTS} attempts; retrying later`);
}

/** Two open Tasks of one series: the readings of the later go into the earlier, the later is cancelled. */
async function merge(open: Task[], ctx: BotContext<OdlAlertConfig>): Promise<void> {
  const [keeper, ...others] = open;
  const merged = withReadings(keeper, others.flatMap(readingsOf), ctx.now());
  if (merged) {
    await ctx.fhir.updateResource<Task>(merged, { ifMatch: keeper.meta?.versionId as string });
  }
  for (const other of others) {
    await ctx.fhir.updateResource<Task>(
      { ...other, status: 'cancelled', statusReason: { text: `Duplicate: merged into Task/${keeper.id as string}` }, lastModified: ctx.now().toISOString() },
      { ifMatch: other.meta?.versionId as string },
    );
    ctx.log.info(`Task/${other.id as string} merged into Task/${keeper.id as string}`);
  }
}
