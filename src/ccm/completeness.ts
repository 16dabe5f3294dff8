/**
 * `CarePlan/{id}/$ccm-completeness`: which elements of the CMS comprehensive care plan
 * (ccm-domain.md section 4) a CCM CarePlan carries, and where. Each element is found either by the
 * structure FHIR gives it (the table below) or, for elements FHIR has no single place for, by a
 * resource the plan references (activity or supportingInfo) that carries the element's code from
 * the ccm CodeSystem (group `care-plan-elements`) in its category or code.
 */
import type { CarePlan, CareTeam, Goal, Parameters, ParametersParameter, Reference, Resource } from '@medplum/fhirtypes';
import { requireId } from '../fhir/common';
import type { Handler, RequestContext } from '../fhir/types';
import { CCM_SYSTEM, REVIEW_DATE_EXTENSION } from './codes';
import { readOrNotFound, readReference } from './records';

export interface PlanParts {
  plan: CarePlan;
  goals: Goal[];
  careTeams: CareTeam[];
  /** activity.reference targets. */
  activities: Resource[];
  supportingInfo: Resource[];
}

export interface ElementResult {
  code: string;
  display: string;
  /** Where the element lives in FHIR, in words. */
  carriedBy: string;
  present: boolean;
  /** Only "when applicable" (revision): absent is not a gap. */
  required: boolean;
  evidence: string[];
}

const ref = (r: Resource): string => `${r.resourceType}/${r.id as string}`;

type Concept = { coding?: { system?: string; code?: string }[] };

/** Whether a resource carries ccm#code in its category or code. */
function tagged(r: Resource, code: string): boolean {
  const rec = r as unknown as { category?: Concept | Concept[]; code?: Concept };
  const concepts = [...(Array.isArray(rec.category) ? rec.category : rec.category ? [rec.category] : []), ...(rec.code ? [rec.code] : [])];
  return concepts.some((c) => c.coding?.some((x) => x.system === CCM_SYSTEM && x.code === code));
}

function hasCategory(r: Resource, codes: string[]): boolean {
  const cat = (r as unknown as { category?: Concept | Concept[] }).category;
  const list = Array.isArray(cat) ? cat : cat ? [cat] : [];
  return list.some((c) => c.coding?.some((x) => codes.includes(x.code ?? '')));
}

/** Who is responsible for an activity, if the activity says. */
function responsible(r: Resource): boolean {
  const rec = r as unknown as Record<string, unknown>;
  return ['owner', 'performer', 'requester', 'participant', 'sender', 'recorder'].some((k) => rec[k] !== undefined);
}

export async function planParts(ctx: RequestContext, plan: CarePlan): Promise<PlanParts> {
  const load = async <T extends Resource>(refs: (Reference | undefined)[]): Promise<T[]> => {
    const out: T[] = [];
    for (const r of refs) {
      const found = await readReference<T>(ctx, r?.reference);
      if (found) {
        out.push(found);
      }
    }
    return out;
  };
  return {
    plan,
    goals: await load<Goal>(plan.goal ?? []),
    careTeams: await load<CareTeam>(plan.careTeam ?? []),
    activities: await load<Resource>((plan.activity ?? []).map((a) => a.reference)),
    supportingInfo: await load<Resource>(plan.supportingInfo ?? []),
  };
}

