/**
 * Search never answers 500: every parameter of a few types, with hostile or malformed values and
 * modifiers, gets a 200 or a 4xx OperationOutcome. A 500 is a bug.
 */
import { createRegistry } from '../../src/search/definitions';
import { startTestServer, type TestServer } from '../support/server';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ logError: () => undefined });
  await server.request().post('/Patient').set('Content-Type', 'application/fhir+json').send({ resourceType: 'Patient', name: [{ family: 'Fuzz' }] });
});
afterAll(() => server.close());

const VALUES = [
  "'; DROP TABLE resource_current; --",
  '%',
  '_',
  '\\',
  'gt',
  'gtfoo',
  'eq2020-13-45',
  '1e309',
  '-',
  '|',
  '||',
  'a|b|c|d',
  '$',
  'a$b$c',
  'Patient/',
  '/x',
  'http://',
  '\u0000',
  'é'.repeat(300),
  'x'.repeat(5000),
  ',,,',
  'true',
  'ap-1',
];
const MODIFIERS = ['', ':missing', ':exact', ':contains', ':not', ':text', ':of-type', ':identifier', ':below', ':above', ':Patient', ':iterate', ':bogus'];

/** A small deterministic generator, so failures reproduce. */
function* cases(): Generator<[string, string]> {
  const registry = createRegistry();
  let seed = 7;
  const pick = <T>(xs: T[]): T => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return xs[seed % xs.length];
  };
  for (const type of ['Patient', 'Observation', 'Condition', 'CarePlan']) {
    for (const def of registry.forType(type)) {
      for (let i = 0; i < 3; i++) {
        yield [type, `${def.code}${pick(MODIFIERS)}=${encodeURIComponent(pick(VALUES))}`];
      }
    }
    for (const extra of ['_sort=-x,', '_count=-1', '_include=Foo:bar', '_revinclude=*:iterate', '_has:Observation:subject', '_has:X:y:z=1', 'subject.name.family=x', '_elements=%00', '_summary=maybe', '_total=lots', '_cursor=!!']) {
      yield [type, extra];
    }
  }
}

test('no search answers 500', async () => {
  const failures: string[] = [];
  let checked = 0;
  for (const [type, qs] of cases()) {
    const res = await server.request().get(`/${type}?${qs}`);
    checked++;
    if (res.status >= 500 || (res.status >= 400 && res.body?.resourceType !== 'OperationOutcome')) {
      failures.push(`${res.status} GET /${type}?${qs.slice(0, 120)} ${JSON.stringify(res.body).slice(0, 200)}`);
    }
  }
  expect(failures).toEqual([]);
  expect(checked).toBeGreaterThan(300);
});
