/**
 * Websocket Subscriptions: binding token, bind-with-token, one notification per matching write,
 * catch-up of the events missed while disconnected, and refusals.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket from 'ws';
import { startTestServer, type TestServer } from '../../support/server';

let server: TestServer;
let http: Server;
let wsUrl: string;

beforeAll(async () => {
  server = await startTestServer({ bots: { pollMs: 100 } });
  http = server.continuum.app.listen(0, '127.0.0.1');
  await new Promise((r) => http.once('listening', r));
  server.continuum.attachWebSockets(http);
  wsUrl = `ws://127.0.0.1:${(http.address() as AddressInfo).port}/ws/subscriptions`;
});
afterAll(async () => {
  await server.close();
  http.closeAllConnections();
  await new Promise((r) => http.close(r));
});

interface Message {
  type: string;
  subscription?: string;
  eventNumber?: string;
  trigger?: string;
  focus?: string;
  resource?: { resourceType: string; id: string };
  message?: string;
}

/** A socket that collects JSON messages. */
async function connect(): Promise<{ ws: WebSocket; messages: Message[]; next: (type: string, n?: number) => Promise<Message[]> }> {
  const ws = new WebSocket(wsUrl);
  const messages: Message[] = [];
  ws.on('message', (d) => messages.push(JSON.parse(String(d)) as Message));
  await new Promise((r, j) => {
    ws.once('open', r);
    ws.once('error', j);
  });
  const next = async (type: string, n = 1): Promise<Message[]> => {
    for (let i = 0; i < 200; i++) {
      const got = messages.filter((m) => m.type === type);
      if (got.length >= n) {
        return got;
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`no ${n} '${type}' message(s); got ${JSON.stringify(messages)}`);
  };
  return { ws, messages, next };
}

async function bindingToken(id: string): Promise<string> {
  const res = await server.request().get(`/Subscription/${id}/$get-ws-binding-token`);
  expect(res.status).toBe(200);
  const p = Object.fromEntries((res.body.parameter as { name: string; valueString?: string; valueUrl?: string }[]).map((x) => [x.name, x.valueString ?? x.valueUrl]));
  expect(p['websocket-url']).toBe('ws://continuum.test/ws/subscriptions');
  expect(p.subscription).toBe(`Subscription/${id}`);
  return p.token as string;
}

const observation = (code: string): object => ({ resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://loinc.org', code }] } });

test('bind-with-token, one notification per matching write, then catch-up after a reconnect', async () => {
  const sub = { resourceType: 'Subscription', id: 'ws-1', status: 'active', reason: 'test', criteria: 'Observation?code=http://loinc.org|8867-4', channel: { type: 'websocket', payload: 'application/fhir+json' } };
  expect((await server.request().put('/Subscription/ws-1').send(sub)).status).toBe(201);
  const token = await bindingToken('ws-1');

  const a = await connect();
  a.ws.send(`bind-with-token ${token}`);
  const [hello] = await a.next('handshake');
  expect(hello.subscription).toBe('Subscription/ws-1');
  const first = await server.request().post('/Observation').send(observation('8867-4'));
  await server.request().post('/Observation').send(observation('29463-7')); // not matching
  const [event] = await a.next('event-notification');
  expect(event).toMatchObject({ subscription: 'Subscription/ws-1', trigger: 'create', focus: `Observation/${first.body.id as string}/_history/1` });
  expect(event.resource?.id).toBe(first.body.id);
  a.ws.close();

  // Two events while disconnected...
  const missed = [await server.request().post('/Observation').send(observation('8867-4')), await server.request().post('/Observation').send(observation('8867-4'))];
  // ...arrive after binding again from the last event number seen.
  const b = await connect();
  b.ws.send(`bind-with-token ${token} ${event.eventNumber as string}`);
  const caught = await b.next('event-notification', 2);
  expect(caught.map((m) => m.focus)).toEqual(missed.map((m) => `Observation/${m.body.id as string}/_history/1`));
  expect(Number(caught[0].eventNumber)).toBeGreaterThan(Number(event.eventNumber));
  // And live events keep coming, each once.
  await server.request().post('/Observation').send(observation('8867-4'));
  expect(await b.next('event-notification', 3)).toHaveLength(3);
  await new Promise((r) => setTimeout(r, 300));
  expect(b.messages.filter((m) => m.type === 'event-notification')).toHaveLength(3);
  b.ws.close();
});

test('a bad token or message is answered with an error; a token is only for a readable websocket Subscription', async () => {
  const c = await connect();
  c.ws.send('bind-with-token nonsense');
  expect((await c.next('error'))[0].message).toContain('unknown or expired binding token');
  c.ws.send('hello');
  expect((await c.next('error', 2))[1].message).toContain('bind-with-token');
  c.ws.close();
  expect((await server.request().get('/Subscription/nope/$get-ws-binding-token')).status).toBe(404);
  await server.request().put('/Subscription/hook').send({ resourceType: 'Subscription', id: 'hook', status: 'active', reason: 'x', criteria: 'Device', channel: { type: 'rest-hook', endpoint: 'http://127.0.0.1:9/x' } });
  expect((await server.request().get('/Subscription/hook/$get-ws-binding-token')).status).toBe(400);
  const patientToken = await server.as('patient/Observation.rs', { patient: 'p1' });
  expect((await patientToken.get('/Subscription/ws-1/$get-ws-binding-token')).status).toBe(403);
});
