/**
 * The enrollment requirements of a CCM CarePlan (ccm-domain.md sections 2, 3 and 7): what must hold
 * on the date a plan becomes `active`. `POST CarePlan/$ccm-enrollment-check` answers them for a
 * CarePlan in the body; the enrollment-guard bot (bots/ccm-enrollment-guard) calls it before a plan
 * is stored as active and refuses the write (422) with every unmet requirement.
 *
 * Requirements, on date D (today on the server's clock):
 * 1. the patient is eligible on D (two or more chronic categories; for a PCM plan, one);
 * 2. an active CCM Consent: scope treatment, a CCM program in its category, status active, a
 *    provision period that covers D;
 * 3. an initiating visit when one is required: unless the billing practitioner (the plan's author)
 *    saw the patient face to face (a finished Encounter they took part in) in the 12 months before D
 *    (policy), CCM cannot start;
 * 4. no other practitioner holds (or held, for a plan ended in that month) a CCM CarePlan for the
 *    patient in D's month.
 */
import type { CarePlan, Consent, Encounter, OperationOutcome, OperationOutcomeIssue, Patient, Condition } from '@medplum/fhirtypes';
import { badRequest } from '../errors';
import type { Handler, RequestContext } from '../fhir/types';
import { PROGRAM_TOKENS, programOf } from './codes';
import { evaluateEligibility } from './eligibility';
import { ccmOf } from './eligibility-operation';
import { readReference, searchAll, today } from './records';

export interface Requirement {
  key: 'eligible' | 'consent' | 'initiating-visit' | 'one-practitioner' | 'billing-practitioner' | 'patient';
  text: string;
  expression: string;
}

function monthBounds(d: string): { start: string; end: string; label: string } {
  const [y, m] = d.split('-').map(Number);
  const last = new Date(Date.UTC(y, m, 0)).getUTCDate();
  const mm = String(m).padStart(2, '0');
  return { start: `${y}-${mm}-01`, end: `${y}-${mm}-${String(last).padStart(2, '0')}`, label: `${y}-${mm}` };
}

function monthsBefore(d: string, months: number): string {
  const t = new Date(`${d}T00:00:00Z`);
  t.setUTCMonth(t.getUTCMonth() - months);
  return t.toISOString().slice(0, 10);
}

const day = (v: string | undefined): string | undefined => v?.slice(0, 10);

/** Whether a period (dates as written) covers day d. */
function covers(period: { start?: string; end?: string } | undefined, d: string): boolean {
  const start = day(period?.start);
  const end = day(period?.end);
  return (!start || start <= d) && (!end || end >= d);
}

/** Whether a period overlaps [from, to] (days). */
function overlaps(period: { start?: string; end?: string } | undefined, from: string, to: string): boolean {
  const start = day(period?.start);
  const end = day(period?.end);
  return (!start || start <= to) && (!end || end >= from);
}

