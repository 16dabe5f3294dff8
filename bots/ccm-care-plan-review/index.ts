/**
 * ccm-care-plan-review (scheduled daily, also `$execute`): for each active CCM CarePlan whose
 * review date (extension care-plan-review-date) is before today, makes sure one review Task exists
 * for the plan's care team. The Task's identifier (plan id and review date) makes reruns find it;
 * a new review date (after the review, the plan is updated) gives a new Task next time.
 */
import type { Bundle, CarePlan, Task } from '@medplum/fhirtypes';
import type { BotContext, BotEvent } from '../../src/bots/types';

const CCM = 'http://continuum-ccm.org/fhir/CodeSystem/ccm';
const PROGRAM_TOKENS = ['ccm', 'complex-ccm', 'pcm'].map((p) => `${CCM}|${p}`).join(',');
export const REVIEW_DATE = 'http://continuum-ccm.org/fhir/StructureDefinition/care-plan-review-date';
export const TASK_IDENTIFIER_SYSTEM = 'http://continuum-ccm.org/fhir/NamingSystem/care-plan-review';

export async function handler(_event: BotEvent, ctx: BotContext): Promise<{ tasks: string[] }> {
  const today = ctx.now().toISOString().slice(0, 10);
  const plans: CarePlan[] = [];
  let bundle: Bundle<CarePlan> = await ctx.fhir.search<CarePlan>('CarePlan', { status: 'active', category: PROGRAM_TOKENS, 'review-date': `lt${today}`, _count: 1000 });
  for (;;) {
    plans.push(...(bundle.entry ?? []).map((e) => e.resource as CarePlan));
    const next = bundle.link?.find((l) => l.relation === 'next')?.url;
    if (!next) {
      break;
    }
    bundle = await ctx.fhir.search<CarePlan>('CarePlan', next.slice(next.indexOf('?') + 1));
  }
  const tasks: string[] = [];
  for (const plan of plans) {
    const due = plan.extension?.find((e) => e.url === REVIEW_DATE)?.valueDate;
    if (!due || due >= today) {
      continue;
    }
    const value = `${plan.id as string}:${due}`;
    const task = await ctx.fhir.createResourceIfNoneExist<Task>(
      {
        resourceType: 'Task',
        identifier: [{ system: TASK_IDENTIFIER_SYSTEM, value }],
        status: 'requested',
        intent: 'order',
        priority: 'routine',
        code: { coding: [{ system: CCM, code: 'care-plan-review', display: 'Review the CCM care plan' }] },
        description: `The CCM care plan's periodic review was due on ${due}: review it with the patient and set the next review date.`,
        for: plan.subject,
        focus: { reference: `CarePlan/${plan.id as string}` },
        ...(plan.careTeam?.[0] ? { owner: plan.careTeam[0] } : {}),
        authoredOn: ctx.now().toISOString(),
        restriction: { period: { end: ctx.now().toISOString() } },
      },
      { identifier: `${TASK_IDENTIFIER_SYSTEM}|${value}` },
    );
    tasks.push(`Task/${task.id as string}`);
  }
  if (tasks.length > 0) {
    ctx.log.info(`${tasks.length} care plan review task(s) open`);
  }
  return { tasks };
}
