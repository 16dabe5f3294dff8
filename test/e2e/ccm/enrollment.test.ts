/**
 * CCM enrollment (ccm-domain.md sections 2, 3 and 7): a CCM CarePlan becomes active only when, that
 * day, the patient is eligible, has an active CCM consent, was seen face to face by the billing
 * practitioner in the last 12 months, and no other practitioner holds an active CCM plan that month.
 * The enrollment-guard bot (bots/ccm-enrollment-guard, pre-commit) refuses any other write with 422
 * listing every unmet requirement; `POST CarePlan/$ccm-enrollment-check` answers the same.
 *
 * "Today" is the server's clock: 2026-03-15.
 */
import { randomUUID } from 'node:crypto';
import type { CarePlan, Consent, OperationOutcome } from '@medplum/fhirtypes';
import { condition, postEntry, transactionBundle } from '../../support/builders';
import {
  ACT_CODE,
  ccmConsent,
  create,
  enrollablePatient,
  practitioner,
  read,
  ref,
  requirementText,
  SCT,
  search,
  startCcmServer,
  unmet,
  visit,
  type CcmServer,
  type Enrollable,
} from '../../support/ccm';

const TODAY = '2026-03-15';

let server: CcmServer;
beforeAll(async () => {
  server = await startCcmServer(TODAY);
});
afterAll(async () => {
  await server.continuum.bots.idle();
  await server.close();
});

/** The server's answer to a CarePlan write: the plan when stored, an OperationOutcome when refused. */
interface Answer {
  status: number;
  plan: CarePlan;
  outcome: OperationOutcome;
}

const answer = (res: { status: number; body: unknown }): Answer => ({ status: res.status, plan: res.body as CarePlan, outcome: res.body as OperationOutcome });

async function postPlan(plan: CarePlan): Promise<Answer> {
  return answer(await (await server.api()).post('/CarePlan').send(plan));
}

async function plansOf(who: Enrollable): Promise<CarePlan[]> {
  return search<CarePlan>(server, `CarePlan?subject=${who.patient}`);
}

/** Posts the plan, expects 422 naming exactly `codes`, and that no plan of the patient was stored. */
async function expectRefused(who: Enrollable, plan: CarePlan, codes: string[]): Promise<OperationOutcome> {
  const before = (await plansOf(who)).length;
  const res = await postPlan(plan);
  expect(res.status).toBe(422);
  expect(res.outcome.resourceType).toBe('OperationOutcome');
  expect(unmet(res.outcome)).toEqual([...codes].sort());
  expect((await plansOf(who)).length).toBe(before);
  return res.outcome;
}

