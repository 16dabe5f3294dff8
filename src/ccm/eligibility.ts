/**
 * The CCM eligibility rule (ccm-domain.md section 2), as a pure function of a Patient, their
 * Conditions and a date. `$ccm-eligibility`, the eligibility bot and the enrollment guard all use it.
 *
 * A patient is eligible on date D when alive on D and holding qualifying Conditions in at least two
 * different chronic categories. A Condition qualifies on D when its subject is the patient, its
 * verificationStatus is absent or not refuted / entered-in-error, its clinicalStatus is active,
 * recurrence or relapse, it has not abated on or before D, its onset (when given) is on or before D,
 * and its code (or its chronic-category extension) falls in a category.
 *
 * Dates are compared as written, at the precision given (a partial date such as `2024` or `2024-03`
 * counts as on or before any D it is a prefix of).
 */
import type { Condition, Patient } from '@medplum/fhirtypes';
import type { Projection } from '../store/projections';
import type { ChronicCategories } from './categories';
import { CHRONIC_CATEGORY_EXTENSION } from './codes';

/** The clinical statuses of a Condition that can qualify. */
export const CURRENT_CONDITION_STATUSES = ['active', 'recurrence', 'relapse'];

/**
 * What evaluateEligibility reads of a Condition, and nothing else: it answers the same for this as
 * for the whole Condition (a test holds it to that). Readers of every patient's Conditions (the
 * month close) read these instead of whole Conditions.
 */
export function eligibilityPartOf(c: Condition): Condition {
  const category = c.extension?.filter((e) => e.url === CHRONIC_CATEGORY_EXTENSION);
  return {
    resourceType: 'Condition',
    id: c.id,
    subject: c.subject && { reference: c.subject.reference },
    code: c.code && { text: c.code.text, coding: c.code.coding?.map((x) => ({ system: x.system, code: x.code, display: x.display })) },
    clinicalStatus: c.clinicalStatus,
    verificationStatus: c.verificationStatus,
    onsetDateTime: c.onsetDateTime,
    onsetPeriod: c.onsetPeriod,
    onsetAge: c.onsetAge,
    abatementDateTime: c.abatementDateTime,
    abatementPeriod: c.abatementPeriod,
    abatementAge: c.abatementAge,
    abatementString: c.abatementString,
    abatementRange: c.abatementRange,
    extension: category?.length ? category : undefined,
  };
}

/** Conditions as eligibility reads them, under the codes of their clinical status. */
export const ELIGIBILITY_CONDITION_PROJECTION: Projection<Condition, Condition> = {
  name: 'ccm-eligibility-condition',
  version: 1,
  types: ['Condition'],
  map: eligibilityPartOf,
  keys: (c) => (c.clinicalStatus?.coding ?? []).flatMap((x) => (x.code ? [x.code] : [])), // keysOf removes repeats
};

/** What evaluateEligibility (and the month's eligibility day) reads of a Patient. */
export function eligibilityPatientOf(p: Patient): Patient {
  return { resourceType: 'Patient', id: p.id, birthDate: p.birthDate, deceasedBoolean: p.deceasedBoolean, deceasedDateTime: p.deceasedDateTime };
}

export const ELIGIBILITY_PATIENT_PROJECTION: Projection<Patient, Patient> = {
  name: 'ccm-eligibility-patient',
  version: 1,
  types: ['Patient'],
  map: eligibilityPatientOf,
};

export interface QualifyingCondition {
  reference: string;
  category: string;
  /** The extension, or the coding that put it in its category. */
  basis: string;
  display?: string;
}

export interface Eligibility {
  patient: string;
  /** The date evaluated (YYYY-MM-DD). */
  date: string;
  eligible: boolean;
  /** Distinct qualifying categories, sorted. */
  categories: string[];
  /** Every qualifying Condition (two in one category are both listed; the category counts once). */
  conditions: QualifyingCondition[];
  /** When the patient is known to have died on or before the date (`unknown`: deceased, no date). */
  deceased?: string;
  /** Why not, in plain words (only when not eligible). */
  reason?: string;
  /** Conditions of the patient that did not count, and why. */
  notCounted: { reference: string; why: string }[];
}

const CURRENT = new Set(CURRENT_CONDITION_STATUSES);
const VOID = new Set(['refuted', 'entered-in-error']);

/** YYYY-MM-DD of a date or dateTime as written (partial dates stay partial). */
function datePart(value: string | undefined): string | undefined {
  return value ? value.slice(0, 10) : undefined;
}

/** Whether a (possibly partial) date is on or before D. */
function onOrBefore(value: string, d: string): boolean {
  return value <= d || d.startsWith(value);
}

