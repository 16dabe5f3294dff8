/**
 * ccm-time-totals (post-commit on time-entry Tasks): recomputes the running total of each
 * patient-month the written entry touches (before and after the write) from `$ccm-billing`, and
 * stores it as a MeasureReport. Writes use If-Match on the version read, so overlapping runs for one
 * patient-month retry rather than store a stale sum.
 */
import type { MeasureReport, Parameters, Task } from '@medplum/fhirtypes';
import type { BotContext, BotEvent } from '../../src/bots/types';
import { monthsOf, sameTotals, totalId, totalReport } from './totals';

export async function handler(event: BotEvent, ctx: BotContext): Promise<string[]> {
  const touched = new Set<string>();
  for (const t of [event.resource, event.previous] as (Task | undefined)[]) {
    const patient = t?.for?.reference;
    if (t?.resourceType === 'Task' && patient?.startsWith('Patient/')) {
      for (const month of monthsOf(t.executionPeriod?.start, t.executionPeriod?.end)) {
        touched.add(`${patient.slice('Patient/'.length)}|${month}`);
      }
    }
  }
  const written: string[] = [];
  for (const key of touched) {
    const [patientId, month] = key.split('|');
    const id = totalId(patientId, month);
    let stored: MeasureReport | undefined;
    try {
      stored = await ctx.fhir.readResource<MeasureReport>('MeasureReport', id);
    } catch (err) {
      if ((err as { status?: number }).status !== 404 && (err as { status?: number }).status !== 410) {
        throw err;
      }
    }
    const billing = await ctx.fhir.get<Parameters>(`Patient/${patientId}/$ccm-billing`, { month });
    const next = totalReport(patientId, month, billing, ctx.now().toISOString());
    if (stored && sameTotals(stored, next)) {
      continue;
    }
    await ctx.fhir.updateResource(next, stored?.meta?.versionId ? { ifMatch: stored.meta.versionId } : undefined);
    written.push(`MeasureReport/${id}`);
  }
  return written;
}
