/**
 * Notification Subscriptions (rest-hook) end to end: a local receiver records every delivery the
 * durable queue makes (method, URL, headers, raw body) and can be told to fail or to hang. Covers
 * criteria and interaction filtering, the three payload kinds, custom headers, the HMAC signature,
 * retries with backoff, dead letters shown on the Subscription, delivery timeouts, FHIRPath
 * conditions, who may write Subscriptions (and bot Libraries and triggers), and 422s for
 * definitions the runtime cannot use.
 */
import { createHmac } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Library, Observation, Subscription } from '@medplum/fhirtypes';
import { SUBSCRIPTION_EXT } from '../../../src/bots/definition';
import type { Job } from '../../../src/store/api';
import { startTestServer, type TestServer } from '../../support/server';

// ------------------------------------------------------------------ the receiver

interface Delivery {
  method: string;
  /** Path and query as received. */
  url: string;
  headers: IncomingHttpHeaders;
  /** The raw body bytes (the signature is over these). */
  raw: Buffer;
  body: string;
  at: number;
}

/** What the receiver answers to the n-th (1-based) request under one channel. */
type Behaviour = (attempt: number) => 'ok' | 'fail' | 'hang';

/**
 * One HTTP server for the whole file; each test uses its own channel (the first path segment), so
 * the deliveries of one test never mix with another's.
 */
class Receiver {
  private readonly server: Server;
  private readonly byChannel = new Map<string, Delivery[]>();
  private readonly behaviours = new Map<string, Behaviour>();
  private readonly hanging: ServerResponse[] = [];
  base = '';

  constructor() {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const raw = Buffer.concat(chunks);
        const url = req.url ?? '/';
        const channel = url.split('/')[1] ?? '';
        const list = this.byChannel.get(channel) ?? [];
        list.push({ method: req.method ?? '', url, headers: req.headers, raw, body: raw.toString('utf8'), at: Date.now() });
        this.byChannel.set(channel, list);
        const what = (this.behaviours.get(channel) ?? (() => 'ok'))(list.length);
        if (what === 'hang') {
          this.hanging.push(res);
          return;
        }
        res.statusCode = what === 'ok' ? 200 : 500;
        res.end(what === 'ok' ? 'thanks' : 'receiver is down');
      });
    });
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.base = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** A fresh channel's endpoint URL, answering as `behaviour` says. */
  channel(name: string, behaviour?: Behaviour): string {
    this.byChannel.set(name, []);
    if (behaviour) {
      this.behaviours.set(name, behaviour);
    }
    return `${this.base}/${name}`;
  }

  deliveries(name: string): Delivery[] {
    return this.byChannel.get(name) ?? [];
  }

  async close(): Promise<void> {
    for (const res of this.hanging) {
      res.destroy();
    }
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

// ------------------------------------------------------------------ helpers

const LOINC = 'http://loinc.org';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let server: TestServer;
const receiver = new Receiver();
const created: string[] = [];

beforeAll(async () => {
  await receiver.start();
  server = await startTestServer({ bots: { retryBaseMs: 20, pollMs: 100 } });
});
afterEach(async () => {
  // Subscriptions of one test must not see the writes of the next.
  while (created.length > 0) {
    await server.request().delete(`/Subscription/${created.pop() as string}`);
  }
  await server.continuum.bots.idle();
});
afterAll(async () => {
  await server.close();
  await receiver.close();
});

/** A rest-hook Subscription to `endpoint`. */
function restHook(id: string, criteria: string, endpoint: string, more: { ext?: Subscription['extension']; header?: string[]; payload?: string } = {}): Subscription {
  return {
    resourceType: 'Subscription',
    id,
    status: 'active',
    reason: 'subscriptions.test',
    criteria,
    channel: { type: 'rest-hook', endpoint, ...(more.header ? { header: more.header } : {}), ...(more.payload ? { payload: more.payload } : {}) },
    extension: more.ext ?? [],
  };
}

async function subscribe(subscription: Subscription): Promise<void> {
  const res = await server.request().put(`/Subscription/${subscription.id as string}`).send(subscription);
  expect(res.status).toBe(201);
  created.push(subscription.id as string);
}

function observation(code: string, more: Partial<Observation> = {}): Observation {
  return { resourceType: 'Observation', status: 'final', code: { coding: [{ system: LOINC, code }] }, ...more };
}

type Json = { resourceType: string; id?: string } & Record<string, unknown>;

async function post(resource: Json | Observation): Promise<Json & { id: string }> {
  const res = await server.request().post(`/${resource.resourceType}`).send(resource);
  expect(res.status).toBe(201);
  return res.body as Json & { id: string };
}

async function put(resource: Json): Promise<Record<string, unknown>> {
  const res = await server.request().put(`/${resource.resourceType}/${resource.id as string}`).send(resource);
  expect([200, 201]).toContain(res.status);
  return res.body as Record<string, unknown>;
}

/** Drains the queue until `done()` holds (retries are due a few tens of ms later), or fails after `ms`. */
async function until(done: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    await server.continuum.bots.idle();
    if (await done()) {
      return;
    }
    if (Date.now() > end) {
      throw new Error(`condition not reached within ${ms} ms`);
    }
    await sleep(20);
  }
}

