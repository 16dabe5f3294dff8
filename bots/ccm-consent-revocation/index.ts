/**
 * ccm-consent-revocation (scheduled daily, also `$execute`): moves CCM CarePlans to `revoked` once
 * the month of their patient's consent revocation is over. The decision is `planToRevoke` in
 * rules.ts; "today" is the server's clock (`ctx.now()`), so tests inject time instead of waiting.
 */
import type { Bundle, CarePlan, Consent } from '@medplum/fhirtypes';
import type { BotContext, BotEvent } from '../../src/bots/types';
import { PROGRAM_TOKENS, revocationEnd } from './rules';

/** Every active CCM plan, page by page (a search answers at most 1000 at a time). */
async function activePlans(ctx: BotContext): Promise<CarePlan[]> {
  const plans: CarePlan[] = [];
  let bundle: Bundle<CarePlan> = await ctx.fhir.search<CarePlan>('CarePlan', { status: 'active', category: PROGRAM_TOKENS, _count: 1000 });
  for (;;) {
    plans.push(...(bundle.entry ?? []).filter((e) => e.search?.mode !== 'include').map((e) => e.resource as CarePlan));
    const next = bundle.link?.find((l) => l.relation === 'next')?.url;
    if (!next) {
      return plans;
    }
    bundle = await ctx.fhir.search<CarePlan>('CarePlan', next.slice(next.indexOf('?') + 1));
  }
}

export async function handler(_event: BotEvent, ctx: BotContext): Promise<{ revoked: string[] }> {
  const today = ctx.now().toISOString().slice(0, 10);
  const plans = await activePlans(ctx);
  const revoked: string[] = [];
  for (const plan of plans) {
    const subject = plan.subject?.reference;
    if (!subject?.startsWith('Patient/')) {
      continue;
    }
    const consents = await ctx.fhir.searchResources<Consent>('Consent', { patient: subject, _count: 1000 });
    const end = revocationEnd(consents, today);
    if (!end) {
      continue;
    }
    await ctx.fhir.updateResource<CarePlan>(
      { ...plan, status: 'revoked', period: { ...(plan.period ?? {}), end } },
      { ifMatch: plan.meta?.versionId },
    );
    ctx.log.info(`CarePlan/${plan.id as string} revoked: consent ended ${end}`);
    revoked.push(`CarePlan/${plan.id as string}`);
  }
  return { revoked };
}
