/**
 * Goal achievement from patient-reported readings, as pure functions.
 *
 * A Goal target is tracked when it has a `measure` and a `detailQuantity` or `detailRange`. Its
 * readings are the patient's ODLs (performer the Patient or a RelatedPerson; status final, amended
 * or corrected) whose code, or the code of one of their components (systolic 8480-6 in a blood
 * pressure panel), is the measure; taken on or after the goal's `startDate` (when it has one) and
 * not after now; in the target's unit or one that converts (kg/[lb_av]/g, mm[Hg]/kPa, mg/dL/mmol/L).
 *
 * Meeting the target: `detailRange` low <= value <= high (either end may be absent);
 * `detailQuantity` with comparator `<`, `<=`, `>=`, `>`; without a comparator, equal at the
 * precision the target is written with (80 kg is met by 79.5 <= value < 80.5; 7.5 by 7.45..7.55),
 * as FHIR search compares quantities. Distance from the target: 0 inside, otherwise how far the value
 * is beyond the nearer bound.
 *
 * The status of one target, from its readings oldest first, N = `trendReadings` (default 3); the
 * first rule that applies:
 *
 * | # | readings | status |
 * |---|---|---|
 * | 1 | none | `in-progress` (no reading yet) |
 * | 2 | the latest meets the target | `achieved` |
 * | 3 | the one before the latest met it (the latest does not) | `worsening` (fell off the target) |
 * | 4 | fewer than N | `in-progress` (not enough readings for a trend) |
 * | 5 | each of the last N is nearer the target than the one before | `improving` |
 * | 6 | each of the last N is farther from the target than the one before | `worsening` |
 * | 7 | otherwise | `in-progress` (no steady trend) |
 *
 * As transitions: any status -> `achieved` on a reading that meets the target; `achieved` ->
 * `worsening` on the first one that does not; `worsening` -> `improving` only after N readings
 * each nearer than the last (one nearer reading after a fall gives `in-progress`); a status stays
 * while its rule holds. The status is a function of the readings alone, never of the order they
 * arrived in or of how often the bot ran.
 *
 * A goal with several tracked targets: `worsening` if any is, `achieved` if all are, `improving` if
 * all are improving or achieved, otherwise `in-progress`. Targets without a measure, a quantity or
 * range, or a unit that converts are not tracked (a goal with none of them is left alone).
 */
import type { CodeableConcept, Goal, GoalTarget, Observation, Quantity } from '@medplum/fhirtypes';

export const GOAL_ACHIEVEMENT = 'http://terminology.hl7.org/CodeSystem/goal-achievement';
export type Achievement = 'in-progress' | 'improving' | 'worsening' | 'achieved';
/** The codes this bot sets; a goal a clinician marked otherwise (not-attainable, ...) is left alone. */
export const MANAGED: readonly string[] = ['in-progress', 'improving', 'worsening', 'achieved'];
export const DISPLAY: Record<Achievement, string> = { 'in-progress': 'In Progress', improving: 'Improving', worsening: 'Worsening', achieved: 'Achieved' };
export const DEFAULT_TREND_READINGS = 3;
const READING_STATUSES = ['final', 'amended', 'corrected'];

// ---------------------------------------------------------------------------------------------
// Units

/** Dimensions and the factor to a base unit of each (UCUM code or unit text, lower-cased). */
const UNITS: Record<string, [dimension: string, factor: number]> = {
  kg: ['mass', 1],
  g: ['mass', 0.001],
  '[lb_av]': ['mass', 0.45359237],
  lb: ['mass', 0.45359237],
  lbs: ['mass', 0.45359237],
  'mm[hg]': ['pressure', 1],
  mmhg: ['pressure', 1],
  kpa: ['pressure', 7.50061683],
  'mg/dl': ['glucose', 1],
  'mmol/l': ['glucose', 18.016],
  h: ['duration', 60],
  min: ['duration', 1],
};

const unitOf = (q: Quantity): string | undefined => (q.code ?? q.unit)?.toLowerCase();

/**
 * `value` of `from` in the unit of `to`: the same unit, or both in one dimension of the table;
 * no unit on either side is taken as the other's. Undefined when they do not convert.
 */
export function convert(value: number, from: Quantity, to: Quantity): number | undefined {
  const a = unitOf(from);
  const b = unitOf(to);
  if (a === undefined || b === undefined || a === b) {
    return value;
  }
  const ua = UNITS[a];
  const ub = UNITS[b];
  if (!ua || !ub || ua[0] !== ub[0]) {
    return undefined;
  }
  return (value * ua[1]) / ub[1];
}

// ---------------------------------------------------------------------------------------------
// Targets