/** Drains the queue, then waits a little longer, so that a delivery that should not happen would have. */
async function settle(): Promise<void> {
  await server.continuum.bots.idle();
  await sleep(250);
  await server.continuum.bots.idle();
}

const jobsOf = (subscription: string, status?: Job['status']): Promise<Job[]> => server.continuum.store.jobs.list({ target: `Subscription/${subscription}`, status, count: 20 });

const diagnostics = (body: { issue?: { diagnostics?: string }[] }): string => (body.issue ?? []).map((i) => i.diagnostics ?? '').join(' | ');

// ------------------------------------------------------------------ the tests

describe('rest-hook deliveries', () => {
  test('no payload: an empty POST with the X-Continuum and custom headers, for matching creates only, each once', async () => {
    const endpoint = receiver.channel('plain');
    await subscribe(
      restHook('heart-rate', `Observation?code=${LOINC}|8867-4`, endpoint, {
        header: ['Authorization: Bearer receiver-token', 'X-Tenant:  north  '],
        ext: [{ url: SUBSCRIPTION_EXT.interaction, valueCode: 'create' }],
      }),
    );
    const first = await post(observation('8867-4', { valueQuantity: { value: 71 } }));
    await post(observation('8310-5')); // another code: not delivered
    await put({ ...first, valueQuantity: { value: 72 } }); // an update: not subscribed
    const second = await post(observation('8867-4', { valueQuantity: { value: 80 } }));
    await until(() => receiver.deliveries('plain').length >= 2);
    await settle();

    const got = receiver.deliveries('plain');
    expect(got).toHaveLength(2);
    const byResource = new Map(got.map((d) => [d.headers['x-continuum-resource'], d]));
    expect([...byResource.keys()].sort()).toEqual([`Observation/${first.id}/_history/1`, `Observation/${second.id}/_history/1`].sort());
    for (const [ref, d] of byResource) {
      expect(d.method).toBe('POST');
      expect(d.url).toBe('/plain');
      expect(d.body).toBe('');
      expect(d.headers['x-continuum-event']).toBe('create');
      expect(d.headers['x-continuum-delivery']).toBe(`heart-rate:${ref as string}`);
      expect(d.headers.authorization).toBe('Bearer receiver-token');
      expect(d.headers['x-tenant']).toBe('north');
      expect(d.headers['x-continuum-signature']).toBeUndefined(); // no secret, no signature
    }
    const done = await jobsOf('heart-rate');
    expect(done.map((j) => [j.status, j.attempts])).toEqual([
      ['done', 1],
      ['done', 1],
    ]);
  });

  test('full-resource (channel.payload): PUT [endpoint]/Observation/{id} with the stored version, DELETE on delete', async () => {
    const endpoint = receiver.channel('full');
    await subscribe(restHook('full-1', `Observation?code=${LOINC}|29463-7`, `${endpoint}/`, { payload: 'application/fhir+json' }));
    const obs = await post(observation('29463-7', { valueQuantity: { value: 70, unit: 'kg' } }));
    await until(() => receiver.deliveries('full').length >= 1);
    const updated = await put({ ...obs, valueQuantity: { value: 69, unit: 'kg' } });
    await until(() => receiver.deliveries('full').length >= 2);
    expect((await server.request().delete(`/Observation/${obs.id}`)).status).toBeLessThan(300);
    await until(() => receiver.deliveries('full').length >= 3);
    await settle();

    const [created1, updated2, deleted3] = receiver.deliveries('full');
    expect(receiver.deliveries('full')).toHaveLength(3);
    const stored1 = (await server.request().get(`/Observation/${obs.id}/_history/1`)).body as Observation;
    expect(created1.method).toBe('PUT');
    expect(created1.url).toBe(`/full/Observation/${obs.id}`);
    expect(created1.headers['content-type']).toBe('application/fhir+json');
    expect(created1.headers['x-continuum-event']).toBe('create');
    expect(JSON.parse(created1.body)).toEqual(stored1);
    expect((JSON.parse(created1.body) as Observation).meta?.versionId).toBe('1');

    expect(updated2.method).toBe('PUT');
    expect(updated2.url).toBe(`/full/Observation/${obs.id}`);
    expect(updated2.headers['x-continuum-event']).toBe('update');
    expect(JSON.parse(updated2.body)).toEqual(updated);
    expect((JSON.parse(updated2.body) as Observation).meta?.versionId).toBe('2');
    expect((JSON.parse(updated2.body) as Observation).valueQuantity?.value).toBe(69);

    expect(deleted3.method).toBe('DELETE');
    expect(deleted3.url).toBe(`/full/Observation/${obs.id}`);
    expect(deleted3.body).toBe('');
    expect(deleted3.headers['x-continuum-event']).toBe('delete');
    expect(deleted3.headers['x-continuum-resource']).toBe(`Observation/${obs.id}/_history/3`);
  });

  test('id-only: a Parameters body naming the subscription, the event and the focus version', async () => {
    const endpoint = receiver.channel('ids');
    await subscribe(restHook('ids-1', 'Patient?family=Idonly', endpoint, { ext: [{ url: SUBSCRIPTION_EXT.payload, valueCode: 'id-only' }] }));
    const patient = await post({ resourceType: 'Patient', name: [{ family: 'Idonly' }] });
    await post({ resourceType: 'Patient', name: [{ family: 'Someone-else' }] });
    await until(() => receiver.deliveries('ids').length >= 1);
    await settle();

    const got = receiver.deliveries('ids');
    expect(got).toHaveLength(1);
    expect(got[0].method).toBe('POST');
    expect(got[0].url).toBe('/ids');
    expect(got[0].headers['content-type']).toBe('application/fhir+json');
    expect(JSON.parse(got[0].body)).toEqual({
      resourceType: 'Parameters',
      parameter: [
        { name: 'subscription', valueReference: { reference: 'Subscription/ids-1' } },
        { name: 'event', valueCode: 'create' },
        { name: 'focus', valueReference: { reference: `Patient/${patient.id}/_history/1` } },
      ],
    });
  });

  test('a secret signs each body: X-Continuum-Signature is sha256=HMAC-SHA256(secret, raw body)', async () => {
    const endpoint = receiver.channel('signed');
    const secret = 'correct horse battery staple – ü';
    await subscribe(restHook('signed-1', 'Patient?family=Signé', endpoint, { payload: 'application/fhir+json', ext: [{ url: SUBSCRIPTION_EXT.secret, valueString: secret }] }));
    const patient = await post({ resourceType: 'Patient', name: [{ family: 'Signé', given: ['Zoë', 'Łukasz'] }] });
    await until(() => receiver.deliveries('signed').length >= 1);
    await server.request().delete(`/Patient/${patient.id}`);
    await until(() => receiver.deliveries('signed').length >= 2);

    const sign = (raw: Buffer): string => `sha256=${createHmac('sha256', secret).update(raw).digest('hex')}`;
    const [put1, delete2] = receiver.deliveries('signed');
    expect(put1.raw.length).toBeGreaterThan(0);
    expect(put1.body).toContain('Zoë'); // sent as UTF-8, signed as sent
    expect(put1.headers['x-continuum-signature']).toBe(sign(put1.raw));
    expect(put1.headers['x-continuum-signature']).not.toBe(`sha256=${createHmac('sha256', 'another secret').update(put1.raw).digest('hex')}`);
    expect(delete2.method).toBe('DELETE');
    expect(delete2.raw.length).toBe(0);
    expect(delete2.headers['x-continuum-signature']).toBe(sign(Buffer.alloc(0)));
  });
});

