/**
 * The checks of a time entry's period (ccm-domain.md section 7), as a pure function: what is wrong
 * with it, in plain words, each with the element it concerns. `now` is the server's clock.
 */
import type { Task } from '@medplum/fhirtypes';

export interface Problem {
  text: string;
  expression: string;
}

const DAY_MS = 24 * 60 * 60 * 1000;

function instant(v: string | undefined): number | undefined {
  if (!v || !/T\d{2}:\d{2}/.test(v)) {
    return undefined;
  }
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : t;
}

export function timeEntryProblems(task: Task, now: Date): Problem[] {
  if (task.status !== 'completed') {
    return []; // an entry being written up is checked when it is completed
  }
  const problems: Problem[] = [];
  const start = instant(task.executionPeriod?.start);
  const end = instant(task.executionPeriod?.end);
  if (start === undefined) {
    problems.push({ text: 'A completed time entry needs executionPeriod.start as a date and time.', expression: 'Task.executionPeriod.start' });
  }
  if (end === undefined) {
    problems.push({ text: 'A completed time entry needs executionPeriod.end as a date and time.', expression: 'Task.executionPeriod.end' });
  }
  if (start !== undefined && end !== undefined) {
    if (end < start) {
      problems.push({ text: `The entry ends (${task.executionPeriod?.end as string}) before it starts (${task.executionPeriod?.start as string}).`, expression: 'Task.executionPeriod.end' });
    } else if (end - start > DAY_MS) {
      problems.push({ text: `The entry lasts ${Math.round((end - start) / 3_600_000)} hours; one entry may cover at most 24 hours.`, expression: 'Task.executionPeriod' });
    }
  }
  if (start !== undefined && start > now.getTime()) {
    problems.push({ text: `The entry starts in the future (${task.executionPeriod?.start as string}); log time once it is spent.`, expression: 'Task.executionPeriod.start' });
  } else if (end !== undefined && end > now.getTime() + 60_000) {
    problems.push({ text: `The entry ends in the future (${task.executionPeriod?.end as string}); log time once it is spent.`, expression: 'Task.executionPeriod.end' });
  }
  if (!task.for?.reference?.startsWith('Patient/')) {
    problems.push({ text: 'A time entry is for a Patient (Task.for).', expression: 'Task.for' });
  }
  return problems;
}
