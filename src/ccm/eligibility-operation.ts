/**
 * `$ccm-eligibility` (OperationDefinition Patient-ccm-eligibility in profiles/):
 * - `GET|POST Patient/{id}/$ccm-eligibility[?date=YYYY-MM-DD]` answers Parameters: `eligible`, one
 *   `category` per qualifying category, one `condition` per qualifying Condition, and `reason` for a no.
 * - `GET|POST /$ccm-eligibility` evaluates every patient the caller may see and answers the counts and
 *   the eligible-but-not-enrolled list (`Prefer: respond-async` runs it in the background with progress).
 */
import type { Condition, Parameters, ParametersParameter, Patient } from '@medplum/fhirtypes';
import { badRequest } from '../errors';
import { requireId } from '../fhir/common';
import type { FhirRequest, Handler, RequestContext } from '../fhir/types';
import { breathe } from '../util/breathe';
import { byRef, PLAN_PROJECTION } from './billing-data';
import { PROGRAM_TOKENS } from './codes';
import { CURRENT_CONDITION_STATUSES, ELIGIBILITY_CONDITION_PROJECTION, ELIGIBILITY_PATIENT_PROJECTION, evaluateEligibility, type Eligibility } from './eligibility';
import { readOrNotFound, searchAll, searchProjected, today } from './records';
import type { CcmService } from './service';

/** Reads of every resource of a type: no limit in practice. */
const ALL = 10_000_000;

const DATE = /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$/;

