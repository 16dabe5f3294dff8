/**
 * The comprehensive care plan (ccm-domain.md section 4): which CMS elements a CCM CarePlan carries
 * (`CarePlan/{id}/$ccm-completeness`), its periodic review (bots/ccm-care-plan-review opens one Task
 * for the care team once the review date has passed), and sharing it electronically: one search with
 * `_include`s, and `Patient/{id}/$ccm-care-plan`, a FHIR document another server stores as it is.
 *
 * "Today" is the server's clock, 2026-03-15 unless a test moves it.
 */
import type { Bundle, CarePlan, Composition, Parameters, ParametersParameter, Resource, Task } from '@medplum/fhirtypes';
import { startTestServer, type TestServer } from '../../support/server';
import { CCM, create, enrollablePatient, read, ref, REVIEW_DATE, search, startCcmServer, type CcmServer, type Enrollable } from '../../support/ccm';

const TODAY = '2026-03-15';

let server: CcmServer;
beforeAll(async () => {
  server = await startCcmServer(TODAY);
});
afterAll(async () => {
  await server.continuum.bots.idle();
  await server.close();
});

const tag = (code: string): { coding: { system: string; code: string }[] } => ({ coding: [{ system: CCM, code }] });

interface FullPlan {
  who: Enrollable;
  plan: CarePlan;
  /** activity.reference targets. */
  activities: string[];
  supportingInfo: string[];
  /** Another organisation's practitioner on the care team. */
  outside: string;
}

/**
 * A plan that carries every CMS element: problems, a measurable goal, a care team with someone from
 * another organisation, activities with who is responsible (a Task tagged symptom management, a
 * referral, a MedicationRequest), and assessments as supportingInfo (prognosis, functional status,
 * environment, caregiver), plus its next review date.
 */
async function fullPlan(family: string, reviewOn = '2026-06-30'): Promise<FullPlan> {
  const who = await enrollablePatient(server, { family });
  const subject = { reference: who.patient };
  const me = { reference: who.practitioner };
  const outsideOrg = await create(server, { resourceType: 'Organization', name: `Cardiology of ${family}` });
  const cardiologist = await create(server, { resourceType: 'Practitioner', name: [{ family: 'Cardio' }] });
  const team = await create(server, {
    resourceType: 'CareTeam',
    status: 'active',
    name: 'CCM care team',
    subject,
    participant: [{ member: me }, { member: { reference: ref(cardiologist) }, onBehalfOf: { reference: ref(outsideOrg) } }],
  });
  const symptoms = await create(server, {
    resourceType: 'Task',
    status: 'requested',
    intent: 'plan',
    code: { ...tag('symptom-management'), text: 'Daily foot check and hypoglycaemia action plan' },
    for: subject,
    owner: me,
  });
  const referral = await create(server, {
    resourceType: 'ServiceRequest',
    status: 'active',
    intent: 'order',
    code: { text: 'Referral to cardiology' },
    subject,
    requester: me,
    performer: [{ reference: ref(cardiologist) }],
  });
  const metformin = await create(server, {
    resourceType: 'MedicationRequest',
    status: 'active',
    intent: 'order',
    medicationCodeableConcept: { coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '860975', display: 'metformin 500 MG' }] },
    subject,
    requester: me,
  });
  const prognosis = await create(server, {
    resourceType: 'ClinicalImpression',
    status: 'completed',
    subject,
    assessor: me,
    prognosisCodeableConcept: [{ text: 'Stable with good glycaemic control expected within 6 months' }],
  });
  const observation = (category: { system: string; code: string }, code: { coding?: { system: string; code: string }[]; text: string }): Resource => ({
    resourceType: 'Observation',
    status: 'final',
    category: [{ coding: [category] }],
    code,
    subject,
    effectiveDateTime: '2026-03-01',
    valueString: 'assessed',
  });
  const functional = await create(server, observation({ system: 'http://hl7.org/fhir/us/core/CodeSystem/us-core-category', code: 'functional-status' }, { text: 'Functional status' }));
  const environment = await create(server, observation({ system: 'http://hl7.org/fhir/us/core/CodeSystem/us-core-category', code: 'sdoh' }, { text: 'Home safety' }));
  const caregiver = await create(server, observation({ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'survey' }, { ...tag('caregiver-assessment'), text: 'Caregiver assessment' }));
  const activities = [symptoms, referral, metformin].map(ref);
  const supportingInfo = [prognosis, functional, environment, caregiver].map(ref);
  const plan = await create(
    server,
    who.plan({
      careTeam: [{ reference: ref(team) }],
      extension: [{ url: REVIEW_DATE, valueDate: reviewOn }],
      activity: activities.map((a) => ({ reference: { reference: a } })),
      supportingInfo: supportingInfo.map((s) => ({ reference: s })),
    }),
  );
  return { who, plan, activities, supportingInfo, outside: ref(cardiologist) };
}

