/**
 * Time entries to money over HTTP: `$ccm-billing` (system and patient level, CSV), the running
 * totals bot, and the month-close bot's ChargeItems (idempotent, scheduled on the 1st).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Bundle, ChargeItem, MeasureReport, Parameters, Resource, Task } from '@medplum/fhirtypes';
import { deployBot } from '../../../src/bots/deploy';
import { FHIR_JSON, startTestServer, type TestServer } from '../../support/server';

const CCM = 'http://continuum-ccm.org/fhir/CodeSystem/ccm';
const CPT = 'http://www.ama-assn.org/go/cpt';
const BOTS = join(__dirname, '../../../bots');
let clock = new Date('2026-03-28T12:00:00Z');
let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ now: () => clock });
  for (const bot of ['ccm-time-totals', 'ccm-month-close']) {
    await deployBot(join(BOTS, bot), bot, server.continuum.bots);
  }
});
afterAll(() => server.close());

async function create<T extends Resource>(resource: T): Promise<T & { id?: string }> {
  const res = await server.request().post(`/${resource.resourceType}`).set('Content-Type', FHIR_JSON).send(resource);
  expect(res.status).toBe(201);
  return res.body as T;
}

/** An enrolled patient: two chronic conditions, consent, an active CCM plan by `author`. */
async function enrolled(author: string, program = 'ccm'): Promise<{ patient: string; plan: string }> {
  const patient = (await create({ resourceType: 'Patient', name: [{ family: 'Nakamura' }], birthDate: '1948-02-02' })).id as string;
  for (const code of ['44054006', '38341003']) {
    await create({
      resourceType: 'Condition',
      subject: { reference: `Patient/${patient}` },
      clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'active' }] },
      code: { coding: [{ system: 'http://snomed.info/sct', code }] },
    });
  }
  await create({
    resourceType: 'Consent',
    status: 'active',
    scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'treatment' }] },
    category: [{ coding: [{ system: CCM, code: 'ccm' }] }],
    patient: { reference: `Patient/${patient}` },
    dateTime: '2026-01-05',
    provision: { period: { start: '2026-01-05' } },
  });
  const plan = await create({
    resourceType: 'CarePlan',
    status: 'active',
    intent: 'plan',
    category: [{ coding: [{ system: CCM, code: program }] }],
    subject: { reference: `Patient/${patient}` },
    author: { reference: author },
    period: { start: '2026-01-05' },
  });
  return { patient, plan: plan.id as string };
}

function timeEntry(patient: string, plan: string, start: string, minutes: number, kind = 'clinical-staff'): Task {
  return {
    resourceType: 'Task',
    status: 'completed',
    intent: 'order',
    code: { coding: [{ system: CCM, code: 'time-entry' }] },
    for: { reference: `Patient/${patient}` },
    basedOn: [{ reference: `CarePlan/${plan}` }],
    owner: { reference: 'Practitioner/nurse' },
    performerType: [{ coding: [{ system: CCM, code: kind }] }],
    executionPeriod: { start, end: new Date(Date.parse(start) + minutes * 60_000).toISOString() },
  };
}

const parts = (p: Parameters, name: string, patient: string): NonNullable<Parameters['parameter']> =>
  (p.parameter ?? []).filter((x) => x.name === name && x.part?.[0]?.valueReference?.reference === `Patient/${patient}`);
const part = (x: NonNullable<Parameters['parameter']>[number], name: string): NonNullable<Parameters['parameter']>[number] | undefined => x.part?.find((y) => y.name === name);

