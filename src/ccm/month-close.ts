/**
 * `POST /$ccm-month-close` (OperationDefinition ccm-month-close) with `month` (YYYY-MM): bills the
 * month by the rules of src/ccm/billing.ts and writes one ChargeItem per billed code per
 * patient-month (src/ccm/charge-items.ts). The ccm-month-close bot calls it on the 1st of each
 * month for the month before.
 *
 * - Idempotent: ChargeItem ids derive from month, code and patient, so closing a month again
 *   updates what changed, leaves what did not (no new version), and marks entered-in-error the
 *   month's ChargeItems that are no longer billed.
 * - All or nothing: every write of a close is one store transaction, made of transaction Bundles
 *   through the FHIR core (validation, the caller's scopes, write hooks and audit as for any
 *   client), so a failed close leaves the month as it was.
 * - Fast: the month is read in a few bulk reads (readMonth), and the writes' current versions are
 *   locked and read in one query per Bundle (StoreWriter.prefetch), creates written together.
 *
 * Answers Parameters: month, chargeItems (billed lines), written, unchanged, voided, skipped
 * (patient-months with time but nothing billable). `Prefer: respond-async` runs it in the
 * background with progress (src/fhir/async-jobs.ts).
 */
import type { Bundle, ChargeItem, Parameters } from '@medplum/fhirtypes';
import { badRequest, forbidden } from '../errors';
import type { FhirRequest, FhirResponse, Handler, RequestContext } from '../fhir/types';
import { readMonth } from './billing-data';
import { billFacts } from './billing-operation';
import { chargeItemsOf, isMonthCloseCharge, sameCharge } from './charge-items';
import { ccmOf, operationInput } from './eligibility-operation';

type Dispatch = (req: FhirRequest, ctx: RequestContext) => Promise<FhirResponse>;

const MONTH = /^\d{4}-(0[1-9]|1[0-2])$/;
/** Entries per transaction Bundle (all of them in one store transaction). */
const BUNDLE = 2000;

export interface CloseSummary {
  month: string;
  chargeItems: number;
  written: number;
  unchanged: number;
  voided: number;
  skipped: number;
}

/** Closes `month` through `ctx` (its store and scopes); `dispatch` runs the writes. */
export async function closeMonth(ctx: RequestContext, dispatch: Dispatch, month: string, progress: (text: string) => void = () => undefined): Promise<CloseSummary> {
  const ccm = ccmOf(ctx);
  progress(`reading ${month}`);
  const { facts, chargeItems: stored } = await readMonth(ctx, ccm, month);
  const results = await billFacts(ccm, facts, progress);
  const now = ctx.now().toISOString();
  const wanted = chargeItemsOf(month, results, now);
  const wantedIds = new Set(wanted.map((c) => c.id as string));
  const existing = new Map(stored.filter((c) => isMonthCloseCharge(c, month)).map((c) => [c.id as string, c]));

  const writes: ChargeItem[] = [];
  let unchanged = 0;
  for (const c of wanted) {
    const old = existing.get(c.id as string);
    if (old && sameCharge(old, c)) {
      unchanged++;
    } else {
      writes.push(c);
    }
  }
  let voided = 0;
  for (const [id, old] of existing) {
    if (!wantedIds.has(id) && old.status !== 'entered-in-error') {
      writes.push({ ...old, meta: undefined, status: 'entered-in-error', note: [...(old.note ?? []), { text: `No longer billed when ${month} was closed again on ${now}.` }] });
      voided++;
    }
  }
  if (writes.length > 0) {
    await ctx.store.transaction(async (w) => {
      const txCtx: RequestContext = { ...ctx, store: w.store };
      for (let i = 0; i < writes.length; i += BUNDLE) {
        progress(`writing ChargeItems: ${i} of ${writes.length}`);
        const entry = writes.slice(i, i + BUNDLE).map((c) => ({ resource: c, request: { method: 'PUT' as const, url: `ChargeItem/${c.id as string}` } }));
        const bundle: Bundle = { resourceType: 'Bundle', type: 'transaction', entry };
        await dispatch({ method: 'POST', path: '', query: {}, body: bundle, preferReturn: 'minimal' }, txCtx);
      }
    });
  }
  return {
    month,
    chargeItems: wanted.length,
    written: writes.length - voided,
    unchanged,
    voided,
    skipped: results.filter((r) => r.skipped).length,
  };
}

/** Types a close reads (searches) and the letters it needs on ChargeItem. */
const READS = ['Task', 'Patient', 'CarePlan', 'Consent', 'Condition', 'Encounter', 'Claim', 'ChargeItem'];

/**
 * A close bills every patient of the month, so it needs to see all of them: a token limited to a
 * patient (or by granular scopes) would close part of the month. It is refused instead.
 */
function requireWholeMonth(ctx: RequestContext): void {
  const access = ctx.access;
  if (!access) {
    return;
  }
  const narrow = [...READS.filter((t) => !access.allows('s', t) || access.filter(t, 's') !== undefined), ...(['c', 'u'] as const).filter((l) => !access.allows(l, 'ChargeItem') || access.filter('ChargeItem', l) !== undefined).map((l) => `ChargeItem (${l})`)];
  if (narrow.length > 0) {
    throw forbidden(`Closing a month needs search access to every ${READS.join(', ')} and to create and update every ChargeItem; the token's scopes limit ${narrow.join(', ')}`);
  }
}

function summaryParameters(s: CloseSummary): Parameters {
  return {
    resourceType: 'Parameters',
    parameter: [
      { name: 'month', valueString: s.month },
      { name: 'chargeItems', valueInteger: s.chargeItems },
      { name: 'written', valueInteger: s.written },
      { name: 'unchanged', valueInteger: s.unchanged },
      { name: 'voided', valueInteger: s.voided },
      { name: 'skipped', valueInteger: s.skipped },
    ],
  };
}

export function monthCloseOperation(dispatch: Dispatch): Handler {
  return async (req, ctx) => {
    const month = operationInput(req, ['month']).month;
    if (month === undefined) {
      throw badRequest('month is required (YYYY-MM)', ['month']);
    }
    if (!MONTH.test(month)) {
      throw badRequest(`month '${month}' is not a month (YYYY-MM)`, ['month']);
    }
    requireWholeMonth(ctx);
    if (req.preferAsync) {
      if (!ctx.asyncJobs) {
        throw badRequest('Asynchronous requests are not enabled on this server');
      }
      return ctx.asyncJobs.start(ctx.access?.principal.clientId ?? 'server', `POST ${ctx.baseUrl}/$ccm-month-close?month=${month}`, ctx.baseUrl, async (control) => ({
        status: 200,
        resource: summaryParameters(await closeMonth(ctx, dispatch, month, control.progress)),
      }));
    }
    return { status: 200, resource: summaryParameters(await closeMonth(ctx, dispatch, month)) };
  };
}
