/**
 * The ODL alert rules of ccm-domain.md section 6, as pure functions: an Observation (and, for
 * weight gain, the patient's earlier weights and whether the patient has heart failure) in, the
 * alerts it raises out. Also the pure parts around them: units, per-patient threshold overrides,
 * the heart-failure test and the choice of the care coordinator who owns the alert Task.
 *
 * Thresholds (all configurable in bot.json `config`, per patient on the active CCM CarePlan):
 *
 * | rule | alert when | unit |
 * |---|---|---|
 * | blood-pressure | systolic (8480-6) >= 180 or diastolic (8462-4) >= 120, components of 85354-9 | mm[Hg] (kPa converted) |
 * | glucose | 41653-7 < 54 or > 400 | mg/dL (mmol/L converted) |
 * | spo2 | 59408-5 or 2708-6 < 88 | % |
 * | phq9 | 44261-6 >= 20 | {score} |
 * | pain | 72514-3 >= 8 | {score} |
 * | weight-gain | heart-failure patients only: 29463-7 more than 1 kg above the lowest weight of the same or the previous day, or more than 2.3 kg above the lowest of the 7 days before | kg ([lb_av], g converted) |
 *
 * A value without a unit is taken to be in the table's unit; a unit the rule does not know raises no
 * alert and a warning instead (never a guess). Days are calendar days as the reading wrote them (the
 * date part of effectiveDateTime, the patient's local date); gains are rounded to the gram.
 */
import type { CareTeam, CodeableConcept, Condition, Device, Extension, HealthcareService, Observation, Organization, Patient, Practitioner, PractitionerRole, Quantity, Reference, RelatedPerson } from '@medplum/fhirtypes';

export interface Thresholds {
  systolicAtLeast: number;
  diastolicAtLeast: number;
  glucoseBelow: number;
  glucoseAbove: number;
  spo2Below: number;
  phq9AtLeast: number;
  painAtLeast: number;
  weightGainDayAboveKg: number;
  weightGainWeekAboveKg: number;
}

export const DEFAULT_THRESHOLDS: Thresholds = {
  systolicAtLeast: 180,
  diastolicAtLeast: 120,
  glucoseBelow: 54,
  glucoseAbove: 400,
  spo2Below: 88,
  phq9AtLeast: 20,
  painAtLeast: 8,
  weightGainDayAboveKg: 1,
  weightGainWeekAboveKg: 2.3,
};

export type Rule = 'blood-pressure' | 'glucose' | 'spo2' | 'phq9' | 'pain' | 'weight-gain';

export interface Alert {
  /** The kind of alert: readings of one kind for one patient share one open Task. */
  rule: Rule;
  /** Why, in words: the reading and the threshold it crossed. */
  text: string;
}

export const LOINC = 'http://loinc.org';
export const SNOMED = 'http://snomed.info/sct';
export const ICD10CM = 'http://hl7.org/fhir/sid/icd-10-cm';
export const CHRONIC_CATEGORY = 'http://continuum-ccm.org/fhir/StructureDefinition/chronic-category';
export const THRESHOLDS_EXTENSION = 'http://continuum-ccm.org/fhir/StructureDefinition/odl-thresholds';
export const WEIGHT = '29463-7';
const READING_STATUSES = ['final', 'amended', 'corrected'];

/** Whether a CodeableConcept carries one of the LOINC codes. */
export function hasLoinc(concept: CodeableConcept | undefined, ...codes: string[]): boolean {
  return (concept?.coding ?? []).some((c) => c.system === LOINC && codes.includes(c.code ?? ''));
}

/** Whether the Observation was reported by the patient (or a RelatedPerson): an ODL. */
export function isPatientReported(obs: Observation): boolean {
  return (obs.performer ?? []).some((p) => /^(.+\/)?(Patient|RelatedPerson)\/[^/]+(\/_history\/[^/]+)?$/.test(p.reference ?? ''));
}

/** Whether the Observation is a result to act on (not preliminary, cancelled or entered in error). */
export function isReading(obs: Observation): boolean {
  return READING_STATUSES.includes(obs.status);
}

