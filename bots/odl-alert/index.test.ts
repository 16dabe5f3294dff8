/**
 * odl-alert with the bot test harness: the handler in process (fast, debuggable), then deployed
 * into a test server (bundle, sandbox, trigger criteria and condition, queue).
 */
import type { Observation, Patient, Task } from '@medplum/fhirtypes';
import { join } from 'node:path';
import { createBotHarness, type BotHarness } from '../../src/bots/testing';
import { handler, TASK_IDENTIFIER_SYSTEM } from './index';

const NOW = new Date('2026-11-03T10:00:00Z');
let h: BotHarness;
let patient: string;

beforeAll(async () => {
  h = await createBotHarness({ now: () => NOW });
  patient = (await h.fhir.createResource<Patient>({ resourceType: 'Patient', name: [{ family: 'Alvarez' }] })).id as string;
});
afterAll(async () => {
  await h.close();
});

const vital = (code: string, value: number, performer = `Patient/${patient}`): Observation => ({
  resourceType: 'Observation',
  status: 'final',
  category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'vital-signs' }] }],
  code: { coding: [{ system: 'http://loinc.org', code }] },
  subject: { reference: `Patient/${patient}` },
  performer: [{ reference: performer }],
  effectiveDateTime: '2026-11-03T09:00:00Z',
  valueQuantity: { value, unit: code === '41653-7' ? 'mg/dL' : '%' },
});

const tasksFor = (obsId: string): Promise<Task[]> => h.fhir.searchResources<Task>('Task', { focus: `Observation/${obsId}` });

describe('in process', () => {
  test('an out-of-range glucose makes one urgent Task for the care team; running again makes no second one', async () => {
    const obs = await h.fhir.createResource(vital('41653-7', 42));
    const first = await h.run(handler, { trigger: 'create', resource: obs }, { name: 'odl-alert', scope: 'system/Observation.rs system/Task.crs' });
    const again = await h.run(handler, { trigger: 'create', resource: obs }, { name: 'odl-alert', scope: 'system/Observation.rs system/Task.crs' });
    const tasks = await tasksFor(obs.id as string);
    expect(tasks).toHaveLength(1);
    expect(tasks[0]).toMatchObject({ status: 'requested', priority: 'urgent', for: { reference: `Patient/${patient}` }, authoredOn: NOW.toISOString() });
    expect(tasks[0].identifier?.[0]).toEqual({ system: TASK_IDENTIFIER_SYSTEM, value: `${obs.id as string}:glucose` });
    expect((first.value as Task[])[0].id).toBe((again.value as Task[])[0].id);
    expect(first.log[0]).toContain('Glucose 42 mg/dL');
  });

  test('a measurement taken by a clinician is not an ODL; an in-range one raises nothing', async () => {
    const clinical = await h.fhir.createResource(vital('59408-5', 80, 'Practitioner/nurse'));
    const fine = await h.fhir.createResource(vital('59408-5', 97));
    await h.run(handler, { trigger: 'create', resource: clinical });
    await h.run(handler, { trigger: 'create', resource: fine });
    expect(await tasksFor(clinical.id as string)).toHaveLength(0);
    expect(await tasksFor(fine.id as string)).toHaveLength(0);
  });

  test('configured thresholds apply', async () => {
    const obs = await h.fhir.createResource(vital('59408-5', 90));
    await h.run(handler, { trigger: 'create', resource: obs }, { config: { spo2Below: 92 } });
    expect(await tasksFor(obs.id as string)).toHaveLength(1);
  });

  test('without Task.c in its scopes the bot cannot write Tasks', async () => {
    const obs = await h.fhir.createResource(vital('41653-7', 500));
    await expect(h.run(handler, { trigger: 'create', resource: obs }, { scope: 'system/Observation.rs system/Task.rs' })).rejects.toMatchObject({ status: 403 });
  });
});

describe('deployed', () => {
  test('bots/odl-alert deploys and runs post-commit on a matching write, through the sandbox', async () => {
    const report = await h.deploy(join(__dirname));
    expect(report).toMatchObject({ name: 'odl-alert', library: 'created', triggers: [{ id: 'bot-odl-alert-1', change: 'created' }] });
    expect((await h.deploy(join(__dirname))).library).toBe('unchanged');
    const low = await h.fhir.createResource(vital('59408-5', 85));
    await h.settle();
    const tasks = await tasksFor(low.id as string);
    expect(tasks).toHaveLength(1);
    expect(tasks[0].description).toBe('SpO2 85 % (alert below 88)');
    // An update that changes nothing the condition watches does not run the bot again.
    await h.fhir.updateResource({ ...low, note: [{ text: 'checked' }] });
    await h.settle();
    await h.continuum.audit.flush();
    const runs = (await h.continuum.store.audit.query({ clientId: 'bot:odl-alert', count: 100 })).filter((r) => r.category === 'bot');
    expect(runs.filter((r) => r.interaction === 'create')).toHaveLength(1);
    expect(runs.filter((r) => r.interaction === 'update')).toHaveLength(0);
  });
});
