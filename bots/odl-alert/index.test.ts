/**
 * odl-alert with the bot test harness: the handler in process (fast, debuggable), then deployed
 * into a test server (bundle, sandbox, trigger criteria and condition, queue).
 */
import type { CarePlan, CareTeam, Condition, Extension, Observation, Patient, Practitioner, Quantity, Task } from '@medplum/fhirtypes';
import { join } from 'node:path';
import { createBotHarness, type BotHarness } from '../../src/bots/testing';
import { handler, SERIES_SYSTEM, type OdlAlertConfig } from './index';
import manifest from './bot.json';
import { readingsOf } from './task';

let clock = new Date('2026-11-03T10:00:00Z');
let h: BotHarness;

beforeAll(async () => {
  h = await createBotHarness({ now: () => clock });
});
afterAll(async () => {
  await h.close();
});

const SCOPE = manifest.scope;
const CONFIG = manifest.config as OdlAlertConfig;
const SCT = 'http://snomed.info/sct';
const UCUM = 'http://unitsofmeasure.org';
const OPEN = 'requested,received,accepted,in-progress';

interface Setup {
  patient: string;
  coordinator?: string;
  team?: string;
}

/** A patient, and unless told otherwise an active CareTeam with a nurse and a care coordinator. */
async function setup(options: { team?: 'coordinator' | 'no-coordinator' | 'none'; heartFailure?: boolean; thresholds?: Extension } = {}): Promise<Setup> {
  const patient = (await h.fhir.createResource<Patient>({ resourceType: 'Patient', name: [{ family: 'Alvarez' }] })).id as string;
  const out: Setup = { patient };
  const kind = options.team ?? 'coordinator';
  if (kind !== 'none') {
    const cc = await h.fhir.createResource<Practitioner>({ resourceType: 'Practitioner', name: [{ family: 'Coordinator' }] });
    const nurse = await h.fhir.createResource<Practitioner>({ resourceType: 'Practitioner', name: [{ family: 'Nurse' }] });
    const team = await h.fhir.createResource<CareTeam>({
      resourceType: 'CareTeam',
      status: 'active',
      name: 'CCM team',
      subject: { reference: `Patient/${patient}` },
      participant: [
        { role: [{ coding: [{ system: SCT, code: '224535009', display: 'Registered nurse' }] }], member: { reference: `Practitioner/${nurse.id as string}` } },
        ...(kind === 'coordinator'
          ? [{ role: [{ coding: [{ system: SCT, code: '768820003', display: 'Care coordinator' }] }], member: { reference: `Practitioner/${cc.id as string}` } }]
          : []),
      ],
    });
    out.team = `CareTeam/${team.id as string}`;
    if (kind === 'coordinator') {
      out.coordinator = `Practitioner/${cc.id as string}`;
    }
  }
  if (options.heartFailure) {
    await h.fhir.createResource<Condition>({
      resourceType: 'Condition',
      subject: { reference: `Patient/${patient}` },
      clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'active' }] },
      code: { coding: [{ system: 'http://hl7.org/fhir/sid/icd-10-cm', code: 'I50.22' }] },
    });
  }
  if (options.thresholds) {
    await h.fhir.createResource<CarePlan>({
      resourceType: 'CarePlan',
      extension: [options.thresholds],
      status: 'active',
      intent: 'plan',
      category: [{ coding: [{ system: 'http://continuum-ccm.org/fhir/CodeSystem/ccm', code: 'ccm' }] }],
      subject: { reference: `Patient/${patient}` },
    });
  }
  return out;
}

const CATEGORY: Record<string, string> = { '72514-3': 'survey', '44261-6': 'survey' };
const UNIT: Record<string, string> = { '41653-7': 'mg/dL', '59408-5': '%', '29463-7': 'kg', '72514-3': '{score}', '44261-6': '{score}' };

function odl(patient: string, code: string, value: number | Quantity, at = '2026-11-03T09:00:00Z', performer = `Patient/${patient}`): Observation {
  return {
    resourceType: 'Observation',
    status: 'final',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: CATEGORY[code] ?? 'vital-signs' }] }],
    code: { coding: [{ system: 'http://loinc.org', code }] },
    subject: { reference: `Patient/${patient}` },
    performer: [{ reference: performer }],
    effectiveDateTime: at,
    valueQuantity: typeof value === 'number' ? { value, system: UCUM, code: UNIT[code], unit: UNIT[code] } : value,
  };
}