interface Element {
  code: string;
  present: boolean;
  required: boolean;
  carriedBy: string;
  evidence: string[];
}

async function completeness(planId: string): Promise<{ complete: boolean; elements: Map<string, Element>; missing?: string }> {
  const res = await (await server.api()).get(`/CarePlan/${planId}/$ccm-completeness`);
  expect(res.status).toBe(200);
  const params = res.body as Parameters;
  const elements = new Map<string, Element>();
  for (const p of (params.parameter ?? []).filter((x) => x.name === 'element')) {
    const part = (name: string): ParametersParameter[] => (p.part ?? []).filter((x) => x.name === name);
    const code = part('code')[0].valueCode as string;
    expect(part('display')[0].valueString).toBeTruthy();
    elements.set(code, {
      code,
      present: part('present')[0].valueBoolean as boolean,
      required: part('required')[0].valueBoolean as boolean,
      carriedBy: part('carriedBy')[0].valueString as string,
      evidence: part('evidence').map((e) => e.valueReference?.reference as string),
    });
  }
  return {
    complete: params.parameter?.find((x) => x.name === 'complete')?.valueBoolean as boolean,
    elements,
    missing: params.parameter?.find((x) => x.name === 'missing')?.valueString,
  };
}

const CMS_ELEMENTS = [
  'problem-list',
  'expected-outcome',
  'measurable-goals',
  'functional-assessment',
  'symptom-management',
  'planned-interventions',
  'medication-management',
  'environmental-evaluation',
  'caregiver-assessment',
  'care-coordination',
  'periodic-review',
  'revision',
];

describe('CarePlan/{id}/$ccm-completeness', () => {
  test('a sparse plan: the problem list only; every other element reported missing, with where it would be carried', async () => {
    const who = await enrollablePatient(server, { family: 'Sparse' });
    const plan = await create(server, who.plan({ goal: undefined, careTeam: undefined }));
    const result = await completeness(plan.id as string);
    expect(result.complete).toBe(false);
    expect([...result.elements.keys()]).toEqual(CMS_ELEMENTS);
    expect(result.elements.get('problem-list')).toEqual({
      code: 'problem-list',
      present: true,
      required: true,
      carriedBy: 'CarePlan.addresses (Condition)',
      evidence: who.conditions,
    });
    for (const code of CMS_ELEMENTS.filter((c) => c !== 'problem-list')) {
      const el = result.elements.get(code) as Element;
      expect({ code, present: el.present, evidence: el.evidence }).toEqual({ code, present: false, evidence: [] });
      expect(el.carriedBy).toMatch(/^CarePlan\./);
    }
    // Revision applies only when the plan was revised: its absence is not a gap.
    expect(result.elements.get('revision')?.required).toBe(false);
    expect(result.missing).toContain('Measurable treatment goals');
    expect(result.missing).toContain('Caregiver assessment');
    expect(result.missing).not.toContain('Problem list');
    expect(result.missing).not.toContain('Revision');
  });

  test('a goal without a due date is not measurable', async () => {
    const who = await enrollablePatient(server, { family: 'Vaguegoal' });
    const vague = await create(server, { resourceType: 'Goal', lifecycleStatus: 'active', description: { text: 'Feel better' }, subject: { reference: who.patient }, target: [{ measure: { text: 'HbA1c' }, detailQuantity: { value: 7, unit: '%' } }] });
    const plan = await create(server, who.plan({ goal: [{ reference: ref(vague) }, { reference: who.goal }] }));
    const result = await completeness(plan.id as string);
    expect(result.elements.get('measurable-goals')?.evidence).toEqual([who.goal]);
  });

  test('a full plan: every element present with its evidence, complete = true; a later version counts as a revision', async () => {
    const full = await fullPlan('Full');
    const result = await completeness(full.plan.id as string);
    expect(result.complete).toBe(true);
    expect(result.missing).toBeUndefined();
    const evidence = (code: string): string[] => result.elements.get(code)?.evidence ?? [];
    const [symptoms, referral, metformin] = full.activities;
    const [prognosis, functional, environment, caregiver] = full.supportingInfo;
    expect(evidence('problem-list')).toEqual(full.who.conditions);
    expect(evidence('expected-outcome')).toEqual([prognosis]);
    expect(evidence('measurable-goals')).toEqual([full.who.goal]);
    expect(evidence('functional-assessment')).toEqual([functional]);
    expect(evidence('symptom-management')).toEqual([symptoms]);
    expect(evidence('planned-interventions')).toEqual([symptoms, referral, metformin]);
    expect(evidence('medication-management')).toEqual([metformin]);
    expect(evidence('environmental-evaluation')).toEqual([environment]);
    expect(evidence('caregiver-assessment')).toEqual([caregiver]);
    expect(evidence('care-coordination')).toEqual([referral, full.plan.careTeam?.[0].reference]);
    expect(evidence('periodic-review')).toEqual([`CarePlan/${full.plan.id as string}`]);
    for (const code of CMS_ELEMENTS.filter((c) => c !== 'revision')) {
      expect({ code, present: result.elements.get(code)?.present }).toEqual({ code, present: true });
    }
    expect(result.elements.get('revision')).toMatchObject({ present: false, evidence: [] });

    const revised = await (await server.api()).put(`/CarePlan/${full.plan.id as string}`).send({ ...full.plan, description: 'Revised after the March review' });
    expect(revised.status).toBe(200);
    expect((await completeness(full.plan.id as string)).elements.get('revision')).toMatchObject({ present: true, evidence: [`CarePlan/${full.plan.id as string}/_history/2`] });
  });

  test('an unknown plan is a 404', async () => {
    expect((await (await server.api()).get('/CarePlan/nope/$ccm-completeness')).status).toBe(404);
  });
});