/** The id of the Patient a reference names (`Patient/1`, `http://x/fhir/Patient/1/_history/2`). */
export function patientId(ref: Reference | undefined): string | undefined {
  return /^(?:.+\/)?Patient\/([^/]+)(?:\/_history\/[^/]+)?$/.exec(ref?.reference ?? '')?.[1];
}

// ---------------------------------------------------------------------------------------------
// Units

/** The unit each measurement is compared in, and what converts to it (UCUM code or unit text -> factor). */
export type Canonical = 'mm[Hg]' | 'kg' | 'mg/dL' | '%' | '{score}';
const CONVERSIONS: Record<Canonical, Record<string, number>> = {
  'mm[Hg]': { 'mm[Hg]': 1, mmhg: 1, 'mm hg': 1, kpa: 7.50061683 },
  kg: { kg: 1, g: 0.001, '[lb_av]': 0.45359237, lb: 0.45359237, lbs: 0.45359237 },
  // Glucose only: 1 mmol/L = 18.016 mg/dL.
  'mg/dL': { 'mg/dl': 1, 'mmol/l': 18.016 },
  '%': { '%': 1 },
  '{score}': { '{score}': 1, '1': 1, '{#}': 1, score: 1 },
};

/**
 * A Quantity's value in `unit`: the UCUM code if there is one, else the unit text; neither means
 * the value is already in `unit`. `problem` when the unit is not one that converts.
 */
export function valueIn(q: Quantity | undefined, unit: Canonical): { value?: number; problem?: string } {
  if (q?.value === undefined) {
    return {};
  }
  const written = q.code ?? q.unit;
  if (written === undefined) {
    return { value: q.value };
  }
  const table = CONVERSIONS[unit];
  const factor = table[written] ?? table[written.toLowerCase()];
  if (factor === undefined) {
    return { problem: `unit '${written}' is not ${unit} or one that converts to it` };
  }
  return { value: factor === 1 ? q.value : q.value * factor };
}

const round = (n: number, digits: number): number => Math.round(n * 10 ** digits) / 10 ** digits;

// ---------------------------------------------------------------------------------------------
// Single-reading rules

export interface Evaluation {
  alerts: Alert[];
  /** Readings that could not be checked (an unknown unit), in words. */
  warnings: string[];
}

export interface WeightContext {
  /** Whether the patient has heart failure (only then does weight gain alert). */
  heartFailure: boolean;
  /** The patient's other weight Observations (any order; the rule picks what counts). */
  previousWeights: Observation[];
}

function componentQuantity(obs: Observation, code: string): Quantity | undefined {
  return obs.component?.find((c) => hasLoinc(c.code, code))?.valueQuantity;
}