async function report(o: Observation, config: OdlAlertConfig = CONFIG): Promise<{ obs: Observation; tasks: Task[]; log: string[] }> {
  const obs = await h.fhir.createResource(o);
  const run = await h.run(handler, { trigger: 'create', resource: obs }, { name: 'odl-alert', scope: SCOPE, config });
  return { obs, tasks: run.value as Task[], log: run.log };
}

const series = (patient: string, rule: string): Promise<Task[]> =>
  h.fhir.searchResources<Task>('Task', { 'group-identifier': `${SERIES_SYSTEM}|${patient}:${rule}`, _sort: 'authored-on', _count: 100 });
const openTasks = (patient: string): Promise<Task[]> => h.fhir.searchResources<Task>('Task', { patient: `Patient/${patient}`, status: OPEN, _count: 100 });

describe('in process', () => {
  test('an out-of-range glucose opens one urgent Task for the care coordinator, pointing at the reading and saying why', async () => {
    const p = await setup();
    const { obs, log } = await report(odl(p.patient, '41653-7', 42));
    const tasks = await openTasks(p.patient);
    expect(tasks).toHaveLength(1);
    expect(tasks[0]).toMatchObject({
      status: 'requested',
      intent: 'order',
      priority: 'urgent',
      code: { coding: [{ system: 'http://continuum-ccm.org/fhir/CodeSystem/ccm', code: 'odl-alert' }] },
      for: { reference: `Patient/${p.patient}` },
      owner: { reference: p.coordinator },
      focus: { reference: `Observation/${obs.id as string}` },
      description: 'Glucose 42 mg/dL (alert below 54 or above 400)',
      authoredOn: clock.toISOString(),
      restriction: { period: { end: '2026-11-04T10:00:00.000Z' } },
      groupIdentifier: { system: SERIES_SYSTEM, value: `${p.patient}:glucose` },
    });
    expect(log.join('\n')).toContain(`opened for ${p.coordinator as string} (care coordinator ${p.coordinator as string} of ${p.team as string})`);
  });

  test('running again for the same reading (at-least-once delivery) changes nothing', async () => {
    const p = await setup();
    const { obs, tasks } = await report(odl(p.patient, '41653-7', 420));
    const again = await h.run(handler, { trigger: 'create', resource: obs }, { name: 'odl-alert', scope: SCOPE, config: CONFIG });
    expect((again.value as Task[])[0]).toMatchObject({ id: tasks[0].id, meta: { versionId: tasks[0].meta?.versionId } });
    expect(await series(p.patient, 'glucose')).toHaveLength(1);
  });

  test('repeated out-of-range readings of one kind update the open Task: readings listed, count, focus on the newest', async () => {
    const p = await setup();
    const first = await report(odl(p.patient, '59408-5', 86, '2026-11-03T08:00:00Z'));
    clock = new Date('2026-11-03T14:00:00Z');
    const second = await report(odl(p.patient, '59408-5', 84, '2026-11-03T13:00:00Z'));
    // Arrives last but was taken first: listed first, the focus stays on the newest.
    const late = await report(odl(p.patient, '59408-5', 87, '2026-11-03T06:00:00Z'));
    // In range: no alert, the Task is left alone.
    await report(odl(p.patient, '59408-5', 95, '2026-11-03T15:00:00Z'));
    const tasks = await series(p.patient, 'spo2');
    expect(tasks).toHaveLength(1);
    const task = tasks[0];
    expect(task.id).toBe(first.tasks[0].id);
    expect(task.status).toBe('requested');
    expect(task.focus).toEqual({ reference: `Observation/${second.obs.id as string}` });
    expect(task.description).toBe('SpO2 84 % (alert below 88); 3 out-of-range readings since 2026-11-03T06:00:00Z');
    expect(readingsOf(task).map((r) => r.observation)).toEqual([late.obs, first.obs, second.obs].map((o) => `Observation/${o.id as string}`));
    expect(task.authoredOn).toBe('2026-11-03T10:00:00.000Z');
    expect(task.lastModified).toBe('2026-11-03T14:00:00.000Z');
    expect(task.owner).toEqual({ reference: p.coordinator });
    clock = new Date('2026-11-03T10:00:00Z');
  });

  test('another kind of alert gets a Task of its own; a blood pressure panel alerts on its components', async () => {
    const p = await setup();
    await report(odl(p.patient, '41653-7', 30));
    const bp = odl(p.patient, '85354-9', 0);
    delete bp.valueQuantity;
    bp.component = [
      { code: { coding: [{ system: 'http://loinc.org', code: '8480-6' }] }, valueQuantity: { value: 182, system: UCUM, code: 'mm[Hg]', unit: 'mmHg' } },
      { code: { coding: [{ system: 'http://loinc.org', code: '8462-4' }] }, valueQuantity: { value: 95, system: UCUM, code: 'mm[Hg]', unit: 'mmHg' } },
    ];
    await report(bp);
    const tasks = await openTasks(p.patient);
    expect(tasks.map((t) => t.groupIdentifier?.value).sort()).toEqual([`${p.patient}:blood-pressure`, `${p.patient}:glucose`]);
    expect(tasks.find((t) => t.groupIdentifier?.value?.endsWith('blood-pressure'))?.description).toBe('Blood pressure 182/95 mm[Hg] (alert at 180/120)');
  });

  test('once the Task is closed, the next out-of-range reading opens a new one', async () => {
    const p = await setup();
    const first = await report(odl(p.patient, '72514-3', 9));
    await h.fhir.updateResource({ ...first.tasks[0], status: 'completed' });
    clock = new Date('2026-11-03T11:00:00Z');
    const next = await report(odl(p.patient, '72514-3', 8, '2026-11-03T10:30:00Z'));
    clock = new Date('2026-11-03T10:00:00Z');
    expect(next.tasks[0].id).not.toBe(first.tasks[0].id);
    const tasks = await series(p.patient, 'pain');
    expect(tasks.map((t) => t.status)).toEqual(['completed', 'requested']);
    expect(readingsOf(tasks[1])).toHaveLength(1);
  });

  test('a Task the team accepted or started is still open: readings are added to it', async () => {
    const p = await setup();
    const first = await report(odl(p.patient, '44261-6', 21));
    await h.fhir.updateResource({ ...first.tasks[0], status: 'in-progress' });
    await report(odl(p.patient, '44261-6', 23, '2026-11-03T09:30:00Z'));
    const tasks = await series(p.patient, 'phq9');
    expect(tasks).toHaveLength(1);
    expect(tasks[0]).toMatchObject({ status: 'in-progress', description: 'PHQ-9 total 23 (alert at 20); 2 out-of-range readings since 2026-11-03T09:00:00Z' });
  });

  test('a reassigned Task keeps its owner', async () => {
    const p = await setup();
    const first = await report(odl(p.patient, '41653-7', 45));
    await h.fhir.updateResource({ ...first.tasks[0], owner: { reference: 'Practitioner/someone-else' } });
    await report(odl(p.patient, '41653-7', 44, '2026-11-03T09:10:00Z'));
    expect((await series(p.patient, 'glucose'))[0].owner).toEqual({ reference: 'Practitioner/someone-else' });
  });

  test('no care coordinator on the team: the CareTeam owns the Task; no CareTeam: no owner, and the log says so', async () => {
    const noCoordinator = await setup({ team: 'no-coordinator' });
    const a = await report(odl(noCoordinator.patient, '41653-7', 41));
    expect(a.tasks[0].owner).toEqual({ reference: noCoordinator.team, display: 'CCM team' });
    expect(a.log.join('\n')).toContain(`no care coordinator on the patient's active CareTeam: ${noCoordinator.team as string} owns the Task`);

    const alone = await setup({ team: 'none' });
    const b = await report(odl(alone.patient, '41653-7', 41));
    expect(b.tasks[0]).not.toHaveProperty('owner');
    expect(b.log.join('\n')).toContain('opened for no owner (the patient has no active CareTeam: the Task has no owner)');
  });

  test('a Task opened without an owner gets the coordinator when a later reading comes after the team was formed', async () => {
    const p = await setup({ team: 'none' });
    await report(odl(p.patient, '41653-7', 41));
    const cc = await h.fhir.createResource<Practitioner>({ resourceType: 'Practitioner', name: [{ family: 'Late' }] });
    await h.fhir.createResource<CareTeam>({
      resourceType: 'CareTeam',
      status: 'active',
      subject: { reference: `Patient/${p.patient}` },
      participant: [{ role: [{ coding: [{ system: SCT, code: '768820003' }] }], member: { reference: `Practitioner/${cc.id as string}` } }],
    });
    await report(odl(p.patient, '41653-7', 40, '2026-11-03T09:20:00Z'));
    expect((await series(p.patient, 'glucose'))[0].owner).toEqual({ reference: `Practitioner/${cc.id as string}` });
  });

  test('a measurement taken by a clinician is not an ODL; an in-range one raises nothing', async () => {
    const p = await setup();
    await report(odl(p.patient, '59408-5', 80, '2026-11-03T09:00:00Z', 'Practitioner/nurse'));
    await report(odl(p.patient, '59408-5', 97));
    expect(await openTasks(p.patient)).toHaveLength(0);
  });

  test('bot.json thresholds apply, and the patient’s active CCM CarePlan overrides them (odl-thresholds extension)', async () => {
    const plain = await setup();
    await report(odl(plain.patient, '59408-5', 90));
    await report(odl(plain.patient, '59408-5', 90), { ...CONFIG, spo2Below: 91 });
    expect(await series(plain.patient, 'spo2')).toHaveLength(1);

    const tuned = await setup({
      thresholds: {
        url: 'http://continuum-ccm.org/fhir/StructureDefinition/odl-thresholds',
        extension: [
          { url: 'spo2Below', valueDecimal: 92 },
          { url: 'glucoseAbove', valueQuantity: { value: 250, system: UCUM, code: 'mg/dL' } },
          { url: 'heartRateAbove', valueInteger: 120 },
        ],
      },
    });
    const spo2 = await report(odl(tuned.patient, '59408-5', 91));
    expect(spo2.tasks[0].description).toBe('SpO2 91 % (alert below 92)');
    const glucose = await report(odl(tuned.patient, '41653-7', 260));
    expect(glucose.tasks[0].description).toBe('Glucose 260 mg/dL (alert below 54 or above 250)');
    expect(glucose.log.join('\n')).toContain("odl-thresholds: 'heartRateAbove' is not a threshold");
  });

  test('weight gain alerts for a heart-failure patient only, against the earlier patient-reported weights', async () => {
    const hf = await setup({ heartFailure: true });
    await report(odl(hf.patient, '29463-7', 80.0, '2026-10-30T07:00:00-05:00'));
    await report(odl(hf.patient, '29463-7', 80.9, '2026-11-02T07:00:00-05:00'));
    // A clinic weight (performer a Practitioner) is not compared: different scale, clothes.
    await h.fhir.createResource(odl(hf.patient, '29463-7', 78.0, '2026-11-02T15:00:00-05:00', 'Practitioner/nurse'));
    expect(await series(hf.patient, 'weight-gain')).toHaveLength(0);
    const day = await report(odl(hf.patient, '29463-7', { value: 180.7, system: UCUM, code: '[lb_av]', unit: 'lb' }, '2026-11-03T07:00:00-05:00'));
    // 180.7 lb = 81.96 kg: 1.06 kg above yesterday's 80.9.
    expect(day.tasks[0].description).toBe(
      'Weight gain 1.06 kg in a day for a heart-failure patient: 82 kg (180.7 [lb_av]) on 2026-11-03, up from 80.9 kg on 2026-11-02 (alert above 1 kg in a day or 2.3 kg in a week)',
    );

    const other = await setup();
    await report(odl(other.patient, '29463-7', 80.0, '2026-11-02T07:00:00-05:00'));
    await report(odl(other.patient, '29463-7', 85.0, '2026-11-03T07:00:00-05:00'));
    expect(await openTasks(other.patient)).toHaveLength(0);
  });

  test('readings processed at the same time end in one open Task that lists them all', async () => {
    const p = await setup();
    const observations = await Promise.all([1, 2, 3, 4].map((i) => h.fhir.createResource(odl(p.patient, '41653-7', 40 + i, `2026-11-03T0${i}:00:00Z`))));
    await Promise.all(observations.map((obs) => h.run(handler, { trigger: 'create', resource: obs }, { name: 'odl-alert', scope: SCOPE, config: CONFIG })));
    const open = (await series(p.patient, 'glucose')).filter((t) => t.status === 'requested');
    expect(open).toHaveLength(1);
    expect(readingsOf(open[0])).toHaveLength(4);
    expect(open[0].focus).toEqual({ reference: `Observation/${observations[3].id as string}` });
  });

  test('two open Tasks of one series (two runs opened one each) are merged into the earlier; the later is cancelled', async () => {
    const p = await setup();
    const a = await report(odl(p.patient, '72514-3', 9, '2026-11-03T08:00:00Z'));
    // Simulate the race: a second open Task in the same series, opened a second later.
    const dup = await h.fhir.createResource<Task>({
      ...a.tasks[0],
      id: undefined,
      meta: undefined,
      authoredOn: '2026-11-03T10:00:01.000Z',
      input: [],
      description: 'dup',
    });
    const b = await h.fhir.createResource(odl(p.patient, '72514-3', 10, '2026-11-03T08:30:00Z'));
    await h.fhir.updateResource<Task>({
      ...dup,
      input: [
        {
          extension: [{ url: 'http://continuum-ccm.org/fhir/StructureDefinition/odl-reading-effective', valueDateTime: '2026-11-03T08:30:00Z' }],
          type: { coding: [{ system: 'http://continuum-ccm.org/fhir/CodeSystem/ccm', code: 'odl-reading' }] },
          valueReference: { reference: `Observation/${b.id as string}`, display: 'Pain 10/10 (alert at 8)' },
        },
      ],
    });
    const c = await report(odl(p.patient, '72514-3', 8, '2026-11-03T09:00:00Z'));
    const tasks = await series(p.patient, 'pain');
    expect(tasks.map((t) => [t.id, t.status])).toEqual([
      [a.tasks[0].id, 'requested'],
      [dup.id, 'cancelled'],
    ]);
    expect(tasks[1].statusReason?.text).toBe(`Duplicate: merged into Task/${a.tasks[0].id as string}`);
    expect(readingsOf(tasks[0]).map((r) => r.observation)).toEqual([a.obs, b, c.obs].map((o) => `Observation/${o.id as string}`));
  });

  test('without Task.c in its scopes the bot cannot open Tasks', async () => {
    const p = await setup();
    const obs = await h.fhir.createResource(odl(p.patient, '41653-7', 500));
    await expect(
      h.run(handler, { trigger: 'create', resource: obs }, { scope: 'system/Observation.rs system/Condition.rs system/CarePlan.rs system/CareTeam.rs system/Task.rus', config: CONFIG }),
    ).rejects.toMatchObject({ status: 403 });
  });
});