describe('periodic review (bots/ccm-care-plan-review)', () => {
  const BOT = 'Library/bot-ccm-care-plan-review';

  async function runReview(): Promise<string[]> {
    const res = await (await server.api()).post(`/${BOT}/$execute`).send({ resourceType: 'Parameters' });
    if (res.status !== 200) {
      throw new Error(`$execute answered ${res.status}: ${JSON.stringify(res.body)}`);
    }
    const result = (res.body.parameter as { name: string; valueString: string }[]).find((p) => p.name === 'result');
    return (JSON.parse(result?.valueString ?? '{}') as { tasks: string[] }).tasks;
  }

  const reviewTasks = (plan: CarePlan): Promise<Task[]> => search<Task>(server, `Task?focus=CarePlan/${plan.id as string}&code=${CCM}|care-plan-review`);

  test('the review-date search parameter is known (profiles/SearchParameter-CarePlan-review-date.json)', async () => {
    const res = await (await server.api()).get('/CarePlan?review-date=lt2026-04-01');
    expect(res.status).toBe(200);
  });

  test('no Task before the review date nor on it; exactly one after it, for the care team, even when run twice', async () => {
    server.clock.set(TODAY);
    const { plan } = await fullPlan('Reviewed', '2026-04-30');
    for (const day of ['2026-04-15', '2026-04-30']) {
      server.clock.set(day);
      await runReview();
      expect(await reviewTasks(plan)).toEqual([]);
    }
    server.clock.set('2026-05-01');
    const first = await runReview();
    const second = await runReview();
    const tasks = await reviewTasks(plan);
    expect(tasks).toHaveLength(1);
    expect(first).toContain(`Task/${tasks[0].id as string}`);
    expect(second).toContain(`Task/${tasks[0].id as string}`);
    expect(tasks[0]).toMatchObject({
      status: 'requested',
      intent: 'order',
      code: { coding: [{ system: CCM, code: 'care-plan-review' }] },
      owner: plan.careTeam?.[0],
      focus: { reference: `CarePlan/${plan.id as string}` },
      for: plan.subject,
    });
    expect(tasks[0].description).toContain('2026-04-30');

    // After the review the plan gets its next review date: a new Task once that one has passed too.
    const api = await server.api();
    const current = await read<CarePlan>(server, `CarePlan/${plan.id as string}`);
    expect((await api.put(`/CarePlan/${plan.id as string}`).send({ ...current, extension: [{ url: REVIEW_DATE, valueDate: '2026-08-31' }] })).status).toBe(200);
    await runReview();
    expect(await reviewTasks(plan)).toHaveLength(1);
    server.clock.set('2026-09-01');
    await runReview();
    expect(await reviewTasks(plan)).toHaveLength(2);
  });

  test('a plan that is not active gets no review Task', async () => {
    server.clock.set(TODAY);
    const who = await enrollablePatient(server, { family: 'Draftreview' });
    const draft = await create(server, who.plan({ status: 'draft', extension: [{ url: REVIEW_DATE, valueDate: '2026-03-01' }] }));
    await runReview();
    expect(await reviewTasks(draft)).toEqual([]);
  });
  // Like the revocation bot, this one reads the due plans with one search of `_count: 1000` and never
  // follows the next link: with more than 1,000 reviews due, the rest never get their Task.
  test('every due plan gets its Task, however many are due (more than one page of 1,000)', async () => {
    server.clock.set(TODAY);
    const api = await server.api();
    // 1,000 plans due for review, loaded with the enrollment guard's trigger set aside (as a migration would).
    const guard = await read<Resource>(server, 'Subscription/bot-ccm-enrollment-guard-1');
    expect((await api.delete('/Subscription/bot-ccm-enrollment-guard-1')).status).toBe(204);
    const filler = await enrollablePatient(server, { family: 'Manyreviews' });
    const entries = Array.from({ length: 1000 }, (_, i) => {
      const id = `review-${String(i).padStart(4, '0')}`;
      return { resource: filler.plan({ id, extension: [{ url: REVIEW_DATE, valueDate: '2026-03-01' }] }), request: { method: 'PUT' as const, url: `CarePlan/${id}` } };
    });
    expect((await api.post('/').send({ resourceType: 'Bundle', type: 'transaction', entry: entries })).status).toBe(200);
    expect([200, 201]).toContain((await api.put('/Subscription/bot-ccm-enrollment-guard-1').send(guard)).status);
    const last = await enrollablePatient(server, { family: 'Lastreview' });
    const put = await api.put('/CarePlan/zzzz-last-review').send(last.plan({ id: 'zzzz-last-review', extension: [{ url: REVIEW_DATE, valueDate: '2026-03-01' }] }));
    expect(put.status).toBe(201);
    await runReview();
    expect(await reviewTasks(put.body as CarePlan)).toHaveLength(1);
  }, 180_000);
});