describe('failures', () => {
  test('a receiver that answers 500 twice is retried with backoff and gets the event on the third attempt', async () => {
    const endpoint = receiver.channel('flaky', (n) => (n <= 2 ? 'fail' : 'ok'));
    await subscribe(restHook('flaky-1', `Observation?code=${LOINC}|9279-1`, endpoint));
    const obs = await post(observation('9279-1'));
    await until(async () => (await jobsOf('flaky-1', 'done')).length === 1);
    await settle();

    const got = receiver.deliveries('flaky');
    expect(got).toHaveLength(3);
    // Every attempt is the same delivery (the receiver can de-duplicate on it).
    expect(new Set(got.map((d) => d.headers['x-continuum-delivery']))).toEqual(new Set([`flaky-1:Observation/${obs.id}/_history/1`]));
    // Backoff: the retries are spaced (20 ms base, doubled, +-10 % jitter).
    expect(got[1].at - got[0].at).toBeGreaterThanOrEqual(15);
    expect(got[2].at - got[1].at).toBeGreaterThanOrEqual(30);
    const [job] = await jobsOf('flaky-1');
    expect(job.status).toBe('done');
    expect(job.attempts).toBe(3);
    const sub = (await server.request().get('/Subscription/flaky-1')).body as Subscription;
    expect(sub.status).toBe('active');
  });

  test('a receiver that always fails: after maxAttempts the job is dead and the Subscription shows status error', async () => {
    const endpoint = receiver.channel('down', () => 'fail');
    await subscribe(restHook('down-1', `Observation?code=${LOINC}|8480-6`, endpoint, { ext: [{ url: SUBSCRIPTION_EXT.maxAttempts, valueInteger: 2 }] }));
    await post(observation('8480-6'));
    await until(async () => (await jobsOf('down-1', 'dead')).length === 1);

    const [job] = await jobsOf('down-1', 'dead');
    expect(job.attempts).toBe(2);
    expect(job.lastError).toBe(`${endpoint} answered 500`);
    expect(receiver.deliveries('down')).toHaveLength(2);
    const sub = await server.request().get('/Subscription/down-1');
    expect(sub.status).toBe(200);
    expect(sub.body.status).toBe('error');
    expect(sub.body.error).toContain('Delivery failed 2 times');
    expect(sub.body.error).toContain(`${endpoint} answered 500`);

    // An errored Subscription is off: later writes are neither queued nor delivered.
    await post(observation('8480-6'));
    await settle();
    expect(receiver.deliveries('down')).toHaveLength(2);
    expect(await jobsOf('down-1')).toHaveLength(1);
  });

  test('a receiver that does not answer within the timeout extension fails the attempt, naming the timeout', async () => {
    const endpoint = receiver.channel('hang', () => 'hang');
    await subscribe(
      restHook('hang-1', `Observation?code=${LOINC}|8462-4`, endpoint, {
        ext: [
          { url: SUBSCRIPTION_EXT.timeout, valueInteger: 200 },
          { url: SUBSCRIPTION_EXT.maxAttempts, valueInteger: 1 },
        ],
      }),
    );
    const started = Date.now();
    await post(observation('8462-4'));
    await until(async () => (await jobsOf('hang-1', 'dead')).length === 1);
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    const [job] = await jobsOf('hang-1', 'dead');
    expect(job.attempts).toBe(1);
    expect(job.lastError).toBe(`${endpoint} did not answer within 200 ms`);
    expect(receiver.deliveries('hang')).toHaveLength(1); // it did reach the receiver
    const sub = (await server.request().get('/Subscription/hang-1')).body as Subscription;
    expect(sub.status).toBe('error');
    expect(sub.error).toContain('did not answer within 200 ms');
  });
});

