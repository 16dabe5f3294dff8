/**
 * `Patient/{id}/$ccm-care-plan`: the patient's CCM care plan as a FHIR document (a Bundle of type
 * `document`, Composition first) that another EHR can store as it is: the Composition (LOINC
 * 18776-5, plan of care note) with sections for the plan, problems, goals, care team and
 * activities, and every resource those sections and the plan reference. Entries carry absolute
 * fullUrls on this server, so the relative references inside them resolve.
 */
import { randomUUID } from 'node:crypto';
import type { Bundle, BundleEntry, CarePlan, Composition, CompositionSection, Patient, Reference, Resource } from '@medplum/fhirtypes';
import { FhirError } from '../errors';
import { requireId } from '../fhir/common';
import type { Handler, RequestContext } from '../fhir/types';
import { LOINC, PROGRAM_TOKENS } from './codes';
import { operationInput } from './eligibility-operation';
import { planParts } from './completeness';
import { readOrNotFound, readReference, searchAll } from './records';

const escapeHtml = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function label(r: Resource): string {
  const rec = r as unknown as { code?: { text?: string; coding?: { display?: string }[] }; description?: { text?: string } | string; title?: string; name?: unknown };
  const description = typeof rec.description === 'string' ? rec.description : rec.description?.text;
  return rec.title ?? rec.code?.text ?? rec.code?.coding?.find((c) => c.display)?.display ?? description ?? `${r.resourceType}/${r.id as string}`;
}

function section(title: string, code: string, resources: Resource[]): CompositionSection {
  const items = resources.map((r) => `<li>${escapeHtml(label(r))}</li>`).join('');
  return {
    title,
    code: { coding: [{ system: LOINC, code }] },
    text: { status: 'generated', div: `<div xmlns="http://www.w3.org/1999/xhtml"><ul>${items || '<li>None recorded</li>'}</ul></div>` },
    ...(resources.length > 0
      ? { entry: resources.map((r) => ({ reference: `${r.resourceType}/${r.id as string}` })) }
      : { emptyReason: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/list-empty-reason', code: 'unavailable' }] } }),
  };
}

/** Literal references (`Type/id`) anywhere in a resource. */
function literalReferences(value: unknown, out: Set<string>): Set<string> {
  if (Array.isArray(value)) {
    value.forEach((v) => literalReferences(v, out));
  } else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (k === 'reference' && typeof v === 'string' && /^[A-Z][A-Za-z]+\/[A-Za-z0-9\-.]{1,64}$/.test(v)) {
        out.add(v);
      } else {
        literalReferences(v, out);
      }
    }
  }
  return out;
}

/** The patient's current CCM plan: an active one (newest), else the newest of any status. */
async function currentPlan(ctx: RequestContext, patientId: string, planId: string | undefined): Promise<CarePlan> {
  if (planId) {
    const plan = await readOrNotFound<CarePlan>(ctx, 'CarePlan', planId);
    if (plan.subject?.reference !== `Patient/${patientId}`) {
      throw new FhirError('not-found', `CarePlan/${planId} is not a plan of Patient/${patientId}`);
    }
    return plan;
  }
  const plans = await searchAll<CarePlan>(ctx, 'CarePlan', { subject: `Patient/${patientId}`, category: PROGRAM_TOKENS });
  const newest = (list: CarePlan[]): CarePlan | undefined => [...list].sort((a, b) => (b.meta?.lastUpdated ?? '').localeCompare(a.meta?.lastUpdated ?? ''))[0];
  const plan = newest(plans.filter((p) => p.status === 'active')) ?? newest(plans);
  if (!plan) {
    throw new FhirError('not-found', `Patient/${patientId} has no CCM care plan (a CarePlan with a ccm, complex-ccm or pcm category)`);
  }
  return plan;
}

export const carePlanDocumentOperation: Handler = async (req, ctx, params) => {
  const patientId = requireId(params.id);
  const input = operationInput(req, ['plan']);
  const patient = await readOrNotFound<Patient>(ctx, 'Patient', patientId);
  const plan = await currentPlan(ctx, patientId, input.plan);
  const parts = await planParts(ctx, plan);
  const conditions: Resource[] = [];
  for (const a of plan.addresses ?? []) {
    const c = await readReference<Resource>(ctx, a.reference);
    if (c) {
      conditions.push(c);
    }
  }
  // People and organisations the plan and its care team name.
  const people: Resource[] = [];
  const refs: (Reference | undefined)[] = [plan.author, ...(plan.contributor ?? []), ...parts.careTeams.flatMap((t) => (t.participant ?? []).flatMap((p) => [p.member, p.onBehalfOf]))];
  for (const r of refs) {
    if (r?.reference && !r.reference.startsWith('Patient/')) {
      const found = await readReference<Resource>(ctx, r.reference);
      if (found) {
        people.push(found);
      }
    }
  }
  const now = ctx.now().toISOString();
  const compositionId = randomUUID();
  const composition: Composition = {
    resourceType: 'Composition',
    id: compositionId,
    status: 'final',
    type: { coding: [{ system: LOINC, code: '18776-5', display: 'Plan of care note' }] },
    subject: { reference: `Patient/${patientId}` },
    date: now,
    author: [plan.author?.reference?.startsWith('CareTeam/') || !plan.author ? { display: plan.author?.display ?? 'Continuum' } : (plan.author as Composition['author'][number])],
    title: plan.title ?? 'Chronic care management plan',
    section: [
      section('Care plan', '18776-5', [plan]),
      section('Problems', '11450-4', conditions),
      section('Goals', '61146-7', parts.goals),
      section('Care team', '85847-2', parts.careTeams),
      section('Planned activities', '62387-6', parts.activities),
    ],
  };
  const included = new Map<string, Resource>();
  for (const r of [patient, plan, ...conditions, ...parts.goals, ...parts.careTeams, ...parts.activities, ...parts.supportingInfo, ...people]) {
    included.set(`${r.resourceType}/${r.id as string}`, r);
  }
  // What the included resources reference in turn (an activity's Medication, the clinic a referral
  // goes to), one level down; other patients are left out.
  for (const r of [...conditions, ...parts.goals, ...parts.activities, ...parts.supportingInfo]) {
    for (const reference of literalReferences(r, new Set())) {
      if (!included.has(reference) && !reference.startsWith('Patient/')) {
        const found = await readReference<Resource>(ctx, reference);
        if (found) {
          included.set(reference, found);
        }
      }
    }
  }
  const entry: BundleEntry[] = [
    { fullUrl: `${ctx.baseUrl}/Composition/${compositionId}`, resource: composition },
    ...[...included.entries()].map(([key, resource]) => ({ fullUrl: `${ctx.baseUrl}/${key}`, resource })),
  ];
  const bundle: Bundle = { resourceType: 'Bundle', identifier: { system: 'urn:ietf:rfc:3986', value: `urn:uuid:${randomUUID()}` }, type: 'document', timestamp: now, entry };
  return { status: 200, resource: bundle };
};