describe('$ccm-billing', () => {
  let a: { patient: string; plan: string };
  let b: { patient: string; plan: string };
  let c: { patient: string; plan: string };
  beforeAll(async () => {
    a = await enrolled('Practitioner/dr-a');
    b = await enrolled('Practitioner/dr-a');
    c = await enrolled('Practitioner/dr-c');
    await create(timeEntry(a.patient, a.plan, '2026-03-03T10:00:00Z', 25));
    await create(timeEntry(a.patient, a.plan, '2026-03-17T10:00:00Z', 20));
    await create(timeEntry(b.patient, b.plan, '2026-03-04T10:00:00Z', 12));
    await create(timeEntry(c.patient, c.plan, '2026-03-04T10:00:00Z', 30));
    // Another practitioner already billed CCM for c in March.
    await create({
      resourceType: 'ChargeItem',
      status: 'billable',
      code: { coding: [{ system: CPT, code: '99490' }] },
      subject: { reference: `Patient/${c.patient}` },
      occurrencePeriod: { start: '2026-03-01', end: '2026-03-31' },
      performer: [{ actor: { reference: 'Practitioner/elsewhere' } }],
    });
  });

  test('lines with units, minutes, amounts and the entries counted; skipped patients with the reason', async () => {
    const res = await server.request().get('/$ccm-billing?month=2026-03');
    expect(res.status).toBe(200);
    const p = res.body as Parameters;
    const lines = parts(p, 'line', a.patient).map((l) => [part(l, 'code')?.valueCoding?.code, part(l, 'units')?.valueInteger, part(l, 'minutes')?.valueInteger, part(l, 'amount')?.valueMoney?.value]);
    expect(lines).toEqual([
      ['99490', 1, 45, 66.13],
      ['99439', 1, 45, 47.43],
    ]);
    expect(parts(p, 'line', a.patient)[0].part?.filter((x) => x.name === 'entry')).toHaveLength(2);
    expect(part(parts(p, 'line', a.patient)[0], 'practitioner')?.valueReference?.reference).toBe('Practitioner/dr-a');
    const skippedB = parts(p, 'skipped', b.patient)[0];
    expect(part(skippedB, 'reason')?.valueCode).toBe('below-threshold');
    expect(part(skippedB, 'minutes')?.valueInteger).toBe(12);
    expect(part(parts(p, 'skipped', c.patient)[0], 'reason')?.valueCode).toBe('another-practitioner');
    expect(parts(p, 'rejected', a.patient).map((x) => part(x, 'option')?.valueCode)).toEqual(['pooled-complex', 'practitioner-only']);
  });

  test('patient level answers the same lines for that patient only', async () => {
    const res = await server.request().get(`/Patient/${a.patient}/$ccm-billing?month=2026-03`);
    expect(res.status).toBe(200);
    const lines = (res.body as Parameters).parameter?.filter((x) => x.name === 'line') ?? [];
    expect(lines.map((l) => part(l, 'code')?.valueCoding?.code)).toEqual(['99490', '99439']);
    expect(lines.every((l) => part(l, 'patient')?.valueReference?.reference === `Patient/${a.patient}`)).toBe(true);
    expect((await server.request().get(`/Patient/${a.patient}/$ccm-billing?month=2026-02`)).body.parameter.find((x: { name: string }) => x.name === 'skipped').part[1].valueCode).toBe('time-non-countable');
  });

  test('_format=csv gives the same for billing staff', async () => {
    const res = await server.request().get('/$ccm-billing?month=2026-03&_format=csv');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/csv/);
    const rows = res.text.trim().split('\r\n');
    expect(rows[0]).toBe('patient,month,status,code,units,minutes,amount,practitioner,reason');
    expect(rows).toContain(`Patient/${a.patient},2026-03,billed,99490,1,45,66.13,Practitioner/dr-a,`);
    expect(rows.find((r) => r.startsWith(`Patient/${b.patient},2026-03,skipped`))).toContain('below-threshold');
  });

  test.each([
    ['', 'month is required'],
    ['?month=March', "month 'March' is not a month"],
    ['?month=2026-13', 'is not a month'],
    ['?month=2026-03&units=metric', "Unknown parameter 'units'"],
  ])('bad input %s is a 400 naming it', async (query, text) => {
    const res = await server.request().get(`/$ccm-billing${query}`);
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.body)).toContain(text);
  });

  test('another format than JSON or CSV is a 406', async () => {
    expect((await server.request().get('/$ccm-billing?month=2026-03&_format=xml')).status).toBe(406);
  });

  test("a patient-bound token sees its own patient's billing only", async () => {
    const agent = await server.as('patient/*.rs', { patient: a.patient });
    expect((await agent.get(`/Patient/${a.patient}/$ccm-billing?month=2026-03`)).status).toBe(200);
    expect([403, 404]).toContain((await agent.get(`/Patient/${b.patient}/$ccm-billing?month=2026-03`)).status);
  });

  test('the whole-month billing asked with a patient-bound token reads only that patient (no other time entry, plan or patient leaks)', async () => {
    const all = (await server.request().get('/$ccm-billing?month=2026-03').expect(200)).body as Parameters;
    const patientsOf = (p: Parameters): string[] => [...new Set((p.parameter ?? []).flatMap((x) => (x.part ?? []).filter((y) => y.name === 'patient').map((y) => y.valueReference?.reference as string)))];
    expect(patientsOf(all)).toEqual(expect.arrayContaining([`Patient/${a.patient}`, `Patient/${b.patient}`]));
    const agent = await server.as('patient/*.rs', { patient: a.patient });
    const res = await agent.get('/$ccm-billing?month=2026-03');
    expect(res.status).toBe(200);
    expect(patientsOf(res.body as Parameters)).toEqual([`Patient/${a.patient}`]);
    expect(JSON.stringify(res.body)).not.toContain(b.patient);
  });
});

