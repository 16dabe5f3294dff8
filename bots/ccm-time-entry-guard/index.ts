/**
 * ccm-time-entry-guard (pre-commit): refuses a time entry whose period is impossible (rules.ts).
 */
import type { OperationOutcome, Task } from '@medplum/fhirtypes';
import type { BotContext, BotEvent } from '../../src/bots/types';
import { timeEntryProblems } from './rules';

export async function handler(event: BotEvent, ctx: BotContext): Promise<OperationOutcome | undefined> {
  const task = event.resource as Task | undefined;
  if (task?.resourceType !== 'Task') {
    return undefined;
  }
  const problems = timeEntryProblems(task, ctx.now());
  if (problems.length === 0) {
    return undefined;
  }
  return {
    resourceType: 'OperationOutcome',
    issue: problems.map((p) => ({ severity: 'error', code: 'business-rule', details: { text: p.text }, diagnostics: p.text, expression: [p.expression] })),
  };
}
