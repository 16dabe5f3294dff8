/**
 * ccm-eligibility: keeps the stored determination of a patient current (post-commit, so within
 * moments of the write that changed it). The rule itself lives in the server (`$ccm-eligibility`,
 * src/ccm/eligibility.ts); this bot decides when to ask and stores the answer.
 *
 * Concurrency: two runs for one patient can overlap (two Conditions written at once). Each run reads
 * the stored determination, asks for the answer, and writes with If-Match on the version it read: a
 * run that lost the race fails with 412 and is retried, so the last write is always computed after
 * the last change.
 */
import type { Condition, Observation, Parameters, Patient } from '@medplum/fhirtypes';
import type { BotContext, BotEvent } from '../../src/bots/types';
import { determination, determinationId, sameFinding } from './determination';

function patientOf(event: BotEvent): string | undefined {
  const r = (event.resource ?? event.previous) as Condition | Patient | undefined;
  if (r?.resourceType === 'Patient') {
    return r.id;
  }
  const ref = r?.resourceType === 'Condition' ? r.subject?.reference : undefined;
  return ref?.startsWith('Patient/') ? ref.slice('Patient/'.length) : undefined;
}

function inputPatient(input: unknown): string | undefined {
  const p = input as Parameters | undefined;
  if (p?.resourceType !== 'Parameters') {
    return undefined;
  }
  const v = p.parameter?.find((x) => x.name === 'patient');
  return (v?.valueString ?? v?.valueReference?.reference ?? v?.valueId)?.replace(/^Patient\//, '');
}

/** Re-evaluates one patient and stores the result; answers whether it changed. */
export async function refresh(patientId: string, ctx: BotContext): Promise<'created' | 'updated' | 'unchanged' | 'no-patient'> {
  const id = determinationId(patientId);
  let stored: Observation | undefined;
  try {
    stored = await ctx.fhir.readResource<Observation>('Observation', id);
  } catch (err) {
    if ((err as { status?: number }).status !== 404 && (err as { status?: number }).status !== 410) {
      throw err;
    }
  }
  let answer: Parameters;
  try {
    answer = await ctx.fhir.get<Parameters>(`Patient/${patientId}/$ccm-eligibility`);
  } catch (err) {
    if ((err as { status?: number }).status === 404 || (err as { status?: number }).status === 410) {
      return 'no-patient';
    }
    throw err;
  }
  const next = determination(patientId, answer, ctx.now().toISOString());
  if (stored && sameFinding(stored, next)) {
    return 'unchanged';
  }
  // If-Match on the version read: a concurrent run that wrote first makes this one retry.
  await ctx.fhir.updateResource(next, stored?.meta?.versionId ? { ifMatch: stored.meta.versionId } : undefined);
  const verdict = answer.parameter?.find((p) => p.name === 'eligible')?.valueBoolean ? 'eligible' : 'not eligible';
  ctx.log.info(`Patient/${patientId}: ${verdict}`);
  return stored ? 'updated' : 'created';
}

export async function handler(event: BotEvent, ctx: BotContext): Promise<Parameters> {
  const one = event.trigger === 'manual' ? inputPatient(event.input) : patientOf(event);
  const ids: string[] = [];
  if (one) {
    ids.push(one);
  } else if (event.trigger === 'manual') {
    // Every patient, page by page.
    let bundle = await ctx.fhir.search<Patient>('Patient', { _count: 500, _elements: 'id' });
    for (;;) {
      ids.push(...(bundle.entry ?? []).map((e) => e.resource?.id as string));
      const next = bundle.link?.find((l) => l.relation === 'next')?.url;
      if (!next) {
        break;
      }
      bundle = await ctx.fhir.search<Patient>('Patient', next.slice(next.indexOf('?') + 1));
    }
  }
  const counts: Record<string, number> = {};
  for (const id of ids) {
    const outcome = await refresh(id, ctx);
    counts[outcome] = (counts[outcome] ?? 0) + 1;
  }
  return { resourceType: 'Parameters', parameter: Object.entries(counts).map(([name, n]) => ({ name, valueInteger: n })) };
}