/** birthDate + an Age in years, as a date; undefined when it cannot be worked out. */
function dateAtAge(birthDate: string | undefined, age: { value?: number; code?: string; unit?: string } | undefined): string | undefined {
  if (!birthDate || age?.value === undefined || !/^\d{4}-\d{2}-\d{2}$/.test(birthDate)) {
    return undefined;
  }
  const unit = age.code ?? age.unit ?? 'a';
  const years = unit === 'a' || /^y/i.test(unit) ? age.value : unit === 'mo' ? age.value / 12 : unit === 'd' ? age.value / 365.25 : undefined;
  if (years === undefined) {
    return undefined;
  }
  const born = new Date(`${birthDate}T00:00:00Z`);
  born.setUTCDate(born.getUTCDate() + Math.floor(years * 365.25));
  return born.toISOString().slice(0, 10);
}

function display(c: Condition): string | undefined {
  return c.code?.text ?? c.code?.coding?.find((x) => x.display)?.display;
}

/** Why a Condition does not qualify on D, or undefined when it does (the category is separate). */
function disqualified(c: Condition, patientRef: string, d: string, birthDate: string | undefined): string | undefined {
  if (c.subject?.reference !== patientRef) {
    return `its subject is not ${patientRef}`;
  }
  const verification = c.verificationStatus?.coding?.find((x) => x.code)?.code;
  if (verification && VOID.has(verification)) {
    return `it is ${verification}`;
  }
  const clinical = c.clinicalStatus?.coding?.find((x) => x.code)?.code;
  if (!clinical) {
    return 'it has no clinical status';
  }
  if (!CURRENT.has(clinical)) {
    return `it is ${clinical}`;
  }
  const abated =
    datePart(c.abatementDateTime) ??
    datePart(c.abatementPeriod?.start ?? c.abatementPeriod?.end) ??
    (c.abatementAge ? (dateAtAge(birthDate, c.abatementAge) ?? '0000') : undefined) ??
    (c.abatementString !== undefined || c.abatementRange !== undefined ? '0000' : undefined);
  if (abated && onOrBefore(abated, d)) {
    return abated === '0000' ? 'it has abated' : `it abated on ${abated}`;
  }
  const onset = datePart(c.onsetDateTime) ?? datePart(c.onsetPeriod?.start) ?? (c.onsetAge ? dateAtAge(birthDate, c.onsetAge) : undefined);
  if (onset && !onOrBefore(onset, d) && !onset.startsWith(d)) {
    return `its onset (${onset}) is after ${d}`;
  }
  return undefined;
}

/** The date D on which the patient is no longer alive, if known to be dead on D. */
function deathOnOrBefore(patient: Patient, d: string): string | undefined {
  if (patient.deceasedDateTime) {
    const died = datePart(patient.deceasedDateTime) as string;
    return onOrBefore(died, d) ? died : undefined;
  }
  return patient.deceasedBoolean === true ? 'unknown' : undefined;
}

const plural = (n: number, one: string, many: string): string => `${n} ${n === 1 ? one : many}`;

/** Applies the eligibility rule on date `d` (YYYY-MM-DD). */
export function evaluateEligibility(patient: Patient, conditions: readonly Condition[], d: string, categories: ChronicCategories): Eligibility {
  const patientRef = `Patient/${patient.id as string}`;
  const qualifying: QualifyingCondition[] = [];
  const notCounted: { reference: string; why: string }[] = [];
  for (const c of conditions) {
    const reference = `Condition/${c.id as string}`;
    const why = disqualified(c, patientRef, d, patient.birthDate);
    if (why) {
      notCounted.push({ reference, why });
      continue;
    }
    const cls = categories.ofCondition(c);
    if (!cls) {
      notCounted.push({ reference, why: `${display(c) ? `'${display(c) as string}' ` : ''}is not in a chronic-condition category` });
      continue;
    }
    qualifying.push({ reference, category: cls.category, basis: cls.basis, display: display(c) });
  }
  qualifying.sort((a, b) => a.category.localeCompare(b.category) || a.reference.localeCompare(b.reference));
  const distinct = [...new Set(qualifying.map((q) => q.category))].sort();
  const died = deathOnOrBefore(patient, d);
  const eligible = !died && distinct.length >= 2;
  let reason: string | undefined;
  if (!eligible) {
    const parts: string[] = [];
    if (died) {
      parts.push(died === 'unknown' ? 'The patient is recorded as deceased.' : `The patient died on ${died}.`);
    }
    if (distinct.length < 2) {
      parts.push(
        distinct.length === 0
          ? `The patient has no qualifying chronic condition on ${d}; CCM needs two or more in different categories.`
          : `The patient's qualifying chronic conditions on ${d} are all in one category (${distinct[0]}); CCM needs two or more in different categories.`,
      );
    }
    if (notCounted.length > 0) {
      const shown = notCounted.slice(0, 10).map((n) => `${n.reference}: ${n.why}`);
      parts.push(`Not counted (${plural(notCounted.length, 'condition', 'conditions')}): ${shown.join('; ')}${notCounted.length > 10 ? '; ...' : ''}.`);
    }
    reason = parts.join(' ');
  }
  return { patient: patient.id as string, date: d, eligible, categories: distinct, conditions: qualifying, deceased: died, reason, notCounted };
}
