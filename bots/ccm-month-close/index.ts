/**
 * ccm-month-close (scheduled 02:00 UTC on the 1st, or `$execute` with `month`): asks the server
 * for the month's billing (`$ccm-billing`, src/ccm/billing.ts) and writes its ChargeItems in batch
 * Bundles of PUTs (ids derived from month, code and patient: a rerun updates, never duplicates).
 * ChargeItems of that month that a rerun no longer bills are marked entered-in-error.
 */
import type { Bundle, BundleEntry, ChargeItem, Parameters } from '@medplum/fhirtypes';
import type { BotContext, BotEvent } from '../../src/bots/types';
import { chargeItems, IDENTIFIER_SYSTEM, previousMonth, sameCharge } from './charge-items';

const BATCH = 200;

function monthOf(event: BotEvent, today: string): string {
  const input = event.input as Parameters | undefined;
  const given = input?.resourceType === 'Parameters' ? input.parameter?.find((p) => p.name === 'month')?.valueString : undefined;
  if (given !== undefined) {
    if (!/^\d{4}-(0[1-9]|1[0-2])$/.test(given)) {
      throw new Error(`month '${given}' is not a month (YYYY-MM)`);
    }
    return given;
  }
  return previousMonth(today);
}

export async function handler(event: BotEvent, ctx: BotContext): Promise<Parameters> {
  const now = ctx.now().toISOString();
  const month = monthOf(event, now.slice(0, 10));
  const billing = await ctx.fhir.get<Parameters>('$ccm-billing', { month });
  const wanted = chargeItems(month, billing, now);
  const wantedIds = new Set(wanted.map((c) => c.id as string));

  // What earlier runs wrote for the month.
  const existing = new Map<string, ChargeItem>();
  let page = await ctx.fhir.search<ChargeItem>('ChargeItem', { identifier: `${IDENTIFIER_SYSTEM}|`, _count: 1000 });
  for (;;) {
    for (const e of page.entry ?? []) {
      const c = e.resource as ChargeItem;
      if (c.identifier?.some((i) => i.system === IDENTIFIER_SYSTEM && i.value?.startsWith(`${month}|`))) {
        existing.set(c.id as string, c);
      }
    }
    const next = page.link?.find((l) => l.relation === 'next')?.url;
    if (!next) {
      break;
    }
    page = await ctx.fhir.search<ChargeItem>('ChargeItem', next.slice(next.indexOf('?') + 1));
  }

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
  let failed = 0;
  for (let i = 0; i < writes.length; i += BATCH) {
    const entry: BundleEntry[] = writes.slice(i, i + BATCH).map((c) => ({ resource: c, request: { method: 'PUT', url: `ChargeItem/${c.id as string}` } }));
    const answer = await ctx.fhir.executeBatch({ resourceType: 'Bundle', type: 'batch', entry } as Bundle);
    for (const [j, e] of (answer.entry ?? []).entries()) {
      if (!/^2/.test(e.response?.status ?? '')) {
        failed++;
        ctx.log.error(`ChargeItem/${writes[i + j].id as string}: ${e.response?.status ?? '?'} ${JSON.stringify(e.response?.outcome ?? {})}`);
      }
    }
  }
  ctx.log.info(`${month} closed: ${wanted.length} charge item(s), ${writes.length - voided} written, ${unchanged} unchanged, ${voided} voided, ${failed} failed`);
  if (failed > 0) {
    throw new Error(`${failed} ChargeItem write(s) failed; the run will be retried`);
  }
  return {
    resourceType: 'Parameters',
    parameter: [
      { name: 'month', valueString: month },
      { name: 'chargeItems', valueInteger: wanted.length },
      { name: 'written', valueInteger: writes.length - voided },
      { name: 'unchanged', valueInteger: unchanged },
      { name: 'voided', valueInteger: voided },
    ],
  };
}
