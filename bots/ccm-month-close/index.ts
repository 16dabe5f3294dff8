/**
 * ccm-month-close (scheduled 02:00 UTC on the 1st, or `$execute` with `month`): closes the month
 * before (or the one given) with the server's `$ccm-month-close` (src/ccm/month-close.ts), which
 * bills it by the rules and writes one ChargeItem per billed code per patient-month, idempotently
 * and in one transaction. This bot is the schedule and the log line; the rules live in the server,
 * where `$ccm-billing` uses the same ones.
 */
import type { Parameters } from '@medplum/fhirtypes';
import type { BotContext, BotEvent } from '../../src/bots/types';

/** The month before `today` (YYYY-MM-DD): what the scheduled run on the 1st closes. */
export function previousMonth(today: string): string {
  const [y, m] = today.split('-').map(Number);
  return m === 1 ? `${y - 1}-12` : `${y}-${String(m - 1).padStart(2, '0')}`;
}

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
  const month = monthOf(event, ctx.now().toISOString().slice(0, 10));
  const closed = await ctx.fhir.post<Parameters>('$ccm-month-close', { resourceType: 'Parameters', parameter: [{ name: 'month', valueString: month }] });
  const n = (name: string): number => closed.parameter?.find((p) => p.name === name)?.valueInteger ?? 0;
  ctx.log.info(`${month} closed: ${n('chargeItems')} charge item(s), ${n('written')} written, ${n('unchanged')} unchanged, ${n('voided')} voided, ${n('skipped')} patient-month(s) skipped`);
  return closed;
}