export interface Interval {
  low?: number;
  lowExclusive?: boolean;
  high?: number;
  highExclusive?: boolean;
  /** The unit the bounds are in (a Quantity of the target without a value). */
  unit: Quantity;
}

/** Decimal places a number was written with (80 -> 0, 7.5 -> 1, 1e-3 -> 3). */
function decimals(n: number): number {
  const s = String(n);
  const m = /^-?\d*(?:\.(\d+))?(?:e([+-]\d+))?$/i.exec(s);
  if (!m) {
    return 0;
  }
  return Math.max(0, (m[1]?.length ?? 0) - Number(m[2] ?? 0));
}

/** The values that meet a target, or undefined when it is not a quantity or range. */
export function intervalOf(target: GoalTarget): Interval | undefined {
  const r = target.detailRange;
  if (r && (r.low?.value !== undefined || r.high?.value !== undefined)) {
    const unit = { ...(r.low ?? r.high) } as Quantity;
    delete unit.value;
    const high = r.high?.value === undefined ? undefined : r.low && r.high ? convert(r.high.value, r.high, r.low) : r.high.value;
    return { low: r.low?.value, high, unit };
  }
  const q = target.detailQuantity;
  if (q?.value === undefined) {
    return undefined;
  }
  const unit = { ...q };
  delete unit.value;
  delete unit.comparator;
  switch (q.comparator) {
    case '<':
      return { high: q.value, highExclusive: true, unit };
    case '<=':
      return { high: q.value, unit };
    case '>':
      return { low: q.value, lowExclusive: true, unit };
    case '>=':
      return { low: q.value, unit };
    case undefined: {
      const half = 0.5 * 10 ** -decimals(q.value);
      return { low: q.value - half, high: q.value + half, highExclusive: true, unit };
    }
    default:
      return undefined; // not an R4 comparator (R5's 'ad', sufficient to achieve): not a bound
  }
}

export function meets(value: number, i: Interval): boolean {
  if (i.low !== undefined && (i.lowExclusive ? value <= i.low : value < i.low)) {
    return false;
  }
  if (i.high !== undefined && (i.highExclusive ? value >= i.high : value > i.high)) {
    return false;
  }
  return true;
}

/** How far the value is from the target (0 inside or on a bound), rounded to 1e-9 against float noise. */
export function distance(value: number, i: Interval): number {
  const d = Math.max(i.low !== undefined ? i.low - value : 0, i.high !== undefined ? value - i.high : 0, 0);
  return Math.round(d * 1e9) / 1e9;
}

// ---------------------------------------------------------------------------------------------
// Readings

const LOINC_LIKE = (a: { system?: string; code?: string }, b: { system?: string; code?: string }): boolean => a.system === b.system && a.code === b.code && a.code !== undefined;

export function sameCode(a: CodeableConcept | undefined, b: CodeableConcept | undefined): boolean {
  return (a?.coding ?? []).some((x) => (b?.coding ?? []).some((y) => LOINC_LIKE(x, y)));
}

/** Whether the Observation was reported by the patient (or a RelatedPerson): an ODL. */
export function isPatientReported(obs: Observation): boolean {
  return (obs.performer ?? []).some((p) => /^(.+\/)?(Patient|RelatedPerson)\/[^/]+(\/_history\/[^/]+)?$/.test(p.reference ?? ''));
}

/** Whether the Observation measures the target's measure (its code, or one of its components'). */
export function measures(obs: Observation, target: GoalTarget): boolean {
  return sameCode(obs.code, target.measure) || (obs.component ?? []).some((c) => sameCode(c.code, target.measure));
}

/** The Quantity an Observation gives for a measure (the value, or the matching component's). */
function quantityFor(obs: Observation, measure: CodeableConcept | undefined): Quantity | undefined {
  if (sameCode(obs.code, measure) && obs.valueQuantity) {
    return obs.valueQuantity;
  }
  return obs.component?.find((c) => sameCode(c.code, measure))?.valueQuantity;
}

export function effectiveTime(obs: Observation): number | undefined {
  const written = obs.effectiveDateTime ?? obs.effectiveInstant ?? obs.effectivePeriod?.end ?? obs.effectivePeriod?.start;
  if (!written) {
    return undefined;
  }
  const t = Date.parse(written.length === 10 ? `${written}T00:00:00Z` : written);
  return Number.isNaN(t) ? undefined : t;
}

export interface Reading {
  id?: string;
  at: number;
  /** In the target's unit. */
  value: number;
}

/**
 * The readings of a target among `observations` (any order), oldest first: ODLs of the measure,
 * results (final, amended, corrected), taken from the goal's start up to `now`, converted to the
 * target's unit (those that do not convert are left out).
 */
