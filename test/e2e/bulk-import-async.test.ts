/**
 * `POST /$import` with `Prefer: respond-async`: the FHIR asynchronous pattern (202 +
 * Content-Location, X-Progress while it runs, a batch-response Bundle at the end, DELETE cancels),
 * per-line errors by line number, owner-only status, and the per-client limit.
 */
import type { Bundle, OperationOutcome } from '@medplum/fhirtypes';
import { startTestServer, type TestServer } from './../support/server';

const NDJSON = 'application/fhir+ndjson';
let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(() => server.close());

const path = (url: string): string => url.replace(/^https?:\/\/[^/]+/, '');
const lines = (n: number, prefix: string): string =>
  Array.from({ length: n }, (_, i) => JSON.stringify({ resourceType: 'Patient', id: `${prefix}-${i}`, name: [{ family: `F${i}` }] })).join('\n');

async function finish(status: string): Promise<{ progress: string[]; final: { status: number; body: Bundle } }> {
  const progress: string[] = [];
  for (let i = 0; i < 600; i++) {
    const res = await server.request().get(status);
    if (res.status !== 202) {
      return { progress, final: { status: res.status, body: res.body as Bundle } };
    }
    progress.push(res.headers['x-progress'] as string);
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('the import did not finish');
}

test('202 with Content-Location; X-Progress counts lines; the answer lists bad lines by number and the rest is imported', async () => {
  // Enough lines (written in groups of 250) that the job is still running when first asked.
  const body = [lines(3000, 'async-a'), '{"resourceType": "Patient", "gender": "sometimes"}', 'not json', lines(2, 'async-b')].join('\n');
  const kick = await server.request().post('/$import').set('Content-Type', NDJSON).set('Prefer', 'respond-async').send(body);
  expect(kick.status).toBe(202);
  const status = path(kick.headers['content-location'] as string);
  expect(status).toMatch(/^\/\$async-status\//);
  const { progress, final } = await finish(status);
  expect(progress.length).toBeGreaterThan(0);
  expect(progress.every((p) => /^(queued|\d+ of 3004 lines \(\d+ failed\))$/.test(p))).toBe(true);
  expect(final.status).toBe(200);
  expect(final.body.type).toBe('batch-response');
  const outcome = final.body.entry?.[0].resource as OperationOutcome;
  expect(outcome.issue?.[0].diagnostics).toBe('Imported 3002 resource(s); 2 line(s) failed');
  expect(outcome.issue?.slice(1).map((i) => i.expression?.[0])).toEqual(['line 3001', 'line 3002']);
  expect((await server.request().get('/Patient/async-a-2999')).status).toBe(200);
  expect((await server.request().get('/Patient/async-b-1')).status).toBe(200);
});

test('DELETE on the status URL cancels: 202, and the status is gone', async () => {
  const kick = await server.request().post('/$import').set('Content-Type', NDJSON).set('Prefer', 'respond-async').send(lines(2000, 'async-c'));
  const status = path(kick.headers['content-location'] as string);
  expect((await server.request().delete(status)).status).toBe(202);
  expect((await server.request().get(status)).status).toBe(404);
  // Cancelled before the end: not every line was written.
  await new Promise((r) => setTimeout(r, 200));
  expect((await server.request().get('/Patient/async-c-1999')).status).toBe(404);
});

test('a third concurrent asynchronous request of one client is a 429 with Retry-After', async () => {
  const agent = await server.as('system/*.cruds', { clientId: 'busy-client' });
  const kicks = [];
  for (let i = 0; i < 3; i++) {
    kicks.push(await agent.post('/$import').set('Content-Type', NDJSON).set('Prefer', 'respond-async').send(lines(1500, `async-d${i}`)));
  }
  expect(kicks.map((k) => k.status)).toEqual([202, 202, 429]);
  expect(kicks[2].headers['retry-after']).toBe('10');
  expect(kicks[2].body.resourceType).toBe('OperationOutcome');
  for (const k of kicks.slice(0, 2)) {
    await agent.delete(path(k.headers['content-location'] as string));
  }
});

test('the status belongs to the client that started it; a token without create scope cannot import', async () => {
  const kick = await server.request().post('/$import').set('Content-Type', NDJSON).set('Prefer', 'respond-async').send(lines(1, 'async-e'));
  const status = path(kick.headers['content-location'] as string);
  const other = await server.as('system/*.cruds', { clientId: 'another-client' });
  expect((await other.get(status)).status).toBe(404);
  const reader = await server.as('system/*.rs');
  expect((await reader.post('/$import').set('Content-Type', NDJSON).set('Prefer', 'respond-async').send(lines(1, 'async-f'))).status).toBe(403);
  await finish(status);
});

test('lines go in groups, yet a group with a bad line or one id twice still writes every good line, in line order', async () => {
  const same = (family: string): string => JSON.stringify({ resourceType: 'Patient', id: 'group-twice', name: [{ family }] });
  const body = [lines(10, 'group-a'), same('First'), '{"resourceType": "Patient", "birthDate": "yesterday"}', same('Second'), lines(5, 'group-b')].join('\n');
  const res = await server.request().post('/$import').set('Content-Type', NDJSON).send(body).expect(200);
  const outcome = res.body as OperationOutcome;
  expect(outcome.issue?.[0].diagnostics).toBe('Imported 17 resource(s); 1 line(s) failed');
  expect(outcome.issue?.slice(1).map((i) => i.expression?.[0])).toEqual(['line 12']);
  // One id twice: both lines were written, as versions 1 and 2 in line order.
  const history = await server.request().get('/Patient/group-twice/_history').expect(200);
  expect(((history.body as Bundle).entry ?? []).map((e) => [e.resource?.meta?.versionId, (e.resource as { name?: { family?: string }[] }).name?.[0].family])).toEqual([
    ['2', 'Second'],
    ['1', 'First'],
  ]);
  expect((await server.request().get('/Patient/group-b-4')).status).toBe(200);
});
