/**
 * The CCM profiles (profiles/) on a running server, with the examples of fixtures/ccm/:
 * - each example of fixtures/ccm/examples.json is stored (valid) or refused with a 422 naming the
 *   expected element, invariant and profile, storing nothing (invalid);
 * - the CCM SearchParameters find what they should.
 * The files themselves (generated and up to date, valid R4, loadable) are checked by
 * test/unit/ccm/profiles.test.ts.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { OperationOutcome, OperationOutcomeIssue, Resource } from '@medplum/fhirtypes';
import { FHIR_JSON, startTestServer, type TestServer } from '../../support/server';

const FIXTURES = join(__dirname, '../../../fixtures/ccm');
const CCM = 'http://continuum-ccm.org/fhir/CodeSystem/ccm';

interface Example {
  file: string;
  /** The profile the example exercises (for the extensions: the extension's URL). */
  profile: string;
  valid: boolean;
  /** Invalid only: the issue's expression, and the invariant key when the rule is an invariant. */
  expression?: string;
  key?: string;
  /** The profile that reports it, when not `profile` (an extension checked through a resource profile). */
  checkedBy?: string;
  /** false: the server cannot check this rule yet (`gap` says why); the test is expected to fail. */
  checked?: boolean;
  gap?: string;
  /** Valid only: a warning the example should get from $validate. */
  warning?: { expression: string; key: string };
  breaks?: string;
  note?: string;
}

const manifest = JSON.parse(readFileSync(join(FIXTURES, 'examples.json'), 'utf8')) as { examples: Example[] };
const load = (file: string): Resource => JSON.parse(readFileSync(join(FIXTURES, file), 'utf8')) as Resource;
describe('the CCM examples (fixtures/ccm/examples.json) against the server', () => {
  let server: TestServer;
  const warnings: string[] = [];
  beforeAll(async () => {
    const warn = jest.spyOn(console, 'warn').mockImplementation((...args: unknown[]) => {
      warnings.push(args.map(String).join(' '));
    });
    try {
      server = await startTestServer(); // profileDirs: profiles/
    } finally {
      warn.mockRestore();
    }
  });
  afterAll(() => server.close());

  test('the server starts without complaints about profiles/', () => {
    expect(warnings.filter((w) => /profiles|conformance|SearchParameter/i.test(w))).toEqual([]);
  });

  const post = (resource: Resource) => server.request().post(`/${resource.resourceType}`).set('Content-Type', FHIR_JSON).send(resource);
  const stored = async (type: string): Promise<number> => (await server.request().get(`/${type}/_history`)).body.total as number;
  const errors = (oo: OperationOutcome): OperationOutcomeIssue[] => (oo.issue ?? []).filter((i) => i.severity === 'error' || i.severity === 'fatal');
  const text = (i: OperationOutcomeIssue): string => i.details?.text ?? i.diagnostics ?? '';

  const valid = manifest.examples.filter((e) => e.valid);
  test.each(valid.map((e) => [e.file, e] as const))('%s is stored', async (_file, example) => {
    const res = await post(load(example.file));
    expect({ status: res.status, issues: res.status === 201 ? [] : res.body.issue }).toEqual({ status: 201, issues: [] });
    if (example.warning) {
      const resource = load(example.file);
      const checked = await server
        .request()
        .post(`/${resource.resourceType}/$validate`)
        .set('Content-Type', FHIR_JSON)
        .send(resource);
      expect(checked.status).toBe(200);
      const warning = (checked.body as OperationOutcome).issue?.find(
        (i) => i.severity === 'warning' && i.expression?.[0] === example.warning?.expression && text(i).includes(` ${example.warning?.key} `),
      );
      expect(warning && text(warning)).toContain(example.profile);
    }
  });

  async function refused(example: Example): Promise<void> {
    const resource = load(example.file);
    const before = await stored(resource.resourceType);
    const res = await post(resource);
    expect(res.status).toBe(422);
    const found = errors(res.body as OperationOutcome).filter((i) => i.expression?.[0] === example.expression);
    // Name the expected element, the invariant (when it is one) and the profile.
    expect({ file: example.file, issues: found.map(text) }).toEqual({
      file: example.file,
      issues: expect.arrayContaining([
        expect.stringMatching(new RegExp(`${example.key ? ` ${example.key} .*` : ''}${escape(example.checkedBy ?? example.profile)}`)),
      ]),
    });
    expect(await stored(resource.resourceType)).toBe(before);
  }

  const invalid = manifest.examples.filter((e) => !e.valid);
  test.each(invalid.filter((e) => e.checked !== false).map((e) => [e.file, e.key ?? e.expression, e] as const))(
    '%s is refused (%s)',
    async (_file, _rule, example) => refused(example),
  );
});

describe('the CCM SearchParameters', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server.close());

  const create = async (resource: Resource): Promise<string> => {
    const res = await server.request().post(`/${resource.resourceType}`).set('Content-Type', FHIR_JSON).send(resource);
    expect(res.status).toBe(201);
    return res.body.id as string;
  };
  const ids = async (query: string): Promise<string[]> => {
    const res = await server.request().get(query);
    expect(res.status).toBe(200);
    return ((res.body.entry ?? []) as { resource: Resource }[]).map((e) => e.resource.id as string).sort();
  };

  test('Condition?chronic-category', async () => {
    const asserted = await create(load('condition-valid-chronic-category.json'));
    await create({ ...load('condition-valid-chronic-category.json'), extension: undefined } as Resource);
    expect(await ids('/Condition?chronic-category=diabetes')).toEqual([asserted]);
    expect(await ids('/Condition?chronic-category=asthma')).toEqual([]);
  });

  test('CarePlan?review-date', async () => {
    const plan = await create(load('careplan-valid.json')); // review due 2026-06-01
    expect(await ids('/CarePlan?review-date=le2026-06-30')).toEqual([plan]);
    expect(await ids('/CarePlan?review-date=lt2026-06-01')).toEqual([]);
  });

  test('Task?performer-type', async () => {
    const staff = await create(load('time-entry-valid.json'));
    const practitioner = await create(load('time-entry-valid-full-day-across-time-zones.json'));
    expect(await ids(`/Task?performer-type=${encodeURIComponent(`${CCM}|clinical-staff`)}`)).toEqual([staff]);
    expect(await ids('/Task?performer-type=billing-practitioner')).toEqual([practitioner]);
  });
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