/** Every unmet requirement for `plan` to be active on `d` (empty: all met). */
export async function unmetRequirements(ctx: RequestContext, plan: CarePlan, d: string): Promise<Requirement[]> {
  const ccm = ccmOf(ctx);
  const unmet: Requirement[] = [];
  const program = programOf(plan.category) ?? 'ccm';
  const patientRef = plan.subject?.reference ?? '';
  const patient = patientRef.startsWith('Patient/') ? await readReference<Patient>(ctx, patientRef) : undefined;
  if (!patient) {
    return [{ key: 'patient', text: `The plan's subject (${patientRef || 'none'}) is not a known Patient.`, expression: 'CarePlan.subject' }];
  }

  const conditions = await searchAll<Condition>(ctx, 'Condition', { subject: patientRef });
  const e = evaluateEligibility(patient, conditions, d, ccm.categories);
  const needed = program === 'pcm' ? 1 : 2;
  const died = e.deceased !== undefined;
  if (died || e.categories.length < needed) {
    unmet.push({
      key: 'eligible',
      text:
        program === 'pcm'
          ? `The patient is not eligible for principal care management on ${d}: ${died ? 'the patient is recorded as deceased' : 'no qualifying chronic condition'}.`
          : `The patient is not eligible for CCM on ${d}. ${e.reason ?? ''}`.trim(),
      expression: 'CarePlan.subject',
    });
  }

  const consents = await searchAll<Consent>(ctx, 'Consent', { patient: patientRef, status: 'active', scope: 'http://terminology.hl7.org/CodeSystem/consentscope|treatment' });
  const consent = consents.find((c) => programOf(c.category) !== undefined && covers(c.provision?.period, d));
  if (!consent) {
    unmet.push({
      key: 'consent',
      text: `No active CCM consent is on record for the patient on ${d} (a Consent with scope treatment, a CCM program in its category, status active and a provision period covering ${d}).`,
      expression: 'CarePlan.subject',
    });
  }

  const author = plan.author?.reference;
  if (!author) {
    unmet.push({
      key: 'billing-practitioner',
      text: 'The plan names no billing practitioner (CarePlan.author), so the initiating-visit and one-practitioner rules cannot be checked.',
      expression: 'CarePlan.author',
    });
  } else {
    if (ccm.policy.requireInitiatingVisit) {
      const since = monthsBefore(d, ccm.policy.initiatingVisitMonths);
      const encounters = await searchAll<Encounter>(ctx, 'Encounter', { subject: patientRef, status: 'finished', participant: author });
      const seen = encounters.some((enc) => {
        const at = day(enc.period?.end ?? enc.period?.start);
        return at !== undefined && at >= since && at <= d && !ccm.policy.nonFaceToFaceClasses.includes(enc.class?.code ?? '');
      });
      if (!seen) {
        unmet.push({
          key: 'initiating-visit',
          text: `No initiating visit: ${author} has not seen the patient face to face in the ${ccm.policy.initiatingVisitMonths} months before ${d}. An annual wellness visit, IPPE or face-to-face E/M visit (a finished Encounter with them) must come first.`,
          expression: 'CarePlan.author',
        });
      }
    }
    const month = monthBounds(d);
    // Plans of other practitioners in force at any time of the month: active ones, and ones that
    // ended in it (an ended plan without period.end ended when it was last written).
    const others = await searchAll<CarePlan>(ctx, 'CarePlan', { subject: patientRef, status: 'active,completed,revoked', category: PROGRAM_TOKENS });
    const held = others.find((p) => {
      if (p.id === plan.id || !p.author?.reference || p.author.reference === author) {
        return false;
      }
      const period = p.status === 'active' || p.period?.end ? p.period : { ...p.period, end: p.meta?.lastUpdated };
      return overlaps(period, month.start, month.end);
    });
    if (held) {
      unmet.push({
        key: 'one-practitioner',
        text: `${held.author?.reference as string} ${held.status === 'active' ? 'already holds an active' : `held a (now ${held.status})`} CCM care plan (CarePlan/${held.id as string}) for the patient in ${month.label}; only one practitioner may furnish and bill CCM in a calendar month.`,
        expression: 'CarePlan.author',
      });
    }
  }
  return unmet;
}

/** The requirements as an OperationOutcome: one error issue per unmet requirement, or one information issue. */
export function requirementsOutcome(unmet: Requirement[], d: string): OperationOutcome {
  if (unmet.length === 0) {
    return { resourceType: 'OperationOutcome', issue: [{ severity: 'information', code: 'informational', diagnostics: `Every CCM enrollment requirement is met on ${d}.` }] };
  }
  const issue: OperationOutcomeIssue[] = unmet.map((u) => ({
    severity: 'error',
    code: 'business-rule',
    details: { coding: [{ system: 'http://continuum-ccm.org/fhir/CodeSystem/ccm-enrollment-requirement', code: u.key }], text: u.text },
    diagnostics: u.text,
    expression: [u.expression],
  }));
  return { resourceType: 'OperationOutcome', issue };
}

/**
 * `POST CarePlan/$ccm-enrollment-check` with a CarePlan (or Parameters with `resource`) in the body:
 * an OperationOutcome listing every unmet requirement (200 either way; `date` optional).
 */
export const enrollmentCheckOperation: Handler = async (req, ctx) => {
  let plan = req.body as CarePlan | { resourceType: 'Parameters'; parameter?: { name: string; resource?: CarePlan; valueDate?: string }[] } | undefined;
  let d: string | undefined = req.query.date?.[0];
  if (plan?.resourceType === 'Parameters') {
    d ??= plan.parameter?.find((p) => p.name === 'date')?.valueDate;
    plan = plan.parameter?.find((p) => p.name === 'resource')?.resource;
  }
  if (plan?.resourceType !== 'CarePlan') {
    throw badRequest('$ccm-enrollment-check takes a CarePlan (or Parameters with a CarePlan as `resource`)');
  }
  if (d !== undefined && !/^\d{4}-\d{2}-\d{2}$/.test(d)) {
    throw badRequest(`date '${d}' is not a date (YYYY-MM-DD)`, ['date']);
  }
  const date = d ?? today(ctx);
  return { status: 200, resource: requirementsOutcome(await unmetRequirements(ctx, plan, date), date) };
};