describe('sharing the plan', () => {
  let full: FullPlan;
  beforeAll(async () => {
    server.clock.set(TODAY);
    full = await fullPlan('Shared');
  });

  test('one search with _include returns the plan, its goals, conditions, care team and activities', async () => {
    const res = await (await server.api()).get(
      `/CarePlan?patient=${full.who.patient}&_include=CarePlan:goal&_include=CarePlan:condition&_include=CarePlan:care-team&_include=CarePlan:activity-reference`,
    );
    expect(res.status).toBe(200);
    const bundle = res.body as Bundle;
    const byMode = (mode: string): string[] => (bundle.entry ?? []).filter((e) => e.search?.mode === mode).map((e) => ref(e.resource as Resource)).sort();
    expect(byMode('match')).toEqual([`CarePlan/${full.plan.id as string}`]);
    expect(byMode('include')).toEqual([...full.who.conditions, full.who.goal, full.plan.careTeam?.[0].reference as string, ...full.activities].sort());
  });

  test('Patient/{id}/$ccm-care-plan: a document Bundle, Composition first, every referenced resource in it with an absolute fullUrl', async () => {
    const res = await (await server.api()).get(`/${full.who.patient}/$ccm-care-plan`);
    expect(res.status).toBe(200);
    const doc = res.body as Bundle;
    expect(doc.type).toBe('document');
    expect(doc.identifier?.system).toBeTruthy();
    expect(doc.identifier?.value).toBeTruthy();
    expect(doc.timestamp).toBe(server.clock.now().toISOString());
    const entries = doc.entry ?? [];
    const composition = entries[0].resource as Composition;
    expect(composition.resourceType).toBe('Composition');
    expect(composition).toMatchObject({ status: 'final', subject: { reference: full.who.patient }, type: { coding: [{ system: 'http://loinc.org', code: '18776-5' }] } });
    expect(composition.section?.map((s) => s.title)).toEqual(['Care plan', 'Problems', 'Goals', 'Care team', 'Planned activities']);
    expect(entries.filter((e) => e.resource?.resourceType === 'Composition')).toHaveLength(1);

    // Absolute, unique fullUrls that end in the resource's type and id.
    const urls = entries.map((e) => e.fullUrl as string);
    expect(new Set(urls).size).toBe(urls.length);
    for (const e of entries) {
      expect(e.fullUrl).toBe(`http://continuum.test/${ref(e.resource as Resource)}`);
    }
    // Every reference in the document resolves inside it: the Composition's, the plan's and those of
    // the resources they bring in (who is responsible for an activity, the outside practitioner...).
    const inBundle = new Set(entries.map((e) => ref(e.resource as Resource)));
    const unresolved = entries.flatMap((e) => references(e.resource).filter((r) => !inBundle.has(r)).map((r) => `${ref(e.resource as Resource)} -> ${r}`));
    expect(unresolved).toEqual([]);
    for (const expected of [full.who.patient, `CarePlan/${full.plan.id as string}`, ...full.who.conditions, full.who.goal, ...full.activities, ...full.supportingInfo, full.who.practitioner, full.outside]) {
      expect(inBundle).toContain(expected);
    }
  });

  // document.ts brings in the plan's own references and the people of the plan and its care team,
  // but not what the activities themselves reference: a MedicationRequest's Medication, the outside
  // clinic a referral goes to. The receiving EHR then holds `Medication/x` it cannot resolve, and the
  // plan's medication is lost.
  test('what the activities reference (a Medication, the clinic a referral goes to) is in the document too', async () => {
    const who = await enrollablePatient(server, { family: 'Indirect' });
    const clinic = await create(server, { resourceType: 'Organization', name: 'Endocrinology clinic' });
    const insulin = await create(server, { resourceType: 'Medication', code: { text: 'insulin glargine 100 UNT/ML' } });
    const referral = await create(server, { resourceType: 'ServiceRequest', status: 'active', intent: 'order', subject: { reference: who.patient }, requester: { reference: who.practitioner }, performer: [{ reference: ref(clinic) }] });
    const order = await create(server, { resourceType: 'MedicationRequest', status: 'active', intent: 'order', subject: { reference: who.patient }, requester: { reference: who.practitioner }, medicationReference: { reference: ref(insulin) } });
    await create(server, who.plan({ activity: [{ reference: { reference: ref(referral) } }, { reference: { reference: ref(order) } }] }));
    const doc = (await (await server.api()).get(`/${who.patient}/$ccm-care-plan`)).body as Bundle;
    const inBundle = new Set((doc.entry ?? []).map((e) => ref(e.resource as Resource)));
    expect(inBundle).toContain(ref(referral));
    expect(inBundle).toContain(ref(order));
    expect([ref(insulin), ref(clinic)].filter((r) => !inBundle.has(r))).toEqual([]);
  });

  test('the document is accepted as it is by another, empty server (POST /Bundle: 201)', async () => {
    const doc = (await (await server.api()).get(`/${full.who.patient}/$ccm-care-plan`)).body as Bundle;
    const other: TestServer = await startTestServer();
    try {
      const res = await other.request().post('/Bundle').send(doc);
      expect(res.status).toBe(201);
      const stored = await other.request().get(`/Bundle/${res.body.id as string}`);
      expect(stored.body).toMatchObject({ type: 'document', identifier: doc.identifier, timestamp: doc.timestamp });
      expect(stored.body.entry).toHaveLength(doc.entry?.length as number);
    } finally {
      await other.close();
    }
  });

  test('a patient without a CCM care plan gets 404', async () => {
    const who = await enrollablePatient(server, { family: 'Unplanned' });
    const res = await (await server.api()).get(`/${who.patient}/$ccm-care-plan`);
    expect(res.status).toBe(404);
    expect(res.body.issue[0].diagnostics).toContain('has no CCM care plan');
    expect((await (await server.api()).get('/Patient/nobody/$ccm-care-plan')).status).toBe(404);
  });

  test("a patient-scoped token gets its own patient's document, not another patient's", async () => {
    const patientId = full.who.patient.slice('Patient/'.length);
    const own = await (await server.as('patient/*.rs', { patient: patientId })).get(`/${full.who.patient}/$ccm-care-plan`);
    expect(own.status).toBe(200);
    expect(own.body.type).toBe('document');
    expect(own.body.entry[0].resource.subject).toEqual({ reference: full.who.patient });
    const owned = new Set((own.body.entry as { resource: Resource }[]).map((e) => ref(e.resource)));
    expect(owned).toContain(`CarePlan/${full.plan.id as string}`);

    const other = await fullPlan('Otherpatient');
    const theirs = await (await server.as('patient/*.rs', { patient: patientId })).get(`/${other.who.patient}/$ccm-care-plan`);
    expect([403, 404]).toContain(theirs.status);
    expect(JSON.stringify(theirs.body)).not.toContain(other.plan.id as string);
  });
});

/** Every relative literal reference (`Type/id`) anywhere in a resource. */
function references(resource: unknown): string[] {
  const out: string[] = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) {
      v.forEach(walk);
    } else if (v && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        if (k === 'reference' && typeof x === 'string' && /^[A-Z][A-Za-z]+\/[^/]+$/.test(x)) {
          out.push(x);
        } else {
          walk(x);
        }
      }
    }
  };
  walk(resource);
  return out;
}