describe('the running total (ccm-time-totals bot)', () => {
  test('each time entry written updates the patient-month total: minutes counted and to the next code', async () => {
    const e = await enrolled('Practitioner/dr-e');
    const total = async (): Promise<MeasureReport> => {
      await server.continuum.bots.idle();
      return (await server.request().get(`/MeasureReport/ccm-minutes-2026-03-${e.patient}`)).body as MeasureReport;
    };
    const score = (r: MeasureReport, code: string): number | undefined => r.group?.find((g) => g.code?.coding?.[0]?.code === code)?.measureScore?.value;
    const first = await create(timeEntry(e.patient, e.plan, '2026-03-05T09:00:00Z', 14));
    let r = await total();
    expect([score(r, 'counted-minutes'), score(r, 'minutes-to-next-code')]).toEqual([14, 6]);
    expect(r.group?.find((g) => g.code?.coding?.[0]?.code === 'minutes-to-next-code')?.code?.coding?.[1]).toEqual({ system: CPT, code: '99490' });
    await create(timeEntry(e.patient, e.plan, '2026-03-06T09:00:00Z', 10, 'non-clinical-staff'));
    r = await total();
    expect([score(r, 'logged-minutes'), score(r, 'counted-minutes')]).toEqual([24, 14]);
    await server.request().put(`/Task/${first.id as string}`).set('Content-Type', FHIR_JSON).send({ ...first, executionPeriod: { start: '2026-03-05T09:00:00Z', end: '2026-03-05T09:30:00Z' } });
    r = await total();
    expect([score(r, 'counted-minutes'), score(r, 'minutes-to-next-code')]).toEqual([30, 10]);
    await server.request().delete(`/Task/${first.id as string}`);
    r = await total();
    expect(score(r, 'counted-minutes')).toBe(0);
  });
});

