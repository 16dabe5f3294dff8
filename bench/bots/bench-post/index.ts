import type { BotContext, BotEvent } from '../../../src/bots/types';

/** Benchmark: logs how long after the write's timestamp (just before its commit) this run started. */
export async function handler(event: BotEvent, ctx: BotContext): Promise<undefined> {
  const lag = Date.now() - Date.parse(event.resource?.meta?.lastUpdated ?? '');
  ctx.log.info(`lag=${lag}`);
  return undefined;
}