/** Query parameters merged with a POSTed Parameters body (valueDate / valueString / valueCode ...). */
export function operationInput(req: FhirRequest, allowed: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  const add = (k: string, v: string): void => {
    if (!allowed.includes(k)) {
      throw badRequest(`Unknown parameter '${k}'; this operation takes ${allowed.length ? allowed.join(', ') : 'no parameters'}`);
    }
    if (out[k] !== undefined) {
      throw badRequest(`Parameter '${k}' is given more than once`);
    }
    out[k] = v;
  };
  for (const [k, vs] of Object.entries(req.query)) {
    if (k === '_format' || k === '_pretty') {
      continue;
    }
    vs.forEach((v) => add(k, v));
  }
  if (req.method === 'POST' && req.body !== undefined) {
    const body = req.body as Parameters;
    if (typeof body !== 'object' || body === null || body.resourceType !== 'Parameters') {
      throw badRequest('The body must be a Parameters resource');
    }
    for (const p of body.parameter ?? []) {
      const key = Object.keys(p).find((x) => x.startsWith('value'));
      const v = key ? (p as unknown as Record<string, unknown>)[key] : undefined;
      if (typeof p.name !== 'string' || (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean')) {
        throw badRequest(`Parameter '${String(p.name)}' must have a primitive value`);
      }
      add(p.name, String(v));
    }
  }
  return out;
}

export function dateInput(ctx: RequestContext, raw: string | undefined): string {
  if (raw === undefined) {
    return today(ctx);
  }
  if (!DATE.test(raw)) {
    throw badRequest(`date '${raw}' is not a date (YYYY-MM-DD)`, ['date']);
  }
  return raw;
}

export function ccmOf(ctx: RequestContext): CcmService {
  if (!ctx.ccm) {
    throw badRequest('The CCM module is not enabled on this server');
  }
  return ctx.ccm;
}

/** A patient's eligibility on `date`, read through the caller's store. */
export async function patientEligibility(ctx: RequestContext, patientId: string, date: string): Promise<Eligibility> {
  const ccm = ccmOf(ctx);
  const patient = await readOrNotFound<Patient>(ctx, 'Patient', patientId);
  const conditions = await searchAll<Condition>(ctx, 'Condition', { subject: `Patient/${patientId}` });
  return evaluateEligibility(patient, conditions, date, ccm.categories);
}

export function eligibilityParameters(e: Eligibility): Parameters {
  const parameter: ParametersParameter[] = [{ name: 'eligible', valueBoolean: e.eligible }, { name: 'date', valueDate: e.date }];
  e.categories.forEach((c) => parameter.push({ name: 'category', valueCode: c }));
  e.conditions.forEach((c) => parameter.push({ name: 'condition', valueReference: { reference: c.reference, display: c.display } }));
  if (e.reason) {
    parameter.push({ name: 'reason', valueString: e.reason });
  }
  return { resourceType: 'Parameters', parameter };
}

export const patientEligibilityOperation: Handler = async (req, ctx, params) => {
  const id = requireId(params.id);
  const input = operationInput(req, ['date']);
  const e = await patientEligibility(ctx, id, dateInput(ctx, input.date));
  return { status: 200, resource: eligibilityParameters(e) };
};

/**
 * Every patient the caller may see, evaluated on `date`. Reads what the rule needs of every Patient
 * and every current Condition, and the active program plans, in three bulk reads (stored
 * projections: src/ccm/projections.ts) rather than two searches per patient.
 */
async function evaluateAll(ctx: RequestContext, date: string, progress: (t: string) => void, signal?: AbortSignal): Promise<Parameters> {
  const ccm = ccmOf(ctx);
  const [patients, conditions, plans] = await Promise.all([
    searchProjected(ctx, 'Patient', ELIGIBILITY_PATIENT_PROJECTION, { limit: ALL }),
    searchProjected(ctx, 'Condition', ELIGIBILITY_CONDITION_PROJECTION, {
      keys: CURRENT_CONDITION_STATUSES,
      narrow: { 'clinical-status': CURRENT_CONDITION_STATUSES.join(',') },
      limit: ALL,
    }),
    searchProjected(ctx, 'CarePlan', PLAN_PROJECTION, { keys: ['active'], narrow: { status: 'active', category: PROGRAM_TOKENS }, limit: ALL }),
  ]);
  const conditionsOf = byRef(conditions, (c) => c.subject?.reference);
  const enrolled = new Set(plans.map((p) => p.patient)); // read under the key 'active' only
  let eligible = 0;
  const list: ParametersParameter[] = [];
  for (let i = 0; i < patients.length; i++) {
    if (signal?.aborted) {
      throw badRequest('cancelled');
    }
    const id = patients[i].id as string;
    const e = evaluateEligibility(patients[i], conditionsOf.get(id) ?? [], date, ccm.categories);
    if (e.eligible) {
      eligible++;
      if (!enrolled.has(id)) {
        list.push({
          name: 'eligibleNotEnrolled',
          part: [{ name: 'patient', valueReference: { reference: `Patient/${id}` } }, ...e.categories.map((c) => ({ name: 'category', valueCode: c }))],
        });
      }
    }
    if (i % 1000 === 0) {
      progress(`${i} of ${patients.length} patients evaluated`);
      await breathe();
    }
  }
  return {
    resourceType: 'Parameters',
    parameter: [{ name: 'date', valueDate: date }, { name: 'evaluated', valueInteger: patients.length }, { name: 'eligibleCount', valueInteger: eligible }, ...list],
  };
}

export const systemEligibilityOperation: Handler = async (req, ctx) => {
  const input = operationInput(req, ['date']);
  const date = dateInput(ctx, input.date);
  if (req.preferAsync) {
    if (!ctx.asyncJobs) {
      throw badRequest('Asynchronous requests are not enabled on this server');
    }
    const owner = ctx.access?.principal.clientId ?? 'server';
    return ctx.asyncJobs.start(owner, `${req.method} ${ctx.baseUrl}/$ccm-eligibility?date=${date}`, ctx.baseUrl, async (control) => ({
      status: 200,
      resource: await evaluateAll(ctx, date, control.progress, control.signal),
    }));
  }
  return { status: 200, resource: await evaluateAll(ctx, date, () => undefined) };
};
