/**
 * Consent revocation across a month boundary (ccm-domain.md section 3): a patient who revokes CCM
 * consent mid-March stays enrolled to the end of March (that month's time stays billable); the
 * consent-revocation bot (bots/ccm-consent-revocation, daily) moves the plan to `revoked` from April 1,
 * its period ending March 31. Time is injected: the server's clock is moved, never waited for.
 *
 * The tests of this file are one story told in order: enrolled in January, revoked in March, runs
 * on March 20, March 31, April 1 (twice), then the daily schedule at the end of April.
 */
import type { CarePlan, Consent, Library, Resource } from '@medplum/fhirtypes';
import { endOfMonth } from '../../../bots/ccm-consent-revocation/rules';
import { patient } from '../../support/builders';
import { ccmCarePlan, ccmConsent, create, enrollablePatient, read, ref, startCcmServer, type CcmServer, type Enrollable } from '../../support/ccm';

const BOT = 'Library/bot-ccm-consent-revocation';

let server: CcmServer;

/** Enrolled in January; revokes on March 14. */
let revoking: Enrollable & { plan_: CarePlan };
/** Revokes the first consent on March 14 but gave a second (complex CCM) one on March 10. */
let reconsented: Enrollable & { plan_: CarePlan };
/** Never revokes. */
let staying: Enrollable & { plan_: CarePlan };

async function enrolled(family: string): Promise<Enrollable & { plan_: CarePlan }> {
  const who = await enrollablePatient(server, { family, visitOn: '2026-01-08', consentFrom: '2026-01-10' });
  return { ...who, plan_: await create(server, who.plan({ period: { start: '2026-01-15' } })) };
}

/** Revocation as the domain records it: inactive, the period ending on the last day of the month. */
async function revoke(consentRef: string, on: string): Promise<Consent> {
  const consent = await read<Consent>(server, consentRef);
  const res = await (await server.api())
    .put(`/${consentRef}`)
    .send({ ...consent, status: 'inactive', provision: { ...consent.provision, period: { ...consent.provision?.period, end: endOfMonth(on) } } });
  expect(res.status).toBe(200);
  return res.body as Consent;
}

/** Runs the bot by `$execute` on the server's clock now; answers the plans it revoked. */
async function runBot(): Promise<string[]> {
  const res = await (await server.api()).post(`/${BOT}/$execute`).send({ resourceType: 'Parameters' });
  if (res.status !== 200) {
    throw new Error(`$execute answered ${res.status}: ${JSON.stringify(res.body)}`);
  }
  const result = (res.body.parameter as { name: string; valueString: string }[]).find((p) => p.name === 'result');
  return (JSON.parse(result?.valueString ?? '{}') as { revoked: string[] }).revoked;
}

const planOf = (who: { plan_: CarePlan }): Promise<CarePlan> => read<CarePlan>(server, `CarePlan/${who.plan_.id as string}`);

beforeAll(async () => {
  server = await startCcmServer('2026-01-15');
  revoking = await enrolled('Revoking');
  reconsented = await enrolled('Reconsented');
  staying = await enrolled('Staying');
  server.clock.set('2026-03-10');
  await create(server, ccmConsent(reconsented.patient, reconsented.patient, '2026-03-10', {}, 'complex-ccm'));
});
afterAll(async () => {
  await server.continuum.bots.idle();
  await server.close();
});

test('the bot is deployed as Library/bot-ccm-consent-revocation, scheduled daily at 00:10 UTC', async () => {
  const lib = await read<Library>(server, BOT);
  expect(lib.name).toBe('ccm-consent-revocation');
  expect(lib.extension?.map((e) => e.valueString)).toContain('10 0 * * *');
});

test('mid-March revocation: the consent becomes inactive, its period ending on March 31', async () => {
  server.clock.set('2026-03-14');
  for (const who of [revoking, reconsented]) {
    const revoked = await revoke(who.consent as string, server.clock.today());
    expect(revoked).toMatchObject({ status: 'inactive', provision: { period: { start: '2026-01-10', end: '2026-03-31' } } });
  }
  // Nothing happens to the plans on the day of revocation.
  expect(await runBot()).toEqual([]);
  expect((await planOf(revoking)).status).toBe('active');
});

test('on March 20 and on March 31 the plan stays active: the revocation month is still covered', async () => {
  for (const day of ['2026-03-20', '2026-03-31']) {
    server.clock.set(day);
    expect(await runBot()).toEqual([]);
    const plan = await planOf(revoking);
    expect(plan).toMatchObject({ status: 'active', meta: { versionId: revoking.plan_.meta?.versionId } });
  }
  // Late on March 31 (UTC) is still March.
  server.clock.set('2026-03-31T23:59:00Z');
  expect(await runBot()).toEqual([]);
});

