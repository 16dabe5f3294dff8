/**
 * ccm-time-entry-guard: the rules on their own, then deployed into a test server (pre-commit: a
 * refused entry is a 422 and is not stored).
 */
import { join } from 'node:path';
import type { Task } from '@medplum/fhirtypes';
import { deployBot } from '../../src/bots/deploy';
import { FHIR_JSON, startTestServer, type TestServer } from '../../test/support/server';
import { timeEntryProblems } from './rules';

const NOW = new Date('2026-03-15T12:00:00Z');
const entry = (start: string | undefined, end: string | undefined, fields: Partial<Task> = {}): Task => ({
  resourceType: 'Task',
  status: 'completed',
  intent: 'order',
  code: { coding: [{ system: 'http://continuum-ccm.org/fhir/CodeSystem/ccm', code: 'time-entry' }] },
  for: { reference: 'Patient/p1' },
  executionPeriod: { start, end },
  ...fields,
});

describe('rules', () => {
  test.each([
    ['a 20-minute entry this morning', '2026-03-15T09:00:00Z', '2026-03-15T09:20:00Z', []],
    ['exactly 24 hours', '2026-03-13T09:00:00Z', '2026-03-14T09:00:00Z', []],
    ['end before start', '2026-03-15T09:20:00Z', '2026-03-15T09:00:00Z', ['Task.executionPeriod.end']],
    ['over 24 hours', '2026-03-13T09:00:00Z', '2026-03-14T09:01:00Z', ['Task.executionPeriod']],
    ['starting in the future', '2026-03-15T13:00:00Z', '2026-03-15T13:20:00Z', ['Task.executionPeriod.start']],
    ['ending in the future', '2026-03-15T11:50:00Z', '2026-03-15T12:30:00Z', ['Task.executionPeriod.end']],
    ['no end', '2026-03-15T09:00:00Z', undefined, ['Task.executionPeriod.end']],
    ['a date without a time', '2026-03-15', '2026-03-15T09:20:00Z', ['Task.executionPeriod.start']],
  ])('%s', (_what, start, end, expressions) => {
    expect(timeEntryProblems(entry(start, end), NOW).map((p) => p.expression)).toEqual(expressions);
  });

  test('an entry not yet completed is not checked; one for a non-patient is refused', () => {
    expect(timeEntryProblems(entry(undefined, undefined, { status: 'in-progress' }), NOW)).toEqual([]);
    expect(timeEntryProblems(entry('2026-03-15T09:00:00Z', '2026-03-15T09:20:00Z', { for: { reference: 'Group/g' } }), NOW).map((p) => p.expression)).toEqual(['Task.for']);
  });
});

describe('deployed', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ now: () => NOW });
    await deployBot(join(__dirname), 'ccm-time-entry-guard', server.continuum.bots);
  });
  afterAll(() => server.close());

  test('a valid entry is stored; an impossible one is a 422 naming the problem, and nothing is stored', async () => {
    expect((await server.request().post('/Task').set('Content-Type', FHIR_JSON).send(entry('2026-03-15T09:00:00Z', '2026-03-15T09:20:00Z'))).status).toBe(201);
    const before = (await server.request().get('/Task?_summary=count')).body.total;
    const res = await server.request().post('/Task').set('Content-Type', FHIR_JSON).send(entry('2026-03-15T09:20:00Z', '2026-03-15T09:00:00Z'));
    expect(res.status).toBe(422);
    expect(res.body.issue[0].expression).toEqual(['Task.executionPeriod.end']);
    expect(res.body.issue[0].diagnostics).toContain('before it starts');
    expect((await server.request().get('/Task?_summary=count')).body.total).toBe(before);
  });

  test('other Tasks are not its business', async () => {
    const res = await server.request().post('/Task').set('Content-Type', FHIR_JSON).send({ resourceType: 'Task', status: 'completed', intent: 'order', executionPeriod: { start: '2030-01-01T00:00:00Z' } });
    expect(res.status).toBe(201);
  });
});