export function readingsFor(goal: Goal, target: GoalTarget, observations: Observation[], now: Date): Reading[] {
  const i = intervalOf(target);
  if (!i) {
    return [];
  }
  const from = goal.startDate ? Date.parse(`${goal.startDate}T00:00:00Z`) : -Infinity;
  const out: Reading[] = [];
  const seen = new Set<string>();
  for (const obs of observations) {
    if (!READING_STATUSES.includes(obs.status) || !isPatientReported(obs) || (obs.id && seen.has(obs.id))) {
      continue;
    }
    const at = effectiveTime(obs);
    const q = quantityFor(obs, target.measure);
    if (at === undefined || at < from || at > now.getTime() || q?.value === undefined) {
      continue;
    }
    const value = convert(q.value, q, i.unit);
    if (value === undefined) {
      continue;
    }
    if (obs.id) {
      seen.add(obs.id);
    }
    out.push({ id: obs.id, at, value });
  }
  return out.sort((a, b) => a.at - b.at || ((a.id ?? '') < (b.id ?? '') ? -1 : (a.id ?? '') > (b.id ?? '') ? 1 : 0));
}

// ---------------------------------------------------------------------------------------------
// Status

export interface TargetStatus {
  status: Achievement;
  /** Which rule of the table decided, in words. */
  why: string;
}

/** The status of one target from its readings, oldest first (the table in the header). */
export function targetStatus(i: Interval, readings: Reading[], n: number = DEFAULT_TREND_READINGS): TargetStatus {
  const size = Math.max(2, Math.floor(n));
  if (readings.length === 0) {
    return { status: 'in-progress', why: 'no reading yet' };
  }
  const latest = readings[readings.length - 1];
  if (meets(latest.value, i)) {
    return { status: 'achieved', why: `the latest reading (${round(latest.value)}) meets the target` };
  }
  if (readings.length >= 2 && meets(readings[readings.length - 2].value, i)) {
    return { status: 'worsening', why: `the latest reading (${round(latest.value)}) fell off the target the one before met` };
  }
  if (readings.length < size) {
    return { status: 'in-progress', why: `${readings.length} reading(s); a trend needs ${size}` };
  }
  const d = readings.slice(-size).map((r) => distance(r.value, i));
  const steps = d.slice(1).map((x, k) => x - d[k]);
  if (steps.every((s) => s < 0)) {
    return { status: 'improving', why: `each of the last ${size} readings is nearer the target` };
  }
  if (steps.every((s) => s > 0)) {
    return { status: 'worsening', why: `each of the last ${size} readings is farther from the target` };
  }
  return { status: 'in-progress', why: `no steady trend over the last ${size} readings` };
}

const round = (n: number): number => Math.round(n * 100) / 100;

/** The goal's status from its tracked targets' statuses (undefined: nothing tracked). */
export function combine(statuses: Achievement[]): Achievement | undefined {
  if (statuses.length === 0) {
    return undefined;
  }
  if (statuses.includes('worsening')) {
    return 'worsening';
  }
  if (statuses.every((s) => s === 'achieved')) {
    return 'achieved';
  }
  if (statuses.every((s) => s === 'achieved' || s === 'improving')) {
    return 'improving';
  }
  return 'in-progress';
}

/** The targets of a goal this bot tracks (a measure and a quantity or range). */
export function trackedTargets(goal: Goal): GoalTarget[] {
  return (goal.target ?? []).filter((t) => (t.measure?.coding ?? []).length > 0 && intervalOf(t) !== undefined);
}

/**
 * The goal's status from the Observations (any order, any code: each target takes its own), and why.
 * `status` undefined when the goal has no tracked target.
 */
export function goalStatus(goal: Goal, observations: Observation[], now: Date, n: number = DEFAULT_TREND_READINGS): { status?: Achievement; why: string[] } {
  const why: string[] = [];
  const statuses: Achievement[] = [];
  for (const target of trackedTargets(goal)) {
    const i = intervalOf(target) as Interval;
    const readings = readingsFor(goal, target, observations, now);
    const s = targetStatus(i, readings, n);
    statuses.push(s.status);
    const label = target.measure?.coding?.[0]?.display ?? target.measure?.coding?.[0]?.code ?? 'target';
    why.push(`${label}: ${s.status} (${s.why})`);
  }
  return { status: combine(statuses), why };
}

/** The goal's current achievement code (in goal-achievement), if any. */
export function currentStatus(goal: Goal): string | undefined {
  return goal.achievementStatus?.coding?.find((c) => c.system === GOAL_ACHIEVEMENT)?.code;
}

/** Whether the bot may set the status: none yet, or one of the codes it sets. */
export function managed(goal: Goal): boolean {
  if (!goal.achievementStatus) {
    return true;
  }
  const code = currentStatus(goal);
  return code !== undefined && MANAGED.includes(code);
}
