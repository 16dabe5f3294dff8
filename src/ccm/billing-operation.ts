/**
 * `$ccm-billing` (OperationDefinition ccm-billing): the month's CCM billing, by the rules of
 * src/ccm/billing.ts.
 * - `GET|POST /$ccm-billing?month=YYYY-MM`: every patient with time logged in the month;
 * - `GET|POST Patient/{id}/$ccm-billing?month=YYYY-MM`: one patient.
 * Parameters: one `line` per billed code (patient, code, units, minutes, amount, practitioner), one
 * `skipped` per patient with time but nothing billable (reason code and words), one `rejected` per
 * billing option considered and not chosen, and `total`. `_format=csv` answers the same as CSV for
 * billing staff; `Prefer: respond-async` runs it in the background.
 */
import type { Money, Parameters, ParametersParameter } from '@medplum/fhirtypes';
import { badRequest } from '../errors';
import { requireId } from '../fhir/common';
import type { FhirRequest, FhirResponse, Handler, RequestContext } from '../fhir/types';
import { breathe } from '../util/breathe';
import { billMonth, type MonthFacts, type MonthResult } from './billing';
import { CPT, loadMonth } from './billing-data';
import { ccmOf, operationInput } from './eligibility-operation';
import { readOrNotFound } from './records';
import type { CcmService } from './service';

const MONTH = /^\d{4}-(0[1-9]|1[0-2])$/;

function monthInput(req: FhirRequest): string {
  const input = operationInput(req, ['month', '_format']);
  const month = input.month;
  if (month === undefined) {
    throw badRequest('month is required (YYYY-MM)', ['month']);
  }
  if (!MONTH.test(month)) {
    throw badRequest(`month '${month}' is not a month (YYYY-MM)`, ['month']);
  }
  return month;
}

/** Bills the month: of one patient, or of every patient with time logged in it. */
export async function billPatients(ctx: RequestContext, month: string, only?: string, progress: (t: string) => void = () => undefined): Promise<MonthResult[]> {
  const ccm = ccmOf(ctx);
  progress('reading the month');
  return billFacts(ccm, await loadMonth(ctx, ccm, month, only), progress);
}

/** The rules over each patient-month read, yielding to other requests every 500 patients. */
export async function billFacts(ccm: CcmService, facts: MonthFacts[], progress: (t: string) => void): Promise<MonthResult[]> {
  const results: MonthResult[] = [];
  for (let i = 0; i < facts.length; i++) {
    results.push(billMonth(facts[i], ccm.billing));
    if (i % 500 === 499) {
      progress(`${i + 1} of ${facts.length} patients billed`);
      await breathe();
    }
  }
  return results;
}

const money = (value: number): Money => ({ value, currency: 'USD' });

