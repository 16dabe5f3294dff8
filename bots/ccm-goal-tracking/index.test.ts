/**
 * ccm-goal-tracking with the bot test harness: each transition of the rule (rules.ts) through the
 * handler in process, on an injected clock; then deployed (bundle, sandbox, trigger, queue).
 */
import type { Bundle, Goal, Observation, Parameters, Patient } from '@medplum/fhirtypes';
import { join } from 'node:path';
import { createBotHarness, type BotHarness } from '../../src/bots/testing';
import manifest from './bot.json';
import { handler } from './index';

let clock = new Date('2026-11-01T12:00:00Z');
let h: BotHarness;

beforeAll(async () => {
  h = await createBotHarness({ now: () => clock });
});
afterAll(async () => {
  await h.close();
});

const SCOPE = manifest.scope;
const UCUM = 'http://unitsofmeasure.org';
const LOINC = 'http://loinc.org';
const ACHIEVEMENT = 'http://terminology.hl7.org/CodeSystem/goal-achievement';

async function newPatient(): Promise<string> {
  return (await h.fhir.createResource<Patient>({ resourceType: 'Patient', name: [{ family: 'Okafor' }] })).id as string;
}

/** A CCM goal: home systolic pressure below 130 mm[Hg]. */
function systolicGoal(patient: string, extra: Partial<Goal> = {}): Goal {
  return {
    resourceType: 'Goal',
    meta: { profile: ['http://continuum-ccm.org/fhir/StructureDefinition/ccm-goal'] },
    lifecycleStatus: 'active',
    description: { text: 'Home systolic pressure below 130' },
    subject: { reference: `Patient/${patient}` },
    target: [
      {
        measure: { coding: [{ system: LOINC, code: '8480-6', display: 'Systolic blood pressure' }] },
        detailQuantity: { value: 130, comparator: '<', system: UCUM, code: 'mm[Hg]', unit: 'mmHg' },
        dueDate: '2027-03-01',
      },
    ],
    ...extra,
  };
}

function bp(patient: string, sys: number, at: string): Observation {
  return {
    resourceType: 'Observation',
    meta: { profile: ['http://continuum-ccm.org/fhir/StructureDefinition/ccm-odl'] },
    status: 'final',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'vital-signs' }] }],
    code: { coding: [{ system: LOINC, code: '85354-9' }] },
    subject: { reference: `Patient/${patient}` },
    performer: [{ reference: `Patient/${patient}` }],
    effectiveDateTime: at,
    component: [
      { code: { coding: [{ system: LOINC, code: '8480-6' }] }, valueQuantity: { value: sys, system: UCUM, code: 'mm[Hg]', unit: 'mmHg' } },
      { code: { coding: [{ system: LOINC, code: '8462-4' }] }, valueQuantity: { value: 80, system: UCUM, code: 'mm[Hg]', unit: 'mmHg' } },
    ],
  };
}

/** The patient measures `sys` now (the clock moves to `at`), and the bot runs on it. */
async function measure(patient: string, sys: number, at: string): Promise<{ value: Parameters; log: string[] }> {
  clock = new Date(at);
  const obs = await h.fhir.createResource(bp(patient, sys, at));
  const run = await h.run(handler, { trigger: 'create', resource: obs }, { name: 'ccm-goal-tracking', scope: SCOPE, config: manifest.config });
  return { value: run.value as Parameters, log: run.log };
}

const status = (goal: Goal): string | undefined => goal.achievementStatus?.coding?.find((c) => c.system === ACHIEVEMENT)?.code;
const read = (id: string): Promise<Goal> => h.fhir.readResource<Goal>('Goal', id);
const versions = async (id: string): Promise<number> => ((await h.fhir.readHistory('Goal', id)) as Bundle).entry?.length ?? 0;