describe('the enrollment guard', () => {
  test('a CCM plan meeting every requirement is stored as active (201)', async () => {
    const who = await enrollablePatient(server, { family: 'Allmet' });
    const res = await postPlan(who.plan());
    expect(res.status).toBe(201);
    expect(res.plan).toMatchObject({ resourceType: 'CarePlan', status: 'active', author: { reference: who.practitioner } });
    expect((await read<CarePlan>(server, `CarePlan/${res.plan.id as string}`)).status).toBe('active');
  });

  describe('one refusal per requirement, in plain words, nothing stored', () => {
    test('eligible: one chronic category is not enough for CCM', async () => {
      const who = await enrollablePatient(server, { family: 'Onecategory', conditions: [SCT.diabetes, SCT.prediabetes] });
      const outcome = await expectRefused(who, who.plan(), ['eligible']);
      const text = requirementText(outcome, 'eligible');
      expect(text).toContain(`not eligible for CCM on ${TODAY}`);
      expect(text).toContain('all in one category (diabetes)');
      expect(outcome.issue?.[0]).toMatchObject({ severity: 'error', code: 'business-rule' });
    });

    test('consent: no active CCM consent on record', async () => {
      const who = await enrollablePatient(server, { family: 'Noconsent', consentFrom: false });
      const outcome = await expectRefused(who, who.plan(), ['consent']);
      expect(requirementText(outcome, 'consent')).toContain(`No active CCM consent is on record for the patient on ${TODAY}`);
    });

    test('consent: a consent that starts after today does not count yet', async () => {
      const who = await enrollablePatient(server, { family: 'Laterconsent', consentFrom: '2026-04-01' });
      await expectRefused(who, who.plan(), ['consent']);
    });

    test('consent: a treatment consent of another kind (no CCM program in its category) does not count', async () => {
      const who = await enrollablePatient(server, { family: 'Otherconsent', consentFrom: false });
      await create(server, ccmConsent(who.patient, who.patient, '2026-01-10', { category: [{ coding: [{ system: 'http://loinc.org', code: '59284-0' }] }] }));
      await expectRefused(who, who.plan(), ['consent']);
    });

    test('initiating-visit: the billing practitioner has not seen the patient', async () => {
      const who = await enrollablePatient(server, { family: 'Novisit', visitOn: false });
      const outcome = await expectRefused(who, who.plan(), ['initiating-visit']);
      const text = requirementText(outcome, 'initiating-visit');
      expect(text).toContain(`${who.practitioner} has not seen the patient face to face in the 12 months before ${TODAY}`);
    });

    test('one-practitioner: another practitioner already holds an active CCM plan this month', async () => {
      const who = await enrollablePatient(server, { family: 'Twodoctors' });
      const other = ref(await create(server, practitioner('Rival')));
      await create(server, visit(who.patient, other, '2026-02-02'));
      const held = await postPlan(who.plan({ author: { reference: other } }));
      expect(held.status).toBe(201);
      const outcome = await expectRefused(who, who.plan(), ['one-practitioner']);
      const text = requirementText(outcome, 'one-practitioner');
      expect(text).toContain(`${other} already holds an active CCM care plan (CarePlan/${held.plan.id as string}) for the patient in 2026-03`);
      expect(text).toContain('only one practitioner may furnish and bill CCM in a calendar month');
      // The same practitioner may hold a second plan (complex CCM, say): the rule is about practitioners.
      expect((await postPlan(who.plan({ author: { reference: other } }, 'complex-ccm'))).status).toBe(201);
    });

    test('one-practitioner: a plan another practitioner ended earlier this month still holds the month; one ended last month does not', async () => {
      const who = await enrollablePatient(server, { family: 'Handover' });
      const other = ref(await create(server, practitioner('Previous')));
      await create(server, visit(who.patient, other, '2026-02-02'));
      const earlier = await postPlan(who.plan({ author: { reference: other } }));
      expect(earlier.status).toBe(201);
      const ended = await server
        .request()
        .put(`/CarePlan/${earlier.plan.id as string}`)
        .set('Content-Type', 'application/fhir+json')
        .send({ ...earlier.plan, status: 'completed', period: { start: '2026-01-01', end: '2026-03-05' } });
      expect(ended.status).toBe(200);
      const outcome = await expectRefused(who, who.plan(), ['one-practitioner']);
      expect(requirementText(outcome, 'one-practitioner')).toContain(`${other} held a (now completed) CCM care plan`);
      await server
        .request()
        .put(`/CarePlan/${earlier.plan.id as string}`)
        .set('Content-Type', 'application/fhir+json')
        .send({ ...ended.body, period: { start: '2026-01-01', end: '2026-02-28' } });
      expect((await postPlan(who.plan())).status).toBe(201);
    });

    test('billing-practitioner: a plan without an author names nobody to check', async () => {
      const who = await enrollablePatient(server, { family: 'Noauthor' });
      const outcome = await expectRefused(who, who.plan({ author: undefined }), ['billing-practitioner']);
      expect(requirementText(outcome, 'billing-practitioner')).toContain('names no billing practitioner (CarePlan.author)');
    });

    test('patient: a plan whose subject is not a known Patient', async () => {
      const who = await enrollablePatient(server, { family: 'Ghostsubject' });
      const res = await postPlan(who.plan({ subject: { reference: 'Patient/does-not-exist' } }));
      expect(res.status).toBe(422);
      expect(unmet(res.outcome)).toEqual(['patient']);
      expect(await search(server, 'CarePlan?subject=Patient/does-not-exist')).toHaveLength(0);
    });
  });

  test('a plan failing several requirements lists every one of them', async () => {
    const who = await enrollablePatient(server, { family: 'Manygaps', conditions: [SCT.diabetes], visitOn: false, consentFrom: false });
    const other = ref(await create(server, practitioner('Holder')));
    // The other practitioner's plan is let in from a patient state that allows it, then taken away.
    await create(server, visit(who.patient, other, '2026-01-05'));
    const c2 = await create(server, ccmConsent(who.patient, who.patient, '2026-01-01'));
    const cond = await create(server, condition(who.patient, SCT.hypertension));
    expect((await postPlan(who.plan({ author: { reference: other } }))).status).toBe(201);
    const api = await server.api();
    expect((await api.put(`/Consent/${c2.id as string}`).send({ ...c2, status: 'inactive' })).status).toBe(200);
    expect((await api.delete(`/Condition/${cond.id as string}`)).status).toBe(204);

    const outcome = await expectRefused(who, who.plan(), ['consent', 'eligible', 'initiating-visit', 'one-practitioner']);
    for (const issue of outcome.issue ?? []) {
      expect(issue.details?.text?.length).toBeGreaterThan(20);
      expect(issue.diagnostics).toBe(issue.details?.text);
    }
    // Without an author, the rules that need one give way to the missing author.
    await expectRefused(who, who.plan({ author: undefined }), ['billing-practitioner', 'consent', 'eligible']);
  });

  test('a draft plan is not checked; moving it from draft to active is', async () => {
    const who = await enrollablePatient(server, { family: 'Drafted', consentFrom: false });
    const draft = await postPlan(who.plan({ status: 'draft' }));
    expect(draft.status).toBe(201);
    const api = await server.api();
    const activate = async (): Promise<Answer> => answer(await api.put(`/CarePlan/${draft.plan.id as string}`).send({ ...draft.plan, status: 'active' }));

    const refused = await activate();
    expect(refused.status).toBe(422);
    expect(unmet(refused.outcome)).toEqual(['consent']);
    const still = await read<CarePlan>(server, `CarePlan/${draft.plan.id as string}`);
    expect(still).toMatchObject({ status: 'draft', meta: { versionId: draft.plan.meta?.versionId } });

    await create(server, ccmConsent(who.patient, who.patient, '2026-03-14'));
    const accepted = await activate();
    expect(accepted.status).toBe(200);
    expect(accepted.plan.status).toBe('active');
    // An active plan edited while staying active is not checked again.
    const edited = await api.put(`/CarePlan/${draft.plan.id as string}`).send({ ...accepted.plan, title: 'Revised plan' });
    expect(edited.status).toBe(200);
  });

  test('a non-CCM active CarePlan is none of the guard\u2019s business', async () => {
    const who = await enrollablePatient(server, { family: 'Notccm', consentFrom: false, visitOn: false });
    const plain = { ...who.plan(), category: [{ coding: [{ system: 'http://hl7.org/fhir/us/core/CodeSystem/careplan-category', code: 'assess-plan' }] }] };
    expect((await postPlan(plain)).status).toBe(201);
  });

  describe('in a transaction Bundle', () => {
    test('the guard sees a Consent posted in the same transaction as the plan', async () => {
      const who = await enrollablePatient(server, { family: 'Txconsent', consentFrom: false });
      const consentUrn = `urn:uuid:${randomUUID()}`;
      const res = await (await server.api())
        .post('/')
        .send(transactionBundle([postEntry(consentUrn, ccmConsent(who.patient, who.patient, '2026-03-15')), postEntry(`urn:uuid:${randomUUID()}`, who.plan())]));
      expect(res.status).toBe(200);
      expect(res.body.entry.map((e: { response: { status: string } }) => e.response.status)).toEqual(['201', '201']);
      expect(await search(server, `Consent?patient=${who.patient}`)).toHaveLength(1);
      expect((await plansOf(who)).map((p) => p.status)).toEqual(['active']);
    });

    test('a transaction whose plan is refused leaves nothing behind, its Consent included', async () => {
      const who = await enrollablePatient(server, { family: 'Txrefused', consentFrom: false, visitOn: false });
      const res = await (await server.api())
        .post('/')
        .send(transactionBundle([postEntry(`urn:uuid:${randomUUID()}`, ccmConsent(who.patient, who.patient, '2026-03-15')), postEntry(`urn:uuid:${randomUUID()}`, who.plan())]));
      expect(res.status).toBe(422);
      expect(unmet(res.body as OperationOutcome)).toEqual(['initiating-visit']);
      expect(await search<Consent>(server, `Consent?patient=${who.patient}`)).toHaveLength(0);
      expect(await plansOf(who)).toHaveLength(0);
    });
  });

  describe('POST CarePlan/$ccm-enrollment-check', () => {
    test('answers 200 with the same issues the guard refuses with, and stores nothing', async () => {
      const who = await enrollablePatient(server, { family: 'Checked', conditions: [SCT.diabetes], consentFrom: false });
      const plan = who.plan();
      const check = await (await server.api()).post('/CarePlan/$ccm-enrollment-check').send(plan);
      expect(check.status).toBe(200);
      expect(check.body.resourceType).toBe('OperationOutcome');
      expect(unmet(check.body)).toEqual(['consent', 'eligible']);
      const guarded = await postPlan(plan);
      expect(guarded.status).toBe(422);
      expect(guarded.outcome.issue).toEqual(check.body.issue);
      expect(await plansOf(who)).toHaveLength(0);
    });

    test('all met: one information issue; a Parameters body with another date checks that date', async () => {
      const who = await enrollablePatient(server, { family: 'Checkedok' });
      const api = await server.api();
      const ok = await api.post('/CarePlan/$ccm-enrollment-check').send(who.plan());
      expect(ok.status).toBe(200);
      expect(ok.body.issue).toEqual([{ severity: 'information', code: 'informational', diagnostics: `Every CCM enrollment requirement is met on ${TODAY}.` }]);
      // On 2026-01-05 the consent had not started and the visit had not happened.
      const earlier = await api
        .post('/CarePlan/$ccm-enrollment-check')
        .send({ resourceType: 'Parameters', parameter: [{ name: 'resource', resource: who.plan() }, { name: 'date', valueDate: '2026-01-05' }] });
      expect(earlier.status).toBe(200);
      expect(unmet(earlier.body)).toEqual(['consent', 'initiating-visit']);
    });

    test('a body that is not a CarePlan is a 400', async () => {
      const res = await (await server.api()).post('/CarePlan/$ccm-enrollment-check').send({ resourceType: 'Patient' });
      expect(res.status).toBe(400);
    });
  });

  test('a PCM plan needs one qualifying chronic category; CCM needs two', async () => {
    const who = await enrollablePatient(server, { family: 'Pcm', conditions: [SCT.diabetes] });
    await expectRefused(who, who.plan(), ['eligible']);
    const pcm = await postPlan(who.plan({}, 'pcm'));
    expect(pcm.status).toBe(201);
    // With no qualifying condition at all, PCM is refused too.
    const none = await enrollablePatient(server, { family: 'Pcmnone', conditions: [SCT.prediabetes] });
    const outcome = await expectRefused(none, none.plan({}, 'pcm'), ['eligible']);
    expect(requirementText(outcome, 'eligible')).toContain('not eligible for principal care management');
  });

  describe('the initiating visit', () => {
    test('a visit 13 months ago does not count; one 12 months ago to the day does', async () => {
      const old = await enrollablePatient(server, { family: 'Oldvisit', visitOn: '2025-02-14' });
      await expectRefused(old, old.plan(), ['initiating-visit']);
      const edge = await enrollablePatient(server, { family: 'Edgevisit', visitOn: '2025-03-15' });
      expect((await postPlan(edge.plan())).status).toBe(201);
    });

    test('a virtual visit (class VR) does not count', async () => {
      const who = await enrollablePatient(server, { family: 'Virtual', visitOverrides: { class: { system: ACT_CODE, code: 'VR', display: 'virtual' } } });
      await expectRefused(who, who.plan(), ['initiating-visit']);
    });

    test('a visit with another practitioner does not count for the plan\u2019s author', async () => {
      const who = await enrollablePatient(server, { family: 'Otherdoctor' });
      const author = ref(await create(server, practitioner('Newcomer')));
      const outcome = await expectRefused(who, who.plan({ author: { reference: author } }), ['initiating-visit']);
      expect(requirementText(outcome, 'initiating-visit')).toContain(author);
    });

    test('an encounter that is not finished, or is dated after today, does not count', async () => {
      const planned = await enrollablePatient(server, { family: 'Plannedvisit', visitOverrides: { status: 'planned' } });
      await expectRefused(planned, planned.plan(), ['initiating-visit']);
      const future = await enrollablePatient(server, { family: 'Futurevisit', visitOn: '2026-03-20' });
      await expectRefused(future, future.plan(), ['initiating-visit']);
    });
  });

  test('the one-practitioner rule is per patient: two practitioners may each hold a plan for different patients', async () => {
    const a = await enrollablePatient(server, { family: 'Perpatienta' });
    const b = await enrollablePatient(server, { family: 'Perpatientb' });
    expect((await postPlan(a.plan())).status).toBe(201);
    expect((await postPlan(b.plan())).status).toBe(201);
  });

  // The guard's trigger condition only looks at the status (previous not active, current active): an
  // update that keeps the plan active but changes what the requirements depend on is never checked.
  describe('an active plan changed into one the requirements would refuse is checked', () => {
    async function update(plan: CarePlan): Promise<Answer> {
      return answer(await (await server.api()).put(`/CarePlan/${plan.id as string}`).send(plan));
    }

    test('a PCM plan switched to CCM while active (CCM needs a second chronic category)', async () => {
      const who = await enrollablePatient(server, { family: 'Pcmtoccm', conditions: [SCT.diabetes] });
      const pcm = await postPlan(who.plan({}, 'pcm'));
      expect(pcm.status).toBe(201);
      const switched = await update({ ...pcm.plan, category: [{ coding: [{ system: 'http://continuum-ccm.org/fhir/CodeSystem/ccm', code: 'ccm' }] }] });
      expect(switched.status).toBe(422);
      expect(unmet(switched.outcome)).toEqual(['eligible']);
      expect((await read<CarePlan>(server, `CarePlan/${pcm.plan.id as string}`)).category?.[0].coding?.[0].code).toBe('pcm');
    });

    test('an active non-CCM plan given a CCM category', async () => {
      const who = await enrollablePatient(server, { family: 'Recategorised', consentFrom: false, visitOn: false });
      const plain = await postPlan({ ...who.plan(), category: [{ coding: [{ system: 'http://hl7.org/fhir/us/core/CodeSystem/careplan-category', code: 'assess-plan' }] }] });
      expect(plain.status).toBe(201);
      const ccm = await update({ ...plain.plan, category: [...(plain.plan.category ?? []), { coding: [{ system: 'http://continuum-ccm.org/fhir/CodeSystem/ccm', code: 'ccm' }] }] });
      expect(ccm.status).toBe(422);
      expect(unmet(ccm.outcome)).toEqual(['consent', 'initiating-visit']);
    });

    test('an active CCM plan handed to a billing practitioner who never saw the patient', async () => {
      const who = await enrollablePatient(server, { family: 'Reauthored' });
      const stored = await postPlan(who.plan());
      expect(stored.status).toBe(201);
      const stranger = ref(await create(server, practitioner('Stranger')));
      const handed = await update({ ...stored.plan, author: { reference: stranger } });
      expect(handed.status).toBe(422);
      expect(unmet(handed.outcome)).toEqual(['initiating-visit']);
    });
  });
});
