import type { Task } from '@medplum/fhirtypes';
import { describe as describeReadings, keeperFirst, newTask, openTaskQuery, readingsOf, withReadings, type Reading } from './task';

const NOW = new Date('2026-11-03T10:00:00Z');
const LATER = new Date('2026-11-03T12:00:00Z');
const r = (id: string, effective: string, text: string): Reading => ({ observation: `Observation/${id}`, effective, text });

describe('the alert Task', () => {
  const first = r('o1', '2026-11-03T09:00:00Z', 'Glucose 42 mg/dL (alert below 54 or above 400)');

  test('a new Task: urgent, requested, in its series, focused on the reading, due after dueWithinHours', () => {
    const task = newTask({ patient: 'p1', rule: 'glucose', reading: first, owner: { reference: 'Practitioner/cc' }, now: NOW, dueWithinHours: 24 });
    expect(task).toMatchObject({
      resourceType: 'Task',
      status: 'requested',
      intent: 'order',
      priority: 'urgent',
      groupIdentifier: { system: 'http://continuum-ccm.org/fhir/NamingSystem/odl-alert-series', value: 'p1:glucose' },
      code: { coding: [{ system: 'http://continuum-ccm.org/fhir/CodeSystem/ccm', code: 'odl-alert' }] },
      for: { reference: 'Patient/p1' },
      owner: { reference: 'Practitioner/cc' },
      focus: { reference: 'Observation/o1' },
      description: 'Glucose 42 mg/dL (alert below 54 or above 400)',
      authoredOn: NOW.toISOString(),
      restriction: { period: { end: '2026-11-04T10:00:00.000Z' } },
    });
    expect(readingsOf(task)).toEqual([first]);
    expect(newTask({ patient: 'p1', rule: 'glucose', reading: first, now: NOW })).not.toHaveProperty('owner');
    expect(newTask({ patient: 'p1', rule: 'glucose', reading: first, now: NOW, dueWithinHours: 0 })).not.toHaveProperty('restriction');
  });

  test('a later reading is added: count and first time in the description, focus on the newest', () => {
    const task = newTask({ patient: 'p1', rule: 'glucose', reading: first, now: NOW });
    const second = r('o2', '2026-11-03T11:30:00Z', 'Glucose 38 mg/dL (alert below 54 or above 400)');
    const next = withReadings(task, [second], LATER) as Task;
    expect(next.focus).toEqual({ reference: 'Observation/o2' });
    expect(next.description).toBe('Glucose 38 mg/dL (alert below 54 or above 400); 2 out-of-range readings since 2026-11-03T09:00:00Z');
    expect(next.lastModified).toBe(LATER.toISOString());
    expect(readingsOf(next).map((x) => x.observation)).toEqual(['Observation/o1', 'Observation/o2']);
    expect(next.input?.[1]).toEqual({
      extension: [{ url: 'http://continuum-ccm.org/fhir/StructureDefinition/odl-reading-effective', valueDateTime: '2026-11-03T11:30:00Z' }],
      type: { coding: [{ system: 'http://continuum-ccm.org/fhir/CodeSystem/ccm', code: 'odl-reading', display: 'Out-of-range reading' }] },
      valueReference: { reference: 'Observation/o2', display: 'Glucose 38 mg/dL (alert below 54 or above 400)' },
    });
  });

  test('a reading that arrives late (taken earlier) is listed in time order; the focus stays on the newest', () => {
    const task = newTask({ patient: 'p1', rule: 'glucose', reading: first, now: NOW });
    const next = withReadings(task, [r('o0', '2026-11-03T02:00:00-05:00', 'Glucose 45 mg/dL')], LATER) as Task;
    expect(readingsOf(next).map((x) => x.observation)).toEqual(['Observation/o0', 'Observation/o1']);
    expect(next.focus).toEqual({ reference: 'Observation/o1' });
    expect(next.description).toBe('Glucose 42 mg/dL (alert below 54 or above 400); 2 out-of-range readings since 2026-11-03T02:00:00-05:00');
  });

  test('a reading already listed changes nothing (a retry); a corrected one replaces its line', () => {
    const task = newTask({ patient: 'p1', rule: 'glucose', reading: first, now: NOW });
    expect(withReadings(task, [first], LATER)).toBeUndefined();
    const corrected = withReadings(task, [{ ...first, text: 'Glucose 40 mg/dL (alert below 54 or above 400)' }], LATER) as Task;
    expect(readingsOf(corrected)).toHaveLength(1);
    expect(corrected.description).toBe('Glucose 40 mg/dL (alert below 54 or above 400)');
  });

  test('inputs that are not readings are kept', () => {
    const task: Task = { ...newTask({ patient: 'p1', rule: 'pain', reading: first, now: NOW }), input: [{ type: { text: 'note' }, valueString: 'called the patient' }] };
    const next = withReadings(task, [r('o2', '2026-11-03T11:00:00Z', 'Pain 9/10')], LATER) as Task;
    expect(next.input?.[0]).toEqual({ type: { text: 'note' }, valueString: 'called the patient' });
    expect(readingsOf(next)).toHaveLength(1);
  });

  test('describe', () => {
    expect(describeReadings([])).toBe('');
    expect(describeReadings([first])).toBe(first.text);
  });

  test('the open Task of a series is found by group-identifier and open status', () => {
    expect(openTaskQuery('p1', 'blood-pressure')).toEqual({
      'group-identifier': 'http://continuum-ccm.org/fhir/NamingSystem/odl-alert-series|p1:blood-pressure',
      status: 'requested,received,accepted,in-progress',
    });
  });

  test('of two open Tasks of one series, the earliest opened (then the smallest id) is kept', () => {
    const a: Task = { resourceType: 'Task', id: 'b', status: 'requested', intent: 'order', authoredOn: '2026-11-03T10:00:00Z' };
    const b: Task = { ...a, id: 'a' };
    const c: Task = { ...a, id: '0', authoredOn: '2026-11-03T10:00:01Z' };
    expect(keeperFirst([c, a, b]).map((t) => t.id)).toEqual(['a', 'b', '0']);
  });
});
