/**
 * The alert Task, as pure functions. One open Task per patient and kind of alert (rule): the first
 * out-of-range reading opens it, later ones of the same kind are added to it.
 *
 * - `groupIdentifier` = `odl-alert-series|{patient id}:{rule}` ties the Tasks of one patient and
 *   kind together (searchable: `Task?group-identifier=...&status=requested,received,accepted,in-progress`
 *   finds the open one; a closed one stays in the series, and the next alert opens a new Task).
 * - `input`: one entry per out-of-range reading, oldest first: type `ccm#odl-reading`,
 *   `valueReference` the Observation (display: the alert text), and the time it was taken in the
 *   extension `odl-reading-effective` (so the list can be kept in order without reading them back).
 * - `focus`: the newest reading (by effective time, not by arrival). `description`: why, for the
 *   newest reading, and with several the count and the time of the first.
 * - `status` requested, `priority` urgent, `owner` the care coordinator (or the CareTeam), due
 *   (`restriction.period.end`) `dueWithinHours` after it was opened; `lastModified` when a reading
 *   was last added.
 */
import type { Task, TaskInput } from '@medplum/fhirtypes';
import type { Rule } from './rules';

export const CCM = 'http://continuum-ccm.org/fhir/CodeSystem/ccm';
export const SERIES_SYSTEM = 'http://continuum-ccm.org/fhir/NamingSystem/odl-alert-series';
export const READING_EFFECTIVE = 'http://continuum-ccm.org/fhir/StructureDefinition/odl-reading-effective';
export const OPEN_STATUSES = ['requested', 'received', 'accepted', 'in-progress'] as const;
const READING_CODE = 'odl-reading';

const RULE_NAMES: Record<Rule, string> = {
  'blood-pressure': 'High blood pressure',
  glucose: 'Glucose out of range',
  spo2: 'Low oxygen saturation',
  phq9: 'Severe depression score (PHQ-9)',
  pain: 'Severe pain',
  'weight-gain': 'Weight gain in heart failure',
};

/** One out-of-range reading as the Task lists it. */
export interface Reading {
  /** `Observation/{id}`. */
  observation: string;
  /** When it was taken (effective[x] as written). */
  effective: string;
  /** The alert text. */
  text: string;
}

export function seriesValue(patient: string, rule: Rule): string {
  return `${patient}:${rule}`;
}

/** The search that finds the open Task of a series. */
export function openTaskQuery(patient: string, rule: Rule): Record<string, string> {
  return { 'group-identifier': `${SERIES_SYSTEM}|${seriesValue(patient, rule)}`, status: OPEN_STATUSES.join(',') };
}

export function isOpen(task: Task): boolean {
  return (OPEN_STATUSES as readonly string[]).includes(task.status);
}

const isReadingInput = (i: TaskInput): boolean => (i.type.coding ?? []).some((c) => c.system === CCM && c.code === READING_CODE);

/** The readings a Task lists. */
export function readingsOf(task: Task): Reading[] {
  return (task.input ?? []).filter(isReadingInput).map((i) => ({
    observation: i.valueReference?.reference ?? '',
    effective: i.extension?.find((e) => e.url === READING_EFFECTIVE)?.valueDateTime ?? '',
    text: i.valueReference?.display ?? '',
  }));
}

const time = (r: Reading): number => {
  const t = Date.parse(r.effective.length === 10 ? `${r.effective}T00:00:00Z` : r.effective);
  return Number.isNaN(t) ? 0 : t;
};

const compare = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Oldest first; ties by Observation reference, so the order does not depend on arrival. */
function sorted(readings: Reading[]): Reading[] {
  return [...readings].sort((a, b) => time(a) - time(b) || compare(a.observation, b.observation));
}

/** The Task's description for its readings (oldest first). */
export function describe(readings: Reading[]): string {
  const newest = readings[readings.length - 1];
  if (readings.length <= 1) {
    return newest?.text ?? '';
  }
  return `${newest.text}; ${readings.length} out-of-range readings since ${readings[0].effective}`;
}

function inputOf(r: Reading): TaskInput {
  return {
    extension: [{ url: READING_EFFECTIVE, valueDateTime: r.effective }],
    type: { coding: [{ system: CCM, code: READING_CODE, display: 'Out-of-range reading' }] },
    valueReference: { reference: r.observation, display: r.text },
  };
}

/**
 * The Task with `added` readings merged in (a reading already listed is replaced, so a corrected
 * value updates its line): inputs, focus, description. `undefined` when nothing changes.
 */
export function withReadings(task: Task, added: Reading[], now: Date): Task | undefined {
  const byObservation = new Map(readingsOf(task).map((r) => [r.observation, r]));
  let changed = false;
  for (const r of added) {
    const old = byObservation.get(r.observation);
    if (!old || old.effective !== r.effective || old.text !== r.text) {
      byObservation.set(r.observation, r);
      changed = true;
    }
  }
  if (!changed) {
    return undefined;
  }
  const readings = sorted([...byObservation.values()]);
  const newest = readings[readings.length - 1];
  return {
    ...task,
    description: describe(readings),
    focus: { reference: newest.observation },
    input: [...(task.input ?? []).filter((i) => !isReadingInput(i)), ...readings.map(inputOf)],
    lastModified: now.toISOString(),
  };
}

/** A new alert Task for its first reading. */
export function newTask(args: { patient: string; rule: Rule; reading: Reading; owner?: Task['owner']; now: Date; dueWithinHours?: number }): Task {
  const { patient, rule, reading, owner, now } = args;
  const task: Task = {
    resourceType: 'Task',
    groupIdentifier: { system: SERIES_SYSTEM, value: seriesValue(patient, rule) },
    status: 'requested',
    intent: 'order',
    priority: 'urgent',
    code: { coding: [{ system: CCM, code: 'odl-alert', display: 'Review a patient-reported measurement' }] },
    reasonCode: { text: RULE_NAMES[rule] },
    for: { reference: `Patient/${patient}` },
    authoredOn: now.toISOString(),
    ...(owner ? { owner } : {}),
    ...(args.dueWithinHours !== undefined && args.dueWithinHours > 0
      ? { restriction: { period: { end: new Date(now.getTime() + args.dueWithinHours * 3_600_000).toISOString() } } }
      : {}),
  };
  return withReadings(task, [reading], now) as Task;
}

/**
 * Of several open Tasks of one series (two runs opened one each at the same moment), the one to
 * keep first: the earliest opened, then the smallest id. Every run picks the same one.
 */
export function keeperFirst(tasks: Task[]): Task[] {
  return [...tasks].sort((a, b) => compare(a.authoredOn ?? '', b.authoredOn ?? '') || compare(a.id ?? '', b.id ?? ''));
}