/** Every CMS care-plan element, present or not. */
export function completeness(parts: PlanParts): ElementResult[] {
  const { plan, goals, careTeams, activities, supportingInfo } = parts;
  const referenced = [...activities, ...supportingInfo];
  const byTag = (code: string): Resource[] => referenced.filter((r) => tagged(r, code));
  const el = (code: string, display: string, carriedBy: string, evidence: string[], required = true): ElementResult => ({
    code,
    display,
    carriedBy,
    present: evidence.length > 0,
    required,
    evidence: [...new Set(evidence)],
  });
  const measurable = goals.filter((g) => g.target?.some((t) => t.measure && (t.detailQuantity ?? t.detailRange ?? t.detailCodeableConcept ?? t.detailString ?? t.detailBoolean ?? t.detailInteger ?? t.detailRatio) !== undefined && (t.dueDate ?? t.dueDuration)));
  const reviewDate = plan.extension?.find((e) => e.url === REVIEW_DATE_EXTENSION)?.valueDate;
  const outsideTeam = careTeams.filter((t) => t.participant?.some((p) => p.member?.reference?.startsWith('Organization/') || p.onBehalfOf?.reference));
  return [
    el('problem-list', 'Problem list', 'CarePlan.addresses (Condition)', (plan.addresses ?? []).map((a) => a.reference ?? '').filter(Boolean)),
    el('expected-outcome', 'Expected outcome and prognosis', 'CarePlan.supportingInfo: a ClinicalImpression with a prognosis (or a resource tagged ccm#expected-outcome)', [
      ...supportingInfo.filter((r) => r.resourceType === 'ClinicalImpression' && ((r as { prognosisCodeableConcept?: unknown[] }).prognosisCodeableConcept?.length || (r as { prognosisReference?: unknown[] }).prognosisReference?.length)).map(ref),
      ...byTag('expected-outcome').map(ref),
    ]),
    el('measurable-goals', 'Measurable treatment goals', 'CarePlan.goal: Goals with target.measure, target.detail[x] and target.due[x]', measurable.map(ref)),
    el('functional-assessment', 'Cognitive and functional assessment', 'CarePlan.supportingInfo: an assessment with category functional-status or cognitive-status (or tagged ccm#functional-assessment)', [
      ...supportingInfo.filter((r) => hasCategory(r, ['functional-status', 'cognitive-status'])).map(ref),
      ...byTag('functional-assessment').map(ref),
    ]),
    el('symptom-management', 'Symptom management', 'CarePlan.activity.reference or supportingInfo tagged ccm#symptom-management', byTag('symptom-management').map(ref)),
    el('planned-interventions', 'Planned interventions and who is responsible', 'CarePlan.activity.reference: Task, ServiceRequest, MedicationRequest, Appointment... naming who is responsible', activities.filter(responsible).map(ref)),
    el('medication-management', 'Medication management', 'CarePlan.activity.reference or supportingInfo: MedicationRequest, MedicationStatement (or tagged ccm#medication-management)', [
      ...referenced.filter((r) => r.resourceType === 'MedicationRequest' || r.resourceType === 'MedicationStatement').map(ref),
      ...byTag('medication-management').map(ref),
    ]),
    el('environmental-evaluation', 'Environmental evaluation', 'CarePlan.supportingInfo: an assessment with category sdoh or social-history (or tagged ccm#environmental-evaluation)', [
      ...supportingInfo.filter((r) => hasCategory(r, ['sdoh', 'social-history'])).map(ref),
      ...byTag('environmental-evaluation').map(ref),
    ]),
    el('caregiver-assessment', 'Caregiver assessment', 'CarePlan.supportingInfo tagged ccm#caregiver-assessment', byTag('caregiver-assessment').map(ref)),
    el('care-coordination', 'Coordination with outside resources, practitioners and providers', 'CarePlan.activity.reference: ServiceRequest or CommunicationRequest (referrals), or a CareTeam member from another Organization', [
      ...activities.filter((r) => r.resourceType === 'ServiceRequest' || r.resourceType === 'CommunicationRequest').map(ref),
      ...outsideTeam.map(ref),
      ...byTag('care-coordination').map(ref),
    ]),
    el('periodic-review', 'Requirements for periodic review', `CarePlan.extension(${REVIEW_DATE_EXTENSION}) (the next review date)`, reviewDate ? [`CarePlan/${plan.id as string}`] : []),
    el('revision', 'Revision of the plan (when applicable)', 'CarePlan.replaces, or a later version of the plan', [...(plan.replaces ?? []).map((r) => r.reference ?? ''), ...(Number(plan.meta?.versionId ?? '1') > 1 ? [`CarePlan/${plan.id as string}/_history/${plan.meta?.versionId as string}`] : [])].filter(Boolean), false),
  ];
}

export function completenessParameters(results: ElementResult[]): Parameters {
  const parameter: ParametersParameter[] = [{ name: 'complete', valueBoolean: results.every((r) => r.present || !r.required) }];
  for (const r of results) {
    parameter.push({
      name: 'element',
      part: [
        { name: 'code', valueCode: r.code },
        { name: 'display', valueString: r.display },
        { name: 'present', valueBoolean: r.present },
        { name: 'required', valueBoolean: r.required },
        { name: 'carriedBy', valueString: r.carriedBy },
        ...r.evidence.map((e) => ({ name: 'evidence', valueReference: { reference: e } })),
      ],
    });
  }
  const missing = results.filter((r) => !r.present && r.required).map((r) => r.display);
  if (missing.length > 0) {
    parameter.push({ name: 'missing', valueString: `The plan lacks: ${missing.join('; ')}.` });
  }
  return { resourceType: 'Parameters', parameter };
}

export const completenessOperation: Handler = async (_req, ctx, params) => {
  const plan = await readOrNotFound<CarePlan>(ctx, 'CarePlan', requireId(params.id));
  return { status: 200, resource: completenessParameters(completeness(await planParts(ctx, plan))) };
};