test('on April 1 the plan is revoked, its period ending March 31; the other patients keep theirs', async () => {
  server.clock.set('2026-04-01T00:10:00Z');
  expect(await runBot()).toEqual([`CarePlan/${revoking.plan_.id as string}`]);
  const plan = await planOf(revoking);
  expect(plan.status).toBe('revoked');
  expect(plan.period).toEqual({ start: '2026-01-15', end: '2026-03-31' });
  // Everything else in the plan is as it was.
  expect(plan).toMatchObject({ author: revoking.plan_.author, careTeam: revoking.plan_.careTeam, goal: revoking.plan_.goal, addresses: revoking.plan_.addresses });
  // A second consent, still active, keeps the plan; a patient who never revoked keeps theirs.
  expect((await planOf(reconsented)).status).toBe('active');
  expect((await planOf(staying)).status).toBe('active');
});

test('running again changes nothing more', async () => {
  const before = await planOf(revoking);
  expect(await runBot()).toEqual([]);
  server.clock.set('2026-04-02');
  expect(await runBot()).toEqual([]);
  const after = await planOf(revoking);
  expect(after.meta?.versionId).toBe(before.meta?.versionId);
  const history = await (await server.api()).get(`/CarePlan/${revoking.plan_.id as string}/_history`);
  expect(history.body.total ?? history.body.entry.length).toBe(2);
});

test('the daily schedule does the same: a revocation in April ends the plan on April 30, from the run of May 1', async () => {
  server.clock.set('2026-04-20');
  await revoke(staying.consent as string, server.clock.today());
  // The scheduler's minute of April 30, 00:10 UTC, then May 1 (the cron scheduler itself is off in tests).
  for (const [at, expected] of [
    ['2026-04-30T00:10:00Z', 'active'],
    ['2026-05-01T00:10:00Z', 'revoked'],
  ] as const) {
    server.clock.set(at);
    expect(await server.continuum.bots.tick(server.clock.now())).toBeGreaterThanOrEqual(1);
    await server.continuum.bots.idle();
    expect((await planOf(staying)).status).toBe(expected);
  }
  expect((await planOf(staying)).period?.end).toBe('2026-04-30');
  expect((await planOf(reconsented)).status).toBe('active');
});

// The bot reads the active CCM plans with one search of `_count: 1000` and never follows the next
// link: in a practice with more than 1,000 enrolled patients, the plans after the first page are
// never revoked. (bots/ccm-care-plan-review reads its plans the same way.)
test('every active plan is looked at, however many: a revocation behind the first 1,000 plans still ends its plan', async () => {
  server.clock.set('2026-05-02');
  const api = await server.api();
  // 1,000 enrolled patients' plans, loaded as a migration would: with the enrollment guard's trigger
  // set aside while they load (it has no say in what the revocation bot must find).
  const guard = await read<Resource>(server, 'Subscription/bot-ccm-enrollment-guard-1');
  expect((await api.delete('/Subscription/bot-ccm-enrollment-guard-1')).status).toBe(204);
  const filler = await create(server, patient({ name: [{ family: 'Filler' }] }));
  const entries = Array.from({ length: 1000 }, (_, i) => {
    const id = `filler-${String(i).padStart(4, '0')}`;
    return { resource: ccmCarePlan(ref(filler), { id }), request: { method: 'PUT' as const, url: `CarePlan/${id}` } };
  });
  const loaded = await api.post('/').send({ resourceType: 'Bundle', type: 'transaction', entry: entries });
  expect(loaded.status).toBe(200);
  expect([200, 201]).toContain((await api.put('/Subscription/bot-ccm-enrollment-guard-1').send(guard)).status);

  // The last patient to enrol, revoking in May.
  const late = await enrollablePatient(server, { family: 'Late', visitOn: '2026-05-01', consentFrom: '2026-05-01' });
  const put = await api.put('/CarePlan/zzzz-late').send(late.plan({ id: 'zzzz-late', period: { start: '2026-05-02' } }));
  expect(put.status).toBe(201);
  const plan = put.body as CarePlan;
  await revoke(late.consent as string, server.clock.today());
  server.clock.set('2026-06-01T00:10:00Z');
  expect(await runBot()).toContain(`CarePlan/${plan.id as string}`);
  expect(await read<CarePlan>(server, `CarePlan/${plan.id as string}`)).toMatchObject({ status: 'revoked', period: { end: '2026-05-31' } });
}, 120_000);