export function billingParameters(month: string, results: MonthResult[]): Parameters {
  const parameter: ParametersParameter[] = [{ name: 'month', valueString: month }];
  let total = 0;
  for (const r of results) {
    const patient = { name: 'patient', valueReference: { reference: `Patient/${r.patient}` } };
    for (const l of r.lines) {
      total += l.amount ?? 0;
      parameter.push({
        name: 'line',
        part: [
          patient,
          { name: 'code', valueCoding: { system: CPT, code: l.code } },
          { name: 'units', valueInteger: l.units },
          { name: 'minutes', valueInteger: l.minutes },
          ...(l.amount !== undefined ? [{ name: 'amount', valueMoney: money(l.amount) }] : []),
          ...(r.billingPractitioner ? [{ name: 'practitioner', valueReference: { reference: r.billingPractitioner } }] : []),
          ...(r.chosen ? [{ name: 'option', valueCode: r.chosen }] : []),
          ...r.counted.map((e) => ({ name: 'entry', valueReference: { reference: e } })),
        ],
      });
    }
    if (r.skipped) {
      parameter.push({
        name: 'skipped',
        part: [patient, { name: 'reason', valueCode: r.skipped.reason }, { name: 'text', valueString: r.skipped.text }, { name: 'minutes', valueInteger: r.loggedMinutes }],
      });
    }
    parameter.push({
      name: 'minutes',
      part: [
        patient,
        { name: 'logged', valueInteger: r.loggedMinutes },
        { name: 'clinicalStaff', valueInteger: r.countedMinutes.staff },
        { name: 'billingPractitioner', valueInteger: r.countedMinutes.practitioner },
        ...(r.toNextCode ? [{ name: 'nextCode', valueCoding: { system: CPT, code: r.toNextCode.code } }, { name: 'toNextCode', valueInteger: r.toNextCode.minutes }] : []),
      ],
    });
    const chosenAmount = r.lines.reduce((n, l) => n + (l.amount ?? 0), 0);
    for (const o of r.lines.length > 0 ? r.rejected : []) {
      parameter.push({
        name: 'rejected',
        part: [
          patient,
          { name: 'option', valueCode: o.label },
          { name: 'codes', valueString: o.lines.map((l) => `${l.code}x${l.units}`).join(' ') || 'none' },
          { name: 'amount', valueMoney: money(o.amount) },
          { name: 'reason', valueString: o.notCompliant ?? (o.lines.length === 0 ? 'below its threshold' : `pays less ($${o.amount.toFixed(2)} against $${chosenAmount.toFixed(2)})`) },
        ],
      });
    }
  }
  parameter.push({ name: 'total', valueMoney: money(Math.round(total * 100) / 100) });
  return { resourceType: 'Parameters', parameter };
}

const csvCell = (v: string | number | undefined): string => {
  const s = v === undefined ? '' : String(v);
  // Quote, and neutralise spreadsheet formulas.
  const safe = /^[=+\-@]/.test(s) ? `'${s}` : s;
  return /[",\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
};

export function billingCsv(month: string, results: MonthResult[]): string {
  const rows = [['patient', 'month', 'status', 'code', 'units', 'minutes', 'amount', 'practitioner', 'reason']];
  for (const r of results) {
    for (const l of r.lines) {
      rows.push([`Patient/${r.patient}`, month, 'billed', l.code, String(l.units), String(l.minutes), l.amount === undefined ? '' : l.amount.toFixed(2), r.billingPractitioner ?? '', '']);
    }
    if (r.skipped) {
      rows.push([`Patient/${r.patient}`, month, 'skipped', '', '', String(r.loggedMinutes), '', r.billingPractitioner ?? '', `${r.skipped.reason}: ${r.skipped.text}`]);
    }
  }
  return rows.map((row) => row.map(csvCell).join(',')).join('\r\n') + '\r\n';
}

function answer(req: FhirRequest, month: string, results: MonthResult[]): FhirResponse {
  if (req.query._format?.[0] === 'csv') {
    return { status: 200, body: billingCsv(month, results), contentType: 'text/csv; charset=utf-8', headers: { 'Content-Disposition': `attachment; filename="ccm-billing-${month}.csv"` } };
  }
  return { status: 200, resource: billingParameters(month, results) };
}

export const systemBillingOperation: Handler = async (req, ctx) => {
  const month = monthInput(req);
  if (req.preferAsync) {
    if (!ctx.asyncJobs) {
      throw badRequest('Asynchronous requests are not enabled on this server');
    }
    return ctx.asyncJobs.start(ctx.access?.principal.clientId ?? 'server', `${req.method} ${ctx.baseUrl}/$ccm-billing?month=${month}`, ctx.baseUrl, async (control) => ({
      status: 200,
      resource: billingParameters(month, await billPatients(ctx, month, undefined, control.progress)),
    }));
  }
  return answer(req, month, await billPatients(ctx, month));
};

export const patientBillingOperation: Handler = async (req, ctx, params) => {
  const id = requireId(params.id);
  const month = monthInput(req);
  await readOrNotFound(ctx, 'Patient', id);
  return answer(req, month, await billPatients(ctx, month, id));
};
