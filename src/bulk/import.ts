/**
 * `POST [base]/$import` with an NDJSON body (`Content-Type: application/fhir+ndjson`, one resource
 * per line): each line is written as `PUT [type]/[id]` (or `POST [type]` without an id), so the ids
 * and therefore the references between the resources stay as they were (an export of another store
 * imports as it was). Lines go in groups of WRITE_GROUP, one transaction each (src/fhir/write-many.ts);
 * a group that fails is written again line by line, so a bad line is reported with its line number
 * and does not stop the others. Each write goes through the FHIR core with the caller's scopes,
 * validation and audit.
 *
 * With `Prefer: respond-async` the import runs in the background (src/fhir/async-jobs.ts): 202 with
 * `Content-Location`, the status URL's `X-Progress` counts lines, and the final answer is the same
 * OperationOutcome inside a batch-response Bundle. Cancelling stops after the current group; what
 * was written stays.
 */
import type { OperationOutcome, OperationOutcomeIssue, Resource } from '@medplum/fhirtypes';
import { badRequest, FhirError } from '../errors';
import type { FhirRequest, FhirResponse, Handler, JobControl, RequestContext } from '../fhir/types';
import { parseJsonBody } from '../util/json';
import { breathe } from '../util/breathe';
import { type WriteItem, writeMany, WRITE_GROUP } from '../fhir/write-many';

const MAX_REPORTED = 100;

type Dispatch = (req: FhirRequest, ctx: RequestContext) => Promise<FhirResponse>;

function message(err: unknown): string {
  if (err instanceof FhirError) {
    return (err.outcome.issue ?? []).map((i) => i.diagnostics ?? i.details?.text).join('; ');
  }
  return err instanceof Error ? err.message : String(err);
}

export function importOperation(dispatch: Dispatch): Handler {
  return async (req, ctx) => {
    if (typeof req.body !== 'string') {
      throw badRequest('$import takes an NDJSON body: Content-Type: application/fhir+ndjson, one resource per line');
    }
    const body = req.body;
    if (req.preferAsync) {
      if (!ctx.asyncJobs) {
        throw badRequest('Asynchronous requests are not enabled on this server');
      }
      const owner = ctx.access?.principal.clientId ?? 'server';
      return ctx.asyncJobs.start(owner, `POST ${ctx.baseUrl}/$import`, ctx.baseUrl, (control) => importLines(body, ctx, dispatch, control));
    }
    return importLines(body, ctx, dispatch);
  };
}

async function importLines(body: string, ctx: RequestContext, dispatch: Dispatch, control?: JobControl): Promise<FhirResponse> {
  const lines = body.split('\n');
  const total = lines.filter((l) => l.trim() !== '').length;
  const issues: OperationOutcomeIssue[] = [];
  let imported = 0;
  let failed = 0;
  const report = (line: number, err: unknown): void => {
    failed++;
    if (issues.length < MAX_REPORTED) {
      issues.push({ severity: 'error', code: 'processing', diagnostics: `line ${line}: ${message(err)}`, expression: [`line ${line}`] });
    }
  };
  // A line that does not parse waits in its group, so failures are reported in line order.
  let group: { item: WriteItem; line: number }[] = [];
  const writeGroup = async (): Promise<void> => {
    const outcomes = await writeMany(group.map((g) => g.item), ctx, dispatch);
    for (const [k, o] of outcomes.entries()) {
      if (o.ok) {
        imported++;
      } else {
        report(group[k].line, o.error);
      }
    }
    group = [];
    if (control) {
      control.progress(`${imported + failed} of ${total} lines (${failed} failed)`);
      await breathe();
    }
  };
  for (const [i, text] of lines.entries()) {
    if (text.trim() === '') {
      continue;
    }
    if (control?.signal.aborted) {
      break;
    }
    try {
      const resource = parseJsonBody(Buffer.from(text), ctx.limits.maxJsonDepth) as Resource;
      if (typeof resource !== 'object' || resource === null || typeof resource.resourceType !== 'string') {
        throw badRequest('a line must be one FHIR resource (a JSON object with resourceType)');
      }
      group.push({ item: { resource }, line: i + 1 });
    } catch (error) {
      group.push({ item: { error }, line: i + 1 });
    }
    if (group.length >= WRITE_GROUP) {
      await writeGroup();
    }
  }
  if (!control?.signal.aborted) {
    await writeGroup();
  }
  const summary = `Imported ${imported} resource(s); ${failed} line(s) failed${failed > issues.length ? ` (the first ${issues.length} are listed)` : ''}`;
  const outcome: OperationOutcome = {
    resourceType: 'OperationOutcome',
    issue: [{ severity: failed > 0 ? 'warning' : 'information', code: 'informational', diagnostics: summary }, ...issues],
  };
  return { status: 200, resource: outcome };
}