describe('conditions', () => {
  test('a FHIRPath condition over %previous and %current delivers only the updates that change the status', async () => {
    const endpoint = receiver.channel('status');
    await subscribe(
      restHook('status-1', `Observation?code=${LOINC}|2708-6`, endpoint, {
        ext: [
          { url: SUBSCRIPTION_EXT.interaction, valueCode: 'create' },
          { url: SUBSCRIPTION_EXT.interaction, valueCode: 'update' },
          { url: SUBSCRIPTION_EXT.condition, valueString: '%previous.empty() or %previous.status != %current.status' },
        ],
      }),
    );
    const obs = await post(observation('2708-6', { status: 'preliminary', valueQuantity: { value: 97 } }));
    await put({ ...obs, valueQuantity: { value: 96 } }); // v2: same status, not delivered
    await put({ ...obs, status: 'final', valueQuantity: { value: 96 } }); // v3: delivered
    await put({ ...obs, status: 'final', valueQuantity: { value: 95 } }); // v4: not delivered
    await until(() => receiver.deliveries('status').length >= 2);
    await settle();

    const got = receiver.deliveries('status').map((d) => [d.headers['x-continuum-event'], d.headers['x-continuum-resource']]);
    expect(got).toEqual([
      ['create', `Observation/${obs.id}/_history/1`],
      ['update', `Observation/${obs.id}/_history/3`],
    ]);
  });
});