/** Every alert an ODL raises under `t` (weight gain only with `weight`), and what could not be checked. */
export function evaluate(obs: Observation, t: Thresholds = DEFAULT_THRESHOLDS, weight?: WeightContext): Evaluation {
  const alerts: Alert[] = [];
  const warnings: string[] = [];
  const read = (label: string, q: Quantity | undefined, unit: Canonical): number | undefined => {
    const r = valueIn(q, unit);
    if (r.problem) {
      warnings.push(`${label}: ${r.problem}; not checked`);
    }
    return r.value;
  };
  if (hasLoinc(obs.code, '85354-9')) {
    const sys = read('Systolic pressure', componentQuantity(obs, '8480-6'), 'mm[Hg]');
    const dia = read('Diastolic pressure', componentQuantity(obs, '8462-4'), 'mm[Hg]');
    if ((sys !== undefined && sys >= t.systolicAtLeast) || (dia !== undefined && dia >= t.diastolicAtLeast)) {
      const show = (n: number | undefined): string => (n === undefined ? '?' : String(round(n, 1)));
      alerts.push({ rule: 'blood-pressure', text: `Blood pressure ${show(sys)}/${show(dia)} mm[Hg] (alert at ${t.systolicAtLeast}/${t.diastolicAtLeast})` });
    }
  }
  if (hasLoinc(obs.code, '41653-7')) {
    const v = read('Glucose', obs.valueQuantity, 'mg/dL');
    if (v !== undefined && (v < t.glucoseBelow || v > t.glucoseAbove)) {
      alerts.push({ rule: 'glucose', text: `Glucose ${round(v, 1)} mg/dL (alert below ${t.glucoseBelow} or above ${t.glucoseAbove})` });
    }
  }
  if (hasLoinc(obs.code, '59408-5', '2708-6')) {
    const v = read('SpO2', obs.valueQuantity, '%');
    if (v !== undefined && v < t.spo2Below) {
      alerts.push({ rule: 'spo2', text: `SpO2 ${v} % (alert below ${t.spo2Below})` });
    }
  }
  if (hasLoinc(obs.code, '44261-6')) {
    const v = read('PHQ-9', obs.valueQuantity, '{score}');
    if (v !== undefined && v >= t.phq9AtLeast) {
      alerts.push({ rule: 'phq9', text: `PHQ-9 total ${v} (alert at ${t.phq9AtLeast})` });
    }
  }
  if (hasLoinc(obs.code, '72514-3')) {
    const v = read('Pain', obs.valueQuantity, '{score}');
    if (v !== undefined && v >= t.painAtLeast) {
      alerts.push({ rule: 'pain', text: `Pain ${v}/10 (alert at ${t.painAtLeast})` });
    }
  }
  if (hasLoinc(obs.code, WEIGHT) && weight?.heartFailure) {
    const r = weightGain(obs, weight.previousWeights, t);
    warnings.push(...r.warnings);
    if (r.alert) {
      alerts.push(r.alert);
    }
  }
  return { alerts, warnings };
}

/** The alerts an ODL raises under `t` (see `evaluate`). */
export function alertsFor(obs: Observation, t: Thresholds = DEFAULT_THRESHOLDS, weight?: WeightContext): Alert[] {
  return evaluate(obs, t, weight).alerts;
}

// ---------------------------------------------------------------------------------------------
// Weight gain (heart failure)

/** When an Observation was taken: the instant (ms) and the calendar day as written (YYYY-MM-DD). */
export function effectiveOf(obs: Observation): { at: number; day: string; written: string } | undefined {
  const written = obs.effectiveDateTime ?? obs.effectiveInstant ?? obs.effectivePeriod?.start ?? obs.effectivePeriod?.end;
  if (!written || !/^\d{4}-\d{2}-\d{2}/.test(written)) {
    return undefined;
  }
  const at = Date.parse(written.length === 10 ? `${written}T00:00:00Z` : written);
  return Number.isNaN(at) ? undefined : { at, day: written.slice(0, 10), written };
}