describe('deployed', () => {
  test('bots/odl-alert deploys and runs post-commit on a matching write, through the sandbox', async () => {
    const report = await h.deploy(join(__dirname));
    expect(report).toMatchObject({ name: 'odl-alert', library: 'created', triggers: [{ id: 'bot-odl-alert-1', change: 'created' }] });
    expect((await h.deploy(join(__dirname))).library).toBe('unchanged');
    const p = await setup({ heartFailure: true });
    const low = await h.fhir.createResource(odl(p.patient, '59408-5', 85));
    await h.settle();
    const tasks = await openTasks(p.patient);
    expect(tasks).toHaveLength(1);
    expect(tasks[0]).toMatchObject({ description: 'SpO2 85 % (alert below 88)', owner: { reference: p.coordinator } });
    // An update that changes nothing the condition watches does not run the bot again.
    await h.fhir.updateResource({ ...low, note: [{ text: 'checked' }] });
    // A second low reading goes to the same Task; a weight gain opens its own.
    await h.fhir.createResource(odl(p.patient, '59408-5', 84, '2026-11-03T09:30:00Z'));
    await h.fhir.createResource(odl(p.patient, '29463-7', 80, '2026-11-02T09:00:00Z'));
    await h.settle();
    await h.fhir.createResource(odl(p.patient, '29463-7', 81.5, '2026-11-03T09:00:00Z'));
    await h.settle();
    const after = await openTasks(p.patient);
    expect(after.map((t) => t.groupIdentifier?.value).sort()).toEqual([`${p.patient}:spo2`, `${p.patient}:weight-gain`]);
    expect(after.find((t) => t.groupIdentifier?.value?.endsWith('spo2'))?.description).toBe('SpO2 84 % (alert below 88); 2 out-of-range readings since 2026-11-03T09:00:00Z');
    await h.continuum.audit.flush();
    const runs = (await h.continuum.store.audit.query({ clientId: 'bot:odl-alert', count: 10000 })).filter((r) => r.category === 'bot');
    expect(runs.filter((r) => r.interaction === 'update')).toHaveLength(0);
    expect(runs.filter((r) => r.interaction === 'create')).toHaveLength(4);
  });
});
