/**
 * odl-alert: when a patient reports an Observation of Daily Living outside the thresholds
 * (bot.json `config`), creates a Task for the care team. Runs post-commit, at least once per
 * write: the Task's identifier (Observation id + rule) makes a second run find the first Task
 * instead of creating another.
 */
import type { Observation, Task } from '@medplum/fhirtypes';
import type { BotContext, BotEvent } from '../../src/bots/types';
import { alertsFor, DEFAULT_THRESHOLDS, isPatientReported, type Thresholds } from './rules';

export const TASK_IDENTIFIER_SYSTEM = 'http://continuum-ccm.org/fhir/NamingSystem/odl-alert';

export async function handler(event: BotEvent, ctx: BotContext<Partial<Thresholds>>): Promise<Task[]> {
  const obs = event.resource as Observation | undefined;
  if (obs?.resourceType !== 'Observation' || !isPatientReported(obs)) {
    return [];
  }
  const alerts = alertsFor(obs, { ...DEFAULT_THRESHOLDS, ...ctx.config });
  const tasks: Task[] = [];
  for (const alert of alerts) {
    const identifier = { system: TASK_IDENTIFIER_SYSTEM, value: `${obs.id as string}:${alert.rule}` };
    const task = await ctx.fhir.createResourceIfNoneExist<Task>(
      {
        resourceType: 'Task',
        identifier: [identifier],
        status: 'requested',
        intent: 'order',
        priority: 'urgent',
        code: { coding: [{ system: 'http://continuum-ccm.org/fhir/CodeSystem/ccm', code: 'odl-alert', display: 'Review a patient-reported measurement' }] },
        description: alert.text,
        for: obs.subject,
        focus: { reference: `Observation/${obs.id as string}` },
        authoredOn: ctx.now().toISOString(),
      },
      { identifier: `${identifier.system}|${identifier.value}` },
    );
    ctx.log.info(`Task/${task.id as string}: ${alert.text}`);
    tasks.push(task);
  }
  return tasks;
}
