/**
 * ccm-enrollment-guard (pre-commit): before a CCM CarePlan is stored as active, asks the server
 * which enrollment requirements are unmet (`CarePlan/$ccm-enrollment-check`, src/ccm/enrollment.ts)
 * and refuses the write with that OperationOutcome when any is. It runs inside the write's
 * transaction, so it sees the rest of a transaction Bundle (a Consent and the plan posted together).
 */
import type { CarePlan, OperationOutcome } from '@medplum/fhirtypes';
import type { BotContext, BotEvent } from '../../src/bots/types';

export async function handler(event: BotEvent, ctx: BotContext): Promise<OperationOutcome | undefined> {
  const plan = event.resource as CarePlan | undefined;
  if (plan?.resourceType !== 'CarePlan') {
    return undefined;
  }
  const outcome = await ctx.fhir.post<OperationOutcome>('CarePlan/$ccm-enrollment-check', plan);
  const unmet = (outcome.issue ?? []).filter((i) => i.severity === 'error');
  if (unmet.length > 0) {
    ctx.log.info(`CarePlan/${plan.id ?? '(new)'} refused: ${unmet.map((i) => i.details?.coding?.[0]?.code ?? '?').join(', ')}`);
    return outcome;
  }
  return undefined;
}