describe('who may subscribe', () => {
  const botLibrary: Library = {
    resourceType: 'Library',
    id: 'sub-test-bot',
    name: 'sub-test-bot',
    status: 'active',
    type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/library-type', code: 'logic-library' }] },
    content: [{ contentType: 'text/typescript', data: Buffer.from('export async function handler() { return undefined; }').toString('base64') }],
  };
  const botTrigger: Subscription = { resourceType: 'Subscription', id: 'sub-test-trigger', status: 'active', reason: 'x', criteria: 'Observation', channel: { type: 'message', endpoint: 'Library/sub-test-bot' } };

  test('a patient-bound token may write neither a Subscription on Observation, nor a bot, nor a bot trigger', async () => {
    const patient = await post({ resourceType: 'Patient', name: [{ family: 'Subscriber' }] });
    const client = await server.as('patient/*.cruds', { patient: patient.id });
    const sub = restHook('patient-sub', 'Observation', receiver.channel('patient'));
    const posted = await client.post('/Subscription').send(sub);
    expect(posted.status).toBe(403);
    // Subscriptions are server configuration: a grant bounded to one patient does not cover them.
    expect(diagnostics(posted.body)).toContain('do not allow creating Subscription');
    expect((await client.put('/Subscription/patient-sub').send(sub)).status).toBe(403);
    // Even narrowed to the patient's own Observations: the rule is about the token, not the criteria.
    const narrowed = restHook('patient-sub', `Observation?subject=Patient/${patient.id}`, receiver.channel('patient'));
    expect((await client.put('/Subscription/patient-sub').send(narrowed)).status).toBe(403);
    const bot = await client.put('/Library/sub-test-bot').send(botLibrary);
    expect(bot.status).toBe(403);
    expect(diagnostics(bot.body)).toContain('needs a system/*.cruds token');
    const trig = await client.put('/Subscription/sub-test-trigger').send(botTrigger);
    expect(trig.status).toBe(403);
    expect(diagnostics(trig.body)).toContain('do not allow updating Subscription');
    // Inside a transaction too.
    const tx = await client.post('/').send({ resourceType: 'Bundle', type: 'transaction', entry: [{ request: { method: 'POST', url: 'Subscription' }, resource: sub }] });
    expect(tx.status).toBe(403);
    // Nothing was written.
    expect((await server.request().get('/Subscription/patient-sub')).status).toBe(404);
    expect((await server.request().get('/Library/sub-test-bot')).status).toBe(404);
    expect((await server.request().get('/Subscription/sub-test-trigger')).status).toBe(404);
  });

  test('a granular token (Observation.rs?category=...) may not subscribe to Observation; an unrestricted one may', async () => {
    const practitioner = { fhirUser: 'Practitioner/sub-test' };
    const granular = await server.as('user/Subscription.cruds user/Observation.rs?category=vital-signs', practitioner);
    const res = await granular.put('/Subscription/granular-sub').send(restHook('granular-sub', 'Observation', receiver.channel('granular')));
    expect(res.status).toBe(403);
    expect(diagnostics(res.body)).toContain('needs search access to every Observation');
    // The same token with category in the criteria is still refused (the rule is about the token).
    const again = await granular.put('/Subscription/granular-sub').send(restHook('granular-sub', 'Observation?category=vital-signs', receiver.channel('granular')));
    expect(again.status).toBe(403);
    expect((await server.request().get('/Subscription/granular-sub')).status).toBe(404);

    // A user token with unrestricted Observation search may notify on Observation, but not write bots.
    const user = await server.as('user/*.cruds', practitioner);
    const ok = await user.put('/Subscription/user-sub').send(restHook('user-sub', 'Observation', receiver.channel('user')));
    expect(ok.status).toBe(201);
    created.push('user-sub');
    const bot = await user.put('/Library/sub-test-bot').send(botLibrary);
    expect(bot.status).toBe(403);
    expect(diagnostics(bot.body)).toContain('needs a system/*.cruds token');
    const trig = await user.put('/Subscription/sub-test-trigger').send(botTrigger);
    expect(trig.status).toBe(403);
    expect(diagnostics(trig.body)).toContain('bot trigger needs a system/*.cruds token');
  });

  test('criteria with _has or a chain are refused to all but system/*.cruds: they would tell about resources the caller cannot see', async () => {
    const victim = await post({ resourceType: 'Patient', name: [{ family: 'Victim' }] });
    const attacker = await post({ resourceType: 'Patient', name: [{ family: 'Attacker' }] });
    const doctor = await post({ resourceType: 'Practitioner', name: [{ family: 'Doc' }] });
    await post(observation('HIV-1', { subject: { reference: `Patient/${victim.id}` }, performer: [{ reference: `Practitioner/${doctor.id}` }] }));
    const client = await server.as('patient/*.cruds', { patient: attacker.id });
    // The search itself is bounded by the compartment...
    const search = await client.get(`/Practitioner?_has:Observation:performer:code=${LOINC}|HIV-1`);
    expect(search.body.entry ?? []).toHaveLength(0);
    // ...so a Subscription may not ask the same question on the caller's behalf: a patient-bound
    // token may not write Subscriptions at all...
    const hasSub = await client.put('/Subscription/leak').send(restHook('leak', `Practitioner?_has:Observation:performer:code=${LOINC}|HIV-1`, receiver.channel('leak')));
    expect(hasSub.status).toBe(403);
    // ...and below system/*.cruds, chained and _has criteria are refused whatever the token's reach.
    const user = await server.as('user/*.cruds', { fhirUser: 'Practitioner/sub-test' });
    const userHas = await user.put('/Subscription/leak').send(restHook('leak', `Practitioner?_has:Observation:performer:code=${LOINC}|HIV-1`, receiver.channel('leak')));
    expect(userHas.status).toBe(403);
    expect(diagnostics(userHas.body)).toContain('chained parameters or _has');
    const chainSub = await user.put('/Subscription/leak').send(restHook('leak', `Practitioner?organization.name=x`, receiver.channel('leak')));
    expect(chainSub.status).toBe(403);
    // A plain Subscription is allowed to that user.
    const plain = await user.put('/Subscription/leak').send(restHook('leak', 'Practitioner', receiver.channel('leak')));
    expect(plain.status).toBe(201);
    created.push('leak');
  });

  test('a system/*.cruds token may write a Subscription, a bot and a bot trigger', async () => {
    await subscribe(restHook('system-sub', 'Observation', receiver.channel('system')));
    const bot = await server.request().put('/Library/sub-test-bot').send(botLibrary);
    expect(bot.status).toBe(201);
    await subscribe(botTrigger);
    expect(server.continuum.bots.triggers().map((t) => t.id)).toEqual(expect.arrayContaining(['system-sub', 'sub-test-trigger']));
    expect((await server.request().delete('/Library/sub-test-bot')).status).toBeLessThan(300);
  });
});