describe('transitions, in process, on an injected clock', () => {
  test('none -> in-progress -> improving -> achieved -> worsening -> in-progress -> worsening, each written once', async () => {
    const patient = await newPatient();
    const goal = await h.fhir.createResource(systolicGoal(patient));
    const steps: [number, string, string][] = [
      [150, '2026-11-01T08:00:00Z', 'in-progress'], // one reading: not enough for a trend
      [145, '2026-11-02T08:00:00Z', 'in-progress'], // two: still not
      [140, '2026-11-03T08:00:00Z', 'improving'], // 20, 15, 10 above the target
      [128, '2026-11-04T08:00:00Z', 'achieved'], // meets it
      [126, '2026-11-05T08:00:00Z', 'achieved'], // stays: no write
      [134, '2026-11-06T08:00:00Z', 'worsening'], // fell off the target
      [132, '2026-11-07T08:00:00Z', 'in-progress'], // 0, 4, 2: no steady trend
      [135, '2026-11-08T08:00:00Z', 'in-progress'], // 4, 2, 5: no steady trend
      [138, '2026-11-09T08:00:00Z', 'worsening'], // 2, 5, 8: farther each time
    ];
    const seen: string[] = [];
    for (const [sys, at, expected] of steps) {
      const run = await measure(patient, sys, at);
      const now = await read(goal.id as string);
      seen.push(status(now) as string);
      expect(run.value.parameter?.[0].part?.find((p) => p.name === 'status')?.valueCode).toBe(expected);
    }
    expect(seen).toEqual(steps.map((s) => s[2]));
    // Written only on a change: none->in-progress, ->improving, ->achieved, ->worsening, ->in-progress, ->worsening.
    expect(await versions(goal.id as string)).toBe(1 + 6);
    const last = await read(goal.id as string);
    expect(last.achievementStatus).toEqual({ coding: [{ system: ACHIEVEMENT, code: 'worsening', display: 'Worsening' }] });
  });

  test('worsening -> improving needs N readings each nearer; then achieved', async () => {
    const patient = await newPatient();
    const goal = await h.fhir.createResource(systolicGoal(patient, { achievementStatus: { coding: [{ system: ACHIEVEMENT, code: 'worsening' }] } }));
    await measure(patient, 150, '2026-11-01T08:00:00Z');
    expect(status(await read(goal.id as string))).toBe('in-progress');
    await measure(patient, 146, '2026-11-02T08:00:00Z');
    await measure(patient, 139, '2026-11-03T08:00:00Z');
    expect(status(await read(goal.id as string))).toBe('improving');
    await measure(patient, 129, '2026-11-04T08:00:00Z');
    expect(status(await read(goal.id as string))).toBe('achieved');
  });

  test('an unchanged status is not written again (no new version), however often the bot runs', async () => {
    const patient = await newPatient();
    const goal = await h.fhir.createResource(systolicGoal(patient));
    const first = await measure(patient, 120, '2026-11-01T08:00:00Z');
    expect(first.value.parameter?.[0].part).toEqual([
      { name: 'goal', valueReference: { reference: `Goal/${goal.id as string}` } },
      { name: 'change', valueCode: 'updated' },
      { name: 'status', valueCode: 'achieved' },
    ]);
    const again = await measure(patient, 118, '2026-11-02T08:00:00Z');
    expect(again.value.parameter?.[0].part?.find((p) => p.name === 'change')?.valueCode).toBe('unchanged');
    expect(await versions(goal.id as string)).toBe(2);
  });

  test('a reading taken after "now" (a device clock ahead) does not count until its time has come', async () => {
    const patient = await newPatient();
    const goal = await h.fhir.createResource(systolicGoal(patient));
    await measure(patient, 150, '2026-11-01T08:00:00Z');
    clock = new Date('2026-11-01T09:00:00Z');
    const ahead = await h.fhir.createResource(bp(patient, 120, '2026-11-02T08:00:00Z'));
    await h.run(handler, { trigger: 'create', resource: ahead }, { scope: SCOPE, config: manifest.config });
    expect(status(await read(goal.id as string))).toBe('in-progress');
    clock = new Date('2026-11-02T09:00:00Z');
    await h.run(handler, { trigger: 'manual', input: { resourceType: 'Parameters', parameter: [{ name: 'patient', valueString: patient }] } }, { scope: SCOPE, config: manifest.config });
    expect(status(await read(goal.id as string))).toBe('achieved');
  });

  test('readings before the goal started do not count', async () => {
    const patient = await newPatient();
    await h.fhir.createResource(bp(patient, 120, '2026-10-20T08:00:00Z'));
    const goal = await h.fhir.createResource(systolicGoal(patient, { startDate: '2026-11-01' }));
    await measure(patient, 140, '2026-11-02T08:00:00Z');
    expect(status(await read(goal.id as string))).toBe('in-progress'); // not 'worsening' after the old 120
  });

  test('a status a clinician set that the bot does not set (not-attainable) is left alone; other goals and measures are not touched', async () => {
    const patient = await newPatient();
    const clinician = await h.fhir.createResource(systolicGoal(patient, { achievementStatus: { coding: [{ system: ACHIEVEMENT, code: 'not-attainable' }] } }));
    const weightGoal = await h.fhir.createResource<Goal>({
      ...systolicGoal(patient),
      description: { text: 'Weight at most 80 kg' },
      target: [{ measure: { coding: [{ system: LOINC, code: '29463-7' }] }, detailQuantity: { value: 80, comparator: '<=', system: UCUM, code: 'kg' }, dueDate: '2027-03-01' }],
    });
    const inactive = await h.fhir.createResource(systolicGoal(patient, { lifecycleStatus: 'completed' }));
    const run = await measure(patient, 120, '2026-11-01T08:00:00Z');
    expect(status(await read(clinician.id as string))).toBe('not-attainable');
    expect(run.log.join('\n')).toContain("achievementStatus 'not-attainable' was set by a person; left alone (the readings say achieved)");
    expect((await read(weightGoal.id as string)).achievementStatus).toBeUndefined();
    expect((await read(inactive.id as string)).achievementStatus).toBeUndefined();
  });

  test('a reading by a clinician is not the patient’s: it neither triggers nor counts', async () => {
    const patient = await newPatient();
    const goal = await h.fhir.createResource(systolicGoal(patient));
    const clinic = await h.fhir.createResource({ ...bp(patient, 120, '2026-11-01T08:00:00Z'), meta: undefined, performer: [{ reference: 'Practitioner/nurse' }] });
    const run = await h.run(handler, { trigger: 'create', resource: clinic }, { scope: SCOPE, config: manifest.config });
    expect(run.value).toEqual({ resourceType: 'Parameters', parameter: [] });
    await measure(patient, 150, '2026-11-02T08:00:00Z');
    expect(status(await read(goal.id as string))).toBe('in-progress');
  });

  test('overlapping runs for one patient end in the status of all the readings', async () => {
    const patient = await newPatient();
    const goal = await h.fhir.createResource(systolicGoal(patient));
    clock = new Date('2026-11-05T12:00:00Z');
    const obs = await Promise.all(
      [150, 145, 140].map((sys, k) => h.fhir.createResource(bp(patient, sys, `2026-11-0${k + 1}T08:00:00Z`))),
    );
    await Promise.all(obs.map((o) => h.run(handler, { trigger: 'create', resource: o }, { scope: SCOPE, config: manifest.config })));
    expect(status(await read(goal.id as string))).toBe('improving');
  });

  test('without Goal.u in its scopes the bot cannot write goals', async () => {
    const patient = await newPatient();
    await h.fhir.createResource(systolicGoal(patient));
    const obs = await h.fhir.createResource(bp(patient, 120, '2026-11-01T08:00:00Z'));
    await expect(h.run(handler, { trigger: 'create', resource: obs }, { scope: 'system/Observation.rs system/Goal.rs' })).rejects.toMatchObject({ status: 403 });
  });
});