/** `day` (YYYY-MM-DD) moved by `days`. */
export function addDays(day: string, days: number): string {
  const d = new Date(`${day}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10);
}

interface Weight {
  id?: string;
  at: number;
  day: string;
  kg: number;
  shown: string;
}

function weightOf(obs: Observation): { weight?: Weight; problem?: string } {
  const when = effectiveOf(obs);
  const r = valueIn(obs.valueQuantity, 'kg');
  if (r.problem) {
    return { problem: `Weight: ${r.problem}; not checked` };
  }
  if (!when || r.value === undefined) {
    return {};
  }
  const unit = obs.valueQuantity?.code ?? obs.valueQuantity?.unit ?? 'kg';
  const shown = unit === 'kg' ? `${obs.valueQuantity?.value} kg` : `${round(r.value, 1)} kg (${obs.valueQuantity?.value} ${unit})`;
  return { weight: { id: obs.id, at: when.at, day: when.day, kg: r.value, shown } };
}

/**
 * The weight-gain rule for a heart-failure patient: the new weight against the lowest earlier
 * weight (a reading taken before it, final/amended/corrected, in kg or a unit that converts) of the
 * same or the previous calendar day ("in a day"), and of the 7 calendar days before ("in a week").
 * An alert when either gain is above its threshold; the day rule is named first.
 */
export function weightGain(obs: Observation, previous: Observation[], t: Thresholds = DEFAULT_THRESHOLDS): { alert?: Alert; warnings: string[] } {
  const warnings: string[] = [];
  const current = weightOf(obs);
  if (current.problem) {
    return { warnings: [current.problem] };
  }
  const now = current.weight;
  if (!now) {
    return { warnings };
  }
  const earlier: Weight[] = [];
  for (const p of previous) {
    if (p.id !== undefined && p.id === obs.id) {
      continue;
    }
    if (!isReading(p) || !hasLoinc(p.code, WEIGHT)) {
      continue;
    }
    const w = weightOf(p).weight;
    if (w && w.at < now.at) {
      earlier.push(w);
    }
  }
  const lowest = (fromDay: string): Weight | undefined =>
    earlier.filter((w) => w.day >= fromDay && w.day <= now.day).reduce<Weight | undefined>((min, w) => (min === undefined || w.kg < min.kg ? w : min), undefined);
  const check = (from: Weight | undefined, above: number, span: string): Alert | undefined => {
    if (!from) {
      return undefined;
    }
    const gain = round(now.kg - from.kg, 3);
    if (gain <= above) {
      return undefined;
    }
    return {
      rule: 'weight-gain',
      text:
        `Weight gain ${round(gain, 2)} kg ${span} for a heart-failure patient: ${now.shown} on ${now.day}, up from ${from.shown} on ${from.day} ` +
        `(alert above ${t.weightGainDayAboveKg} kg in a day or ${t.weightGainWeekAboveKg} kg in a week)`,
    };
  };
  const alert = check(lowest(addDays(now.day, -1)), t.weightGainDayAboveKg, 'in a day') ?? check(lowest(addDays(now.day, -7)), t.weightGainWeekAboveKg, 'in a week');
  return { alert, warnings };
}

// ---------------------------------------------------------------------------------------------
// Heart failure

export interface HeartFailureCodes {
  /** SNOMED CT codes (exact). */
  snomed: string[];
  /** ICD-10-CM code prefixes (dots ignored). */
  icd10cmPrefixes: string[];
}

export const DEFAULT_HEART_FAILURE: HeartFailureCodes = { snomed: ['84114007', '88805009', '42343007'], icd10cmPrefixes: ['I50'] };

/**
 * Whether one of the Conditions says the patient has heart failure: a code of `codes`, or a
 * clinician's chronic-category extension `heart-failure`; and the Condition is current (clinical
 * status absent or active/recurrence/relapse, not refuted or entered in error).
 */
export function hasHeartFailure(conditions: Condition[], codes: HeartFailureCodes = DEFAULT_HEART_FAILURE): boolean {
  const prefixes = codes.icd10cmPrefixes.map((p) => p.replace(/\./g, '').toUpperCase());
  return conditions.some((c) => {
    const clinical = c.clinicalStatus?.coding?.map((x) => x.code) ?? [];
    if (clinical.length > 0 && !clinical.some((x) => x === 'active' || x === 'recurrence' || x === 'relapse')) {
      return false;
    }
    if ((c.verificationStatus?.coding ?? []).some((x) => x.code === 'refuted' || x.code === 'entered-in-error')) {
      return false;
    }
    if ((c.extension ?? []).some((e) => e.url === CHRONIC_CATEGORY && e.valueCode === 'heart-failure')) {
      return true;
    }
    return (c.code?.coding ?? []).some(
      (x) =>
        (x.system === SNOMED && codes.snomed.includes(x.code ?? '')) ||
        (x.system === ICD10CM && prefixes.some((p) => (x.code ?? '').replace(/\./g, '').toUpperCase().startsWith(p))),
    );
  });
}

// ---------------------------------------------------------------------------------------------
// Per-patient thresholds

const THRESHOLD_UNITS: Record<keyof Thresholds, Canonical> = {
  systolicAtLeast: 'mm[Hg]',
  diastolicAtLeast: 'mm[Hg]',
  glucoseBelow: 'mg/dL',
  glucoseAbove: 'mg/dL',
  spo2Below: '%',
  phq9AtLeast: '{score}',
  painAtLeast: '{score}',
  weightGainDayAboveKg: 'kg',
  weightGainWeekAboveKg: 'kg',
};

/** The numeric thresholds of `config` (other keys, such as coordinatorRoles, left out). */
export function thresholdsOf(config: Record<string, unknown> | undefined): Partial<Thresholds> {
  const out: Partial<Thresholds> = {};
  for (const key of Object.keys(THRESHOLD_UNITS) as (keyof Thresholds)[]) {
    const v = config?.[key];
    if (typeof v === 'number' && Number.isFinite(v)) {
      out[key] = v;
    }
  }
  return out;
}

/**
 * Per-patient thresholds from the `odl-thresholds` extension (on the patient's active CCM
 * CarePlan): a complex extension whose sub-extensions are named like the bot.json keys
 * (`url` = `systolicAtLeast`, ...), each with a `valueDecimal`, `valueInteger` or `valueQuantity`
 * (a Quantity is converted to the threshold's unit: `weightGainDayAboveKg` = 3 [lb_av] is 1.36 kg).
 * What cannot be read is left out and named in `problems`.
 */
export function thresholdOverrides(extensions: Extension[] | undefined): { overrides: Partial<Thresholds>; problems: string[] } {
  const overrides: Partial<Thresholds> = {};
  const problems: string[] = [];
  for (const ext of (extensions ?? []).filter((e) => e.url === THRESHOLDS_EXTENSION)) {
    for (const sub of ext.extension ?? []) {
      const key = sub.url as keyof Thresholds;
      if (!Object.hasOwn(THRESHOLD_UNITS, key)) {
        problems.push(`odl-thresholds: '${sub.url}' is not a threshold`);
        continue;
      }
      const r = sub.valueQuantity ? valueIn(sub.valueQuantity, THRESHOLD_UNITS[key]) : { value: sub.valueDecimal ?? sub.valueInteger, problem: undefined };
      if (r.problem) {
        problems.push(`odl-thresholds: ${key}: ${r.problem}`);
      } else if (typeof r.value === 'number' && Number.isFinite(r.value)) {
        overrides[key] = r.value;
      } else {
        problems.push(`odl-thresholds: ${key} has no number (valueDecimal, valueInteger or valueQuantity)`);
      }
    }
  }
  return { overrides, problems };
}

// ---------------------------------------------------------------------------------------------
// Who owns the Task

export interface RoleCoding {
  system: string;
  code: string;
}

export const DEFAULT_COORDINATOR_ROLES: RoleCoding[] = [{ system: SNOMED, code: '768820003' }];

/**
 * The owner of an alert Task, from the patient's active CareTeams (in the order given): the first
 * participant whose role has one of `roles` and whose period (if any) covers `now`; failing that the
 * first CareTeam itself; failing that no owner. `why` says which, for the log.
 */
export function careCoordinator(teams: CareTeam[], roles: RoleCoding[], now: Date): { owner?: Reference<CareTeam | Practitioner | PractitionerRole | Organization | Patient | RelatedPerson | Device | HealthcareService>; why: string } {
  const t = now.getTime();
  for (const team of teams) {
    for (const p of team.participant ?? []) {
      const isCoordinator = (p.role ?? []).some((r) => (r.coding ?? []).some((c) => roles.some((x) => x.system === c.system && x.code === c.code)));
      const start = p.period?.start ? Date.parse(p.period.start) : -Infinity;
      const end = p.period?.end ? Date.parse(p.period.end.length === 10 ? `${p.period.end}T23:59:59.999Z` : p.period.end) : Infinity;
      if (isCoordinator && p.member?.reference && start <= t && t <= end) {
        return { owner: { reference: p.member.reference, ...(p.member.display ? { display: p.member.display } : {}) }, why: `care coordinator ${p.member.reference} of CareTeam/${team.id as string}` };
      }
    }
  }
  if (teams.length > 0) {
    const team = teams[0];
    return { owner: { reference: `CareTeam/${team.id as string}`, ...(team.name ? { display: team.name } : {}) }, why: `no care coordinator on the patient's active CareTeam: CareTeam/${team.id as string} owns the Task` };
  }
  return { why: 'the patient has no active CareTeam: the Task has no owner' };
}