describe('invalid definitions', () => {
  const endpoint = (): string => `${receiver.base}/invalid`;
  const cases: [string, () => Subscription, RegExp][] = [
    ['an unsupported channel type (email)', () => ({ ...restHook('bad', 'Observation', 'mailto:ops@example.org'), channel: { type: 'email', endpoint: 'mailto:ops@example.org' } }), /channel type 'email' is not supported/],
    ['criteria that is not a resource type', () => restHook('bad', '?code=x', endpoint()), /criteria '\?code=x' must be a resource type/],
    ['an unknown search parameter in the criteria', () => restHook('bad', 'Observation?no-such-param=1', endpoint()), /Subscription\.criteria: .*Unknown search parameter 'no-such-param' for Observation/],
    ['a condition that is not FHIRPath', () => restHook('bad', 'Observation', endpoint(), { ext: [{ url: SUBSCRIPTION_EXT.condition, valueString: '%current.status = = (' }] }), /Subscription condition: /],
    ['a rest-hook endpoint that is not http(s)', () => restHook('bad', 'Observation', 'ftp://127.0.0.1/x'), /rest-hook Subscription needs an http\(s\) channel\.endpoint/],
    ['a timeout out of range', () => restHook('bad', 'Observation', endpoint(), { ext: [{ url: SUBSCRIPTION_EXT.timeout, valueInteger: 5 }] }), /subscription-timeout must be an integer from 100 to 60000/],
    ['an unknown payload kind', () => restHook('bad', 'Observation', endpoint(), { ext: [{ url: SUBSCRIPTION_EXT.payload, valueCode: 'everything' }] }), /subscription-payload must be empty, id-only or full-resource, not 'everything'/],
    ['a pre-commit notification', () => restHook('bad', 'Observation', endpoint(), { ext: [{ url: SUBSCRIPTION_EXT.phase, valueCode: 'pre-commit' }] }), /only a bot can run pre-commit/],
    ['criteria whose type is not a resource type', () => restHook('bad', 'NotAType', endpoint()), /'NotAType' is not a resource type/],
    ['a condition naming an unknown variable', () => restHook('bad', 'Device', endpoint(), { ext: [{ url: SUBSCRIPTION_EXT.condition, valueString: '%prevous.status != %current.status' }] }), /undefined environment variable: prevous/],
    ['a condition calling an unknown function', () => restHook('bad', 'Device', endpoint(), { ext: [{ url: SUBSCRIPTION_EXT.condition, valueString: 'bogusFunction()' }] }), /Not implemented: bogusFunction/],
  ];

  test.each(cases)('%s is refused with 422 naming the problem', async (_what, make, message) => {
    const res = await server.request().put('/Subscription/bad').send(make());
    expect(res.status).toBe(422);
    expect(diagnostics(res.body)).toMatch(message);
    expect((await server.request().get('/Subscription/bad')).status).toBe(404);
  });

  test('an invalid definition is accepted while off (status off), and refused when turned on', async () => {
    const off = { ...restHook('bad-off', 'Observation?no-such-param=1', endpoint()), status: 'off' as const };
    expect((await server.request().put('/Subscription/bad-off').send(off)).status).toBe(201);
    const on = await server.request().put('/Subscription/bad-off').send({ ...off, status: 'active' });
    expect(on.status).toBe(422);
    expect((await server.request().get('/Subscription/bad-off')).body.status).toBe('off');
    expect((await server.request().delete('/Subscription/bad-off')).status).toBeLessThan(300);
  });
});