describe('deployed', () => {
  test('bots/ccm-goal-tracking deploys and keeps a goal current as the patient reports, through the sandbox', async () => {
    const report = await h.deploy(join(__dirname));
    expect(report).toMatchObject({ name: 'ccm-goal-tracking', library: 'created', triggers: [{ id: 'bot-ccm-goal-tracking-1', change: 'created' }] });
    clock = new Date('2026-11-10T12:00:00Z');
    const patient = await newPatient();
    const goal = await h.fhir.createResource(systolicGoal(patient));
    const first = await h.fhir.createResource(bp(patient, 125, '2026-11-10T08:00:00Z'));
    await h.settle();
    expect(status(await read(goal.id as string))).toBe('achieved');
    const second = await h.fhir.createResource(bp(patient, 142, '2026-11-10T09:00:00Z'));
    await h.settle();
    expect(status(await read(goal.id as string))).toBe('worsening');
    // A note changes nothing the trigger watches: no run. Deleting the high reading: achieved again.
    await h.fhir.updateResource({ ...first, note: [{ text: 'after a walk' }] });
    await h.fhir.deleteResource('Observation', second.id as string);
    await h.settle();
    expect(status(await read(goal.id as string))).toBe('achieved');
    expect(await versions(goal.id as string)).toBe(4);
    await h.continuum.audit.flush();
    const runs = (await h.continuum.store.audit.query({ clientId: 'bot:ccm-goal-tracking', count: 10000 })).filter((r) => r.category === 'bot');
    expect(runs.map((r) => r.interaction).sort()).toEqual(['create', 'create', 'delete']);
  });
});