describe('month close (ccm-month-close bot)', () => {
  const chargeItemsOf = async (patient: string): Promise<ChargeItem[]> =>
    (((await server.request().get(`/ChargeItem?subject=Patient/${patient}&_count=100`)).body as Bundle).entry ?? []).map((e) => e.resource as ChargeItem);
  const close = async (month: string): Promise<Parameters> => {
    const res = await server
      .request()
      .post('/Library/bot-ccm-month-close/$execute')
      .set('Content-Type', FHIR_JSON)
      .send({ resourceType: 'Parameters', parameter: [{ name: 'month', valueString: month }] });
    expect(res.status).toBe(200);
    return res.body as Parameters;
  };

  test('one ChargeItem per code per patient-month; a rerun updates, never duplicates; a code no longer billed is voided', async () => {
    const m = await enrolled('Practitioner/dr-m');
    await create(timeEntry(m.patient, m.plan, '2026-02-03T10:00:00Z', 30));
    const extra = await create(timeEntry(m.patient, m.plan, '2026-02-10T10:00:00Z', 15));
    await close('2026-02');
    let items = await chargeItemsOf(m.patient);
    expect(items.map((c) => [c.code?.coding?.[0]?.code, c.quantity?.value, c.status]).sort()).toEqual([
      ['99439', 1, 'billable'],
      ['99490', 1, 'billable'],
    ]);
    const base = items.find((c) => c.code?.coding?.[0]?.code === '99490') as ChargeItem;
    expect(base).toMatchObject({
      subject: { reference: `Patient/${m.patient}` },
      occurrencePeriod: { start: '2026-02-01', end: '2026-02-28' },
      performer: [{ actor: { reference: 'Practitioner/dr-m' } }],
      priceOverride: { value: 66.13, currency: 'USD' },
    });
    expect(base.supportingInformation).toHaveLength(2);

    const again = await close('2026-02');
    expect(again.parameter?.find((p) => p.name === 'unchanged')?.valueInteger).toBeGreaterThanOrEqual(2);
    items = await chargeItemsOf(m.patient);
    expect(items).toHaveLength(2);
    expect(items.every((c) => c.meta?.versionId === '1')).toBe(true);

    // The 15-minute entry is withdrawn: 30 minutes earn 99490 only; the 99439 item is voided.
    await server.request().delete(`/Task/${extra.id as string}`);
    await close('2026-02');
    items = await chargeItemsOf(m.patient);
    expect(items.map((c) => [c.code?.coding?.[0]?.code, c.status]).sort()).toEqual([
      ['99439', 'entered-in-error'],
      ['99490', 'billable'],
    ]);
    // The voided item does not make the month look billed by someone else, and the month bills as before.
    const bill = (await server.request().get(`/Patient/${m.patient}/$ccm-billing?month=2026-02`)).body as Parameters;
    expect(bill.parameter?.filter((x) => x.name === 'line').map((l) => part(l, 'code')?.valueCoding?.code)).toEqual(['99490']);
  });

  test('the scheduled run on the 1st closes the month before', async () => {
    const s = await enrolled('Practitioner/dr-s');
    await create(timeEntry(s.patient, s.plan, '2026-03-20T10:00:00Z', 22));
    // The server's clock moves to the 1st for the tick only (tokens were issued on the test clock).
    clock = new Date('2026-04-01T02:00:00Z');
    try {
      await server.continuum.bots.tick(clock);
      await server.continuum.bots.idle();
    } finally {
      clock = new Date('2026-03-28T12:00:00Z');
    }
    const items = await chargeItemsOf(s.patient);
    expect(items.map((c) => [c.code?.coding?.[0]?.code, c.occurrencePeriod?.start])).toEqual([['99490', '2026-03-01']]);
  });

  test('$ccm-month-close directly: the same ChargeItems; bad input is a 400; a token limited to one patient is refused', async () => {
    const d = await enrolled('Practitioner/dr-d');
    await create(timeEntry(d.patient, d.plan, '2026-01-12T10:00:00Z', 25));
    const res = await server.request().post('/$ccm-month-close').set('Content-Type', FHIR_JSON).send({ resourceType: 'Parameters', parameter: [{ name: 'month', valueString: '2026-01' }] });
    expect(res.status).toBe(200);
    const n = (name: string): number | undefined => (res.body as Parameters).parameter?.find((p) => p.name === name)?.valueInteger;
    expect([n('chargeItems'), n('written'), n('voided')]).toEqual([1, 1, 0]);
    expect((await chargeItemsOf(d.patient)).map((c) => [c.code?.coding?.[0]?.code, c.status])).toEqual([['99490', 'billable']]);
    for (const [query, text] of [
      ['', 'month is required'],
      ['?month=2026-13', "month '2026-13' is not a month"],
      ['?month=2026-01&dryRun=true', "Unknown parameter 'dryRun'"],
    ]) {
      const bad = await server.request().post(`/$ccm-month-close${query}`);
      expect(bad.status).toBe(400);
      expect(JSON.stringify(bad.body)).toContain(text);
    }
    const narrow = await (await server.as('patient/*.cruds', { patient: d.patient })).post('/$ccm-month-close?month=2026-01');
    expect(narrow.status).toBe(403);
    expect(narrow.body.resourceType).toBe('OperationOutcome');
    expect(JSON.stringify(narrow.body)).toContain('Closing a month needs search access to every');
  });

  test('a close whose one write is refused writes nothing (one transaction), and succeeds once the refusal is gone', async () => {
    const ok = await enrolled('Practitioner/dr-ok');
    const refused = await enrolled('Practitioner/dr-no');
    await create(timeEntry(ok.patient, ok.plan, '2026-01-13T10:00:00Z', 25));
    await create(timeEntry(refused.patient, refused.plan, '2026-01-14T10:00:00Z', 25));
    // A pre-commit bot refusing the ChargeItem of one patient (as a site's own rule might).
    const dir = mkdtempSync(join(tmpdir(), 'refuse-charge-'));
    writeFileSync(
      join(dir, 'bot.json'),
      JSON.stringify({ description: 'test: refuses one ChargeItem', scope: 'system/ChargeItem.rs', triggers: [{ criteria: `ChargeItem?subject=Patient/${refused.patient}`, phase: 'pre-commit', interactions: ['create', 'update'] }] }),
    );
    writeFileSync(
      join(dir, 'index.ts'),
      "export async function handler() { return { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'business-rule', diagnostics: 'refused by the test bot' }] }; }\n",
    );
    await deployBot(dir, 'test-refuse-charge', server.continuum.bots);
    try {
      const res = await server.request().post('/$ccm-month-close?month=2026-01');
      expect(res.status).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
      expect(JSON.stringify(res.body)).toContain('refused by the test bot');
      expect(await chargeItemsOf(ok.patient)).toEqual([]);
      expect(await chargeItemsOf(refused.patient)).toEqual([]);
    } finally {
      await server.request().delete('/Library/bot-test-refuse-charge').expect((r) => expect([200, 204]).toContain(r.status));
      rmSync(dir, { recursive: true, force: true });
    }
    await server.continuum.bots.idle();
    const again = await server.request().post('/$ccm-month-close?month=2026-01');
    expect(again.status).toBe(200);
    expect((await chargeItemsOf(ok.patient)).map((c) => c.code?.coding?.[0]?.code)).toEqual(['99490']);
    expect((await chargeItemsOf(refused.patient)).map((c) => c.code?.coding?.[0]?.code)).toEqual(['99490']);
  });

  test('a bad month is refused', async () => {
    const res = await server.request().post('/Library/bot-ccm-month-close/$execute').set('Content-Type', FHIR_JSON).send({ resourceType: 'Parameters', parameter: [{ name: 'month', valueString: '2026-3' }] });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(JSON.stringify(res.body)).toContain("month '2026-3' is not a month");
  });
});
