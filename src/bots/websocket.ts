/**
 * Websocket notifications for Subscriptions with `channel.type = websocket` (R4, with the
 * `bind-with-token` handshake of the Subscriptions backport):
 *
 * 1. The client gets a binding token: `GET Subscription/{id}/$get-ws-binding-token` (needs read
 *    access to that Subscription); the answer names the websocket URL.
 * 2. It connects and sends `bind-with-token <token>`, or `bind-with-token <token> <event-number>` to
 *    also receive every event after that number it missed while disconnected.
 * 3. It receives JSON messages: `{ type: 'handshake', subscription, eventNumber }`, then one
 *    `{ type: 'event-notification', subscription, eventNumber, trigger, focus, resource? }` per event.
 *
 * Events are written to the durable job log in the write's transaction (queue `websocket`), so
 * every process pushes the events of the sockets bound to it, whichever process made the write, and
 * a reconnecting client catches up from the log (kept for a day).
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Parameters } from '@medplum/fhirtypes';
import { badRequest, forbidden, notFound } from '../errors';
import type { RequestContext } from '../fhir/types';
import type { Job, Store } from '../store/api';
import type { BotRuntime } from './runtime';

export const WEBSOCKET_PATH = '/ws/subscriptions';
const TOKEN_SECONDS = 300;

interface Binding {
  socket: WebSocket;
  subscription: string;
  lastId: number;
}

export class SubscriptionSockets {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 4096 });
  private readonly bindings = new Map<string, Set<Binding>>();
  private pushing?: Promise<void>;
  private again = false;
  private timer?: NodeJS.Timeout;
  private heartbeat?: NodeJS.Timeout;

  constructor(
    private readonly store: Store,
    private readonly runtime: BotRuntime,
    private readonly logError: (err: unknown, where: string) => void,
    pollMs: number,
  ) {
    runtime.onEvents = () => this.push();
    // Events written by other processes.
    this.timer = setInterval(() => {
      if (this.bindings.size > 0) {
        this.push();
      }
    }, pollMs);
    this.timer.unref();
    this.heartbeat = setInterval(() => {
      for (const c of this.wss.clients) {
        c.ping();
      }
    }, 30_000);
    this.heartbeat.unref();
  }

  /** `$get-ws-binding-token`: a short-lived token binding a socket to one Subscription. */
  async bindingToken(subscriptionId: string, ctx: RequestContext): Promise<Parameters> {
    const stored = await ctx.store.read('Subscription', subscriptionId); // guarded: 404 unless readable
    if (!stored?.json) {
      throw notFound(`Subscription/${subscriptionId} is not known`);
    }
    const trigger = this.runtime.trigger(subscriptionId);
    if (trigger?.channel !== 'websocket') {
      throw badRequest(`Subscription/${subscriptionId} is not an active websocket Subscription`);
    }
    // The notifications are about every matching resource: the caller must be able to search them all.
    const access = ctx.access;
    if (access && (!access.allows('s', trigger.resourceType) || access.filter(trigger.resourceType, 's') !== undefined)) {
      throw forbidden(`Binding to a Subscription on ${trigger.resourceType} needs search access to every ${trigger.resourceType}`);
    }
    const token = randomBytes(24).toString('base64url');
    const expires = new Date(Date.now() + TOKEN_SECONDS * 1000);
    await this.store.auth.put('ws-binding', token, { subscription: subscriptionId, clientId: ctx.access?.principal.clientId }, expires);
    return {
      resourceType: 'Parameters',
      parameter: [
        { name: 'token', valueString: token },
        { name: 'expiration', valueDateTime: expires.toISOString() },
        { name: 'subscription', valueString: `Subscription/${subscriptionId}` },
        { name: 'websocket-url', valueUrl: `${ctx.baseUrl.replace(/^http/, 'ws')}${WEBSOCKET_PATH}` },
      ],
    };
  }

  /** Serves the websocket endpoint on an HTTP server. */
  attach(server: Server): void {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      if (new URL(req.url ?? '/', 'http://x').pathname !== WEBSOCKET_PATH) {
        socket.destroy();
        return;
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => this.connected(ws));
    });
  }

  private connected(ws: WebSocket): void {
    const mine = new Set<Binding>();
    ws.on('message', (data) => {
      void this.onMessage(ws, String(data), mine).catch((err: unknown) => {
        this.logError(err, 'websocket message');
        this.send(ws, { type: 'error', message: 'internal error' });
      });
    });
    ws.on('close', () => {
      for (const b of mine) {
        this.bindings.get(b.subscription)?.delete(b);
        if (this.bindings.get(b.subscription)?.size === 0) {
          this.bindings.delete(b.subscription);
        }
      }
    });
    ws.on('error', () => ws.terminate());
  }

  private send(ws: WebSocket, message: object): void {
    if (ws.readyState === ws.OPEN) {
      ws.send(JSON.stringify(message));
    }
  }

  private async onMessage(ws: WebSocket, text: string, mine: Set<Binding>): Promise<void> {
    const [verb, token, since] = text.trim().split(/\s+/);
    if (verb !== 'bind-with-token' || !token) {
      this.send(ws, { type: 'error', message: "expected 'bind-with-token <token> [<last-event-number>]'" });
      return;
    }
    const record = await this.store.auth.get<{ subscription: string }>('ws-binding', token);
    if (!record) {
      this.send(ws, { type: 'error', message: 'unknown or expired binding token (get one from Subscription/{id}/$get-ws-binding-token)' });
      return;
    }
    const subscription = record.doc.subscription;
    let lastId: number;
    if (since !== undefined) {
      if (!/^\d{1,18}$/.test(since)) {
        this.send(ws, { type: 'error', message: `'${since}' is not an event number` });
        return;
      }
      lastId = Number(since);
    } else {
      const newest = await this.store.jobs.list({ target: `Subscription/${subscription}`, count: 1 });
      lastId = newest[0] ? Number(newest[0].id) : 0;
    }
    const binding: Binding = { socket: ws, subscription, lastId };
    mine.add(binding);
    let set = this.bindings.get(subscription);
    if (!set) {
      set = new Set();
      this.bindings.set(subscription, set);
    }
    set.add(binding);
    this.send(ws, { type: 'handshake', subscription: `Subscription/${subscription}`, eventNumber: String(lastId) });
    this.push();
  }

  /** Sends bound sockets the events they have not had (in the background). */
  push(): void {
    if (this.pushing) {
      this.again = true;
      return;
    }
    this.pushing = this.pushAll()
      .catch((err: unknown) => this.logError(err, 'websocket push'))
      .finally(() => {
        this.pushing = undefined;
        if (this.again) {
          this.again = false;
          this.push();
        }
      });
  }

  private async pushAll(): Promise<void> {
    for (const [subscription, set] of this.bindings) {
      const trigger = this.runtime.trigger(subscription);
      for (;;) {
        const from = Math.min(...[...set].map((b) => b.lastId));
        const events = await this.store.jobs.events(`Subscription/${subscription}`, String(from), 500);
        if (events.length === 0) {
          break;
        }
        for (const e of events) {
          const message = await this.notification(subscription, e, trigger?.payload === 'full-resource');
          for (const b of set) {
            if (Number(e.id) > b.lastId) {
              this.send(b.socket, message);
              b.lastId = Number(e.id);
            }
          }
        }
        if (events.length < 500) {
          break;
        }
      }
    }
  }

  private async notification(subscription: string, e: Job, withResource: boolean): Promise<object> {
    const p = e.payload as { trigger?: string; resource?: string; versionId?: string };
    const focus = `${p.resource ?? ''}/_history/${p.versionId ?? ''}`;
    let resource: unknown;
    if (withResource && p.trigger !== 'delete' && p.resource) {
      const [type, id] = p.resource.split('/');
      const v = await this.store.vread(type, id, p.versionId ?? '');
      resource = v?.json ? JSON.parse(v.json) : undefined;
    }
    return { type: 'event-notification', subscription: `Subscription/${subscription}`, eventNumber: e.id, trigger: p.trigger, focus, resource };
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    clearInterval(this.heartbeat);
    for (const c of this.wss.clients) {
      c.terminate();
    }
    await new Promise<void>((r) => this.wss.close(() => r()));
  }
}
