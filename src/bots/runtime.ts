/**
 * The bot runtime: keeps the bots (Libraries) and triggers (Subscriptions) in memory, runs
 * pre-commit bots inside the write's transaction, enqueues post-commit work with the write,
 * drains the durable queue (bot runs and rest-hook deliveries, retried with backoff, dead letters
 * kept), runs scheduled bots, and serves `Library/{id}/$execute`. Every run is audited.
 *
 * Several processes on one PostgreSQL share the queue (job table, SKIP LOCKED claims with
 * leases), so each event runs once per bot whichever process claims it, and a process that dies
 * mid-run leaves a lease that runs out and lets another process (or itself, restarted) finish.
 */
import { createHmac, randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile, realpath, writeFile } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, resolve, sep } from 'node:path';
import type { Library, OperationOutcome, Resource, Subscription } from '@medplum/fhirtypes';
import { FhirError, STATUS_BY_CATEGORY, forbidden, notFound, operationOutcome, outcomeOf, unprocessable } from '../errors';
import type { AuditLog } from '../audit/audit-log';
import type { Principal } from '../auth/policy';
import { handle } from '../fhir/router';
import type { FhirMethod, FhirResponse, RequestContext } from '../fhir/types';
import type { IndexRows } from '../search/extract';
import { compile as compileFhirPath } from '../search/fhirpath';
import { matchAll } from '../search/match';
import { isResourceType } from '../validation/schema';
import type { SearchParser } from '../search/parse';
import type { AuditRow, Job, NewJob, ResourceLike, SearchFilter, Store, StoredVersion } from '../store/api';
import { BotCompileError } from './compile';
import {
  type BotDefinition,
  DEFAULTS,
  DefinitionError,
  type Interaction,
  LIBRARY_TYPE_SYSTEM,
  type TriggerDefinition,
  botFromLibrary,
  isBotLibrary,
  isLive,
  triggerFromSubscription,
} from './definition';
import { type WriteChange, type WriteHooks, hookStore } from './hooked-store';
import { Sandbox, type SandboxResult } from './sandbox';

export interface BotRuntimeOptions {
  /** Workers per heap limit. */
  poolSize: number;
  /** Bots triggered by bots' writes stop at this depth. */
  maxChainDepth: number;
  /** How often the queue is polled for jobs of other processes and retries (ms). */
  pollMs: number;
  /** How long a claimed job is leased (ms); a dead process's jobs run again after this. */
  leaseMs: number;
  /** Jobs claimed at once. */
  batchSize: number;
  /** First retry delay (ms), doubled per attempt up to retryMaxMs. */
  retryBaseMs: number;
  retryMaxMs: number;
  /** How often definitions changed by other processes are picked up (ms). */
  reloadMs: number;
  /** Time budget of a pre-commit run (ms; the bot's own timeout applies when shorter). */
  preCommitBudgetMs: number;
  /** Print bots' log lines on the server's console. */
  echoLogs: boolean;
  /** Run the minute scheduler (cron bots). */
  scheduler: boolean;
  /** Drain the queue in this process. */
  worker: boolean;
}

export const DEFAULT_BOT_OPTIONS: BotRuntimeOptions = {
  poolSize: 4,
  maxChainDepth: 5,
  pollMs: 1000,
  leaseMs: 30_000,
  batchSize: 64,
  retryBaseMs: 1000,
  retryMaxMs: 10 * 60_000,
  reloadMs: 2000,
  preCommitBudgetMs: DEFAULTS.preCommitTimeoutMs,
  echoLogs: false,
  scheduler: true,
  worker: true,
};

export interface BotRuntimeDeps {
  /** The server's own store (no access rules). */
  store: Store;
  baseUrl: string;
  now: () => Date;
  /** A request context for a principal over a store (guarded by the principal's scopes). */
  contextFor: (principal: Principal, store: Store) => RequestContext;
  parser: () => SearchParser;
  indexer: (resource: ResourceLike) => IndexRows;
  audit: AuditLog;
  logError: (err: unknown, where: string) => void;
}

/** What one run did (returned by $execute and the CLI; summarised in its audit row). */
export interface RunRecord {
  ok: boolean;
  value?: unknown;
  error?: { message: string; status?: number; outcome?: unknown; kind: string };
  durationMs: number;
  log: string[];
  touched: string[];
}

const LOG_LINES = 50;
const LOG_CHARS = 4000;
const FHIR_METHODS = new Set<FhirMethod>(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']);

/** FHIRPath truthiness of a condition's result (empty and false are false). */
function truthy(result: unknown[]): boolean {
  if (result.length === 0) {
    return false;
  }
  if (result.length === 1 && typeof result[0] === 'boolean') {
    return result[0];
  }
  return true;
}

const parseJson = (v: StoredVersion | undefined): Resource | undefined => (v?.json ? (JSON.parse(v.json) as Resource) : undefined);

export class BotRuntime implements WriteHooks {
  /** The server's store with the triggers applied (depth 0). */
  readonly store: Store;
  readonly options: BotRuntimeOptions;
  private readonly sandbox: Sandbox;
  private readonly owner = randomUUID();
  private readonly depthStores: Store[] = [];

  private botsById = new Map<string, BotDefinition>();
  private botsByName = new Map<string, BotDefinition>();
  private triggersByType = new Map<string, TriggerDefinition[]>();
  private triggersById = new Map<string, TriggerDefinition>();
  private filterCache = new Map<string, SearchFilter[]>();
  private watched = new Set<string>(['Library', 'Subscription']);
  /** Types with post-commit triggers (bots, rest-hooks, websockets). */
  private watchedAfter = new Set<string>();
  /** Each bot version's principal (its policy is cached per principal by the server). */
  private readonly principals = new Map<string, Principal>();
  private stamp = '';

  private timers: NodeJS.Timeout[] = [];
  private scheduleTimer?: NodeJS.Timeout;
  private draining?: Promise<void>;
  private again = false;
  private stopped = false;
  private readonly running = new Set<Promise<unknown>>();

  constructor(
    private readonly deps: BotRuntimeDeps,
    options: Partial<BotRuntimeOptions> = {},
  ) {
    this.options = { ...DEFAULT_BOT_OPTIONS, ...options };
    this.sandbox = new Sandbox({ poolSize: this.options.poolSize });
    this.store = this.storeAt(0);
  }

  /** The store whose writes are made at chain depth `depth`. */
  storeAt(depth: number): Store {
    let s = this.depthStores[depth];
    if (!s) {
      s = hookStore(this.deps.store, this, depth);
      this.depthStores[depth] = s;
    }
    return s;
  }

  /** Periodic tasks (see start) in progress. */
  private readonly ticking = new Set<Promise<unknown>>();

  /** Loads definitions and starts the queue worker, the reloader and the scheduler. */
  async start(): Promise<void> {
    await this.reload();
    const every = (ms: number, fn: () => Promise<unknown>, where: string): void => {
      const t = setInterval(() => {
        if (!this.stopped) {
          const tick = fn().catch((err: unknown) => this.deps.logError(err, where));
          this.ticking.add(tick);
          void tick.finally(() => this.ticking.delete(tick));
        }
      }, ms);
      t.unref();
      this.timers.push(t);
    };
    every(this.options.reloadMs, () => this.reloadIfChanged(), 'bot definitions reload');
    if (this.options.worker) {
      every(this.options.pollMs, async () => this.kick(), 'bot queue');
      every(3600_000, () => this.deps.store.jobs.purge(24 * 3600_000), 'job purge');
      this.kick();
    }
    if (this.options.scheduler) {
      this.scheduleNextMinute();
    }
  }

  /** Stops timers, waits for runs in progress and shuts the sandbox down. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) {
      clearInterval(t);
    }
    if (this.scheduleTimer) {
      clearTimeout(this.scheduleTimer);
    }
    await this.draining;
    // A periodic task already under way (a definitions reload, a purge) finishes before the store
    // it queries is closed.
    await Promise.allSettled([...this.ticking]);
    await Promise.allSettled([...this.running]);
    await this.sandbox.close();
  }

  // ---------------------------------------------------------------- definitions

  /** Every bot (active or not). */
  bots(): BotDefinition[] {
    return [...this.botsById.values()];
  }

  /** A bot by name. */
  botNamed(name: string): BotDefinition | undefined {
    return this.botsByName.get(name);
  }

  /** Audit rows of one client (a bot's runs and requests), oldest first, after a position. */
  auditRows(clientId: string, after: string | undefined, count: number): Promise<AuditRow[]> {
    return this.deps.store.audit.query({ clientId, after, count });
  }

  /** Every trigger. */
  triggers(): TriggerDefinition[] {
    return [...this.triggersById.values()];
  }

  private async all(resourceType: string, filters: SearchFilter[]): Promise<Resource[]> {
    const out: Resource[] = [];
    let after: unknown[] | undefined;
    for (;;) {
      const page = await this.deps.store.search({ resourceType, filters, count: 500, sort: [{ kind: 'id', descending: false }], after });
      for (const v of page.versions) {
        const r = parseJson(v);
        if (r) {
          out.push(r);
        }
      }
      if (!page.more || !page.last) {
        return out;
      }
      after = page.last;
    }
  }

  /** Re-reads every bot and trigger from the store. */
  async reload(): Promise<void> {
    const libraries = (await this.all('Library', [{ kind: 'token', code: 'type', values: [{ system: LIBRARY_TYPE_SYSTEM, value: 'logic-library' }] }])) as Library[];
    const subscriptions = (await this.all('Subscription', [])) as Subscription[];
    const botsById = new Map<string, BotDefinition>();
    const botsByName = new Map<string, BotDefinition>();
    for (const library of libraries.filter(isBotLibrary)) {
      try {
        const bot = botFromLibrary(library);
        botsById.set(`Library/${bot.id}`, bot);
        if (bot.active || !botsByName.has(bot.name)) {
          botsByName.set(bot.name, bot);
        }
      } catch (err) {
        console.warn(`[continuum] bot Library/${library.id ?? ''} is not usable: ${(err as Error).message}`);
      }
    }
    const triggersByType = new Map<string, TriggerDefinition[]>();
    const triggersById = new Map<string, TriggerDefinition>();
    for (const subscription of subscriptions.filter(isLive)) {
      try {
        const trigger = triggerFromSubscription(subscription);
        triggersById.set(trigger.id, trigger);
        const list = triggersByType.get(trigger.resourceType) ?? [];
        list.push(trigger);
        triggersByType.set(trigger.resourceType, list);
      } catch (err) {
        console.warn(`[continuum] Subscription/${subscription.id ?? ''} is not usable: ${(err as Error).message}`);
      }
    }
    this.botsById = botsById;
    this.botsByName = botsByName;
    this.triggersByType = triggersByType;
    this.triggersById = triggersById;
    this.filterCache.clear();
    this.watched = new Set(['Library', 'Subscription', ...triggersByType.keys()]);
    this.watchedAfter = new Set([...triggersById.values()].filter((t) => t.phase === 'post-commit').map((t) => t.resourceType));
    this.principals.clear();
    this.stamp = await this.currentStamp();
  }

  /** The newest Library and Subscription versions: changes when another process writes one. */
  private async currentStamp(): Promise<string> {
    const newest = async (t: string): Promise<string> => {
      const v = (await this.deps.store.history({ resourceType: t, count: 1 })).versions[0];
      return v ? `${v.id}/${v.versionId}/${v.lastUpdated}` : '';
    };
    return `${await newest('Library')}|${await newest('Subscription')}`;
  }

  private async reloadIfChanged(): Promise<void> {
    if ((await this.currentStamp()) !== this.stamp) {
      await this.reload();
    }
  }

  private filtersOf(trigger: TriggerDefinition): SearchFilter[] {
    let filters = this.filterCache.get(trigger.id);
    if (!filters) {
      const query: Record<string, string[]> = {};
      for (const [k, v] of new URLSearchParams(trigger.query)) {
        (query[k] ??= []).push(v);
      }
      filters = this.deps.parser().parse(trigger.resourceType, query).filters;
      this.filterCache.set(trigger.id, filters);
    }
    return filters;
  }

  /** Checks a bot Library or trigger Subscription before it is written (422 naming the problem). */
  private checkDefinition(change: WriteChange): void {
    if (change.interaction === 'delete') {
      return;
    }
    try {
      const resource = change.resource as unknown;
      if (change.resourceType === 'Library' && isBotLibrary(resource as Library)) {
        botFromLibrary(resource as Library);
      } else if (change.resourceType === 'Subscription' && isLive(resource as Subscription)) {
        const trigger = triggerFromSubscription(resource as Subscription);
        const query: Record<string, string[]> = {};
        for (const [k, v] of new URLSearchParams(trigger.query)) {
          (query[k] ??= []).push(v);
        }
        if (!isResourceType(trigger.resourceType)) {
          throw new DefinitionError(`Subscription.criteria: '${trigger.resourceType}' is not a resource type`);
        }
        this.deps.parser().parse(trigger.resourceType, query);
        if (trigger.condition) {
          // fhirpath.js reports unknown variables and functions only when evaluating: try it once.
          const probe = { resourceType: trigger.resourceType };
          compileFhirPath(trigger.condition)(probe, { resource: probe, current: probe, previous: null } as Record<string, unknown>);
        }
      }
    } catch (err) {
      if (err instanceof DefinitionError || err instanceof BotCompileError) {
        throw unprocessable(err.message);
      }
      if (err instanceof FhirError) {
        throw unprocessable(`Subscription.criteria: ${err.message}`, [`${change.resourceType}.criteria`]);
      }
      throw unprocessable(`Subscription condition: ${(err as Error).message}`);
    }
  }

  // ---------------------------------------------------------------- write hooks

  watches(resourceType: string): boolean {
    return this.watched.has(resourceType);
  }

  watchesAfter(resourceType: string): boolean {
    return this.watchedAfter.has(resourceType);
  }

  private async matches(trigger: TriggerDefinition, change: WriteChange, store: Store): Promise<boolean> {
    if (!trigger.interactions.has(change.interaction)) {
      return false;
    }
    let filters: SearchFilter[];
    try {
      filters = this.filtersOf(trigger);
    } catch {
      return false; // checked when written; a parameter removed since then matches nothing
    }
    if (filters.length > 0) {
      let ok = matchAll(filters, change.resource, this.deps.indexer(change.resource));
      if (ok === undefined) {
        // Not decidable from the resource alone (a chain, _has): ask the store, which sees this
        // transaction's writes. A deleted resource is no longer searchable.
        ok =
          change.interaction !== 'delete' &&
          (await store.search({ resourceType: change.resourceType, filters: [{ kind: 'id', ids: [change.id] }, ...filters], count: 1 })).versions.length > 0;
      }
      if (!ok) {
        return false;
      }
    }
    if (trigger.condition) {
      try {
        const result = compileFhirPath(trigger.condition)(change.resource, {
          resource: change.resource,
          current: change.interaction === 'delete' ? null : change.resource,
          previous: change.previous ?? null,
        } as Record<string, unknown>) as unknown[];
        return truthy(result);
      } catch (err) {
        this.deps.logError(err, `condition of Subscription/${trigger.id}`);
        return false;
      }
    }
    return true;
  }

  async before(change: WriteChange, store: Store, depth: number): Promise<void> {
    if (change.resourceType === 'Library' || change.resourceType === 'Subscription') {
      this.checkDefinition(change);
    }
    for (const trigger of this.triggersByType.get(change.resourceType) ?? []) {
      if (trigger.phase !== 'pre-commit' || !trigger.bot || !(await this.matches(trigger, change, store))) {
        continue;
      }
      const bot = this.botsById.get(trigger.bot);
      if (!bot?.active) {
        continue;
      }
      if (depth >= this.options.maxChainDepth) {
        throw unprocessable(`Bot ${bot.name} was not run: bots triggered by bots stop at depth ${this.options.maxChainDepth}; the write was refused`);
      }
      const event = { trigger: change.interaction, phase: 'pre-commit', resource: change.resource, previous: change.previous, subscription: `Subscription/${trigger.id}` };
      const run = await this.run(bot, event, store, { trigger: `pre-commit ${change.interaction}`, timeoutMs: Math.min(bot.timeoutMs, this.options.preCommitBudgetMs), focus: `${change.resourceType}/${change.id}` });
      const refusal = run.ok ? errorsIn(run.value) : undefined;
      if (refusal) {
        throw new FhirError('unprocessable', refusal);
      }
      if (!run.ok) {
        const outcome = run.error?.outcome as OperationOutcome | undefined;
        throw new FhirError(
          'unprocessable',
          outcome?.resourceType === 'OperationOutcome' ? outcome : operationOutcome('error', 'business-rule', `Bot ${bot.name} refused the write: ${run.error?.message ?? 'failed'}`),
        );
      }
    }
  }

  async after(change: WriteChange, store: Store, depth: number): Promise<NewJob[]> {
    const triggers = this.triggersByType.get(change.resourceType);
    if (!triggers || !change.version) {
      return [];
    }
    const jobs: NewJob[] = [];
    for (const trigger of triggers) {
      if (trigger.phase !== 'post-commit' || !(await this.matches(trigger, change, store))) {
        continue;
      }
      const bot = trigger.bot ? this.botsById.get(trigger.bot) : undefined;
      if (trigger.bot && !bot?.active) {
        continue;
      }
      if (trigger.bot && depth >= this.options.maxChainDepth) {
        this.deps.audit.record(this.auditRow(bot as BotDefinition, change.interaction, '8', 0, {
          error: `not run: bots triggered by bots stop at depth ${this.options.maxChainDepth}`,
          focus: `${change.resourceType}/${change.id}`,
        }));
        continue;
      }
      const ref = `${change.resourceType}/${change.id}`;
      jobs.push({
        queue: trigger.bot ? 'bot' : trigger.channel === 'websocket' ? 'websocket' : 'rest-hook',
        // Websocket notifications are an event log read by each process's bound sockets.
        status: trigger.channel === 'websocket' ? 'done' : undefined,
        target: trigger.bot ?? `Subscription/${trigger.id}`,
        key: `${trigger.id}:${ref}/_history/${change.version.versionId}`,
        maxAttempts: trigger.bot ? trigger.maxAttempts : trigger.maxAttempts,
        payload: {
          kind: 'change',
          trigger: change.interaction,
          resource: ref,
          versionId: change.version.versionId,
          previousVersionId: change.previous?.meta?.versionId,
          subscription: trigger.id,
          depth: depth + 1,
          committedAt: change.version.lastUpdated,
        },
      });
    }
    return jobs;
  }

  async committed(info: { jobs: number; types: Set<string> }): Promise<void> {
    if (info.types.has('Library') || info.types.has('Subscription')) {
      await this.reload();
    }
    if (info.jobs > 0) {
      this.kick();
      this.onEvents?.();
    }
  }

  /** Called after a commit that logged events (the websocket hub pushes them). */
  onEvents?: () => void;

  /** A trigger (Subscription) by id. */
  trigger(id: string): TriggerDefinition | undefined {
    return this.triggersById.get(id);
  }

  // ---------------------------------------------------------------- running bots

  /** Runs a bot once against `store` (its writes go through the bot's own scopes) and audits the run. */
  async run(
    bot: BotDefinition,
    event: Record<string, unknown>,
    store: Store,
    how: { trigger: string; timeoutMs?: number; focus?: string; attempt?: number },
  ): Promise<RunRecord> {
    const started = performance.now();
    const key = `${bot.id}/${bot.versionId}`;
    let principal = this.principals.get(key);
    if (!principal) {
      principal = { clientId: `bot:${bot.name}`, scope: bot.scope };
      this.principals.set(key, principal);
    }
    const ctx = this.deps.contextFor(principal, store);
    const log: string[] = [];
    let logChars = 0;
    const touched = new Set<string>();
    const env: Record<string, string> = {};
    for (const name of bot.env) {
      const v = process.env[name];
      if (v !== undefined) {
        env[name] = v;
      }
    }
    const result: SandboxResult = await this.sandbox.run({
      bot: {
        id: bot.id,
        name: bot.name,
        key: `${bot.id}/${bot.versionId}/${bot.hash}`,
        code: bot.code,
        network: bot.network,
        files: bot.fs.length > 0,
        timeoutMs: how.timeoutMs ?? bot.timeoutMs,
        memoryMb: bot.memoryMb,
      },
      event: { ...event, bot: { id: bot.id, name: bot.name } },
      config: bot.config,
      env,
      now: this.deps.now(),
      call: (op, arg) => {
        if (op === 'fhir') {
          return this.fhirCall(arg, ctx, touched);
        }
        if (op === 'fetch' && bot.network) {
          return hostFetch(arg);
        }
        if (op === 'fs' && bot.fs.length > 0) {
          return hostFiles(arg, bot.fs);
        }
        return Promise.reject(new Error(`${op} is not available to bots`));
      },
      log: (level, text) => {
        const line = `${level} ${text}`;
        if (log.length < LOG_LINES && logChars < LOG_CHARS) {
          log.push(line.slice(0, LOG_CHARS - logChars));
          logChars += line.length;
        }
        if (this.options.echoLogs) {
          console.log(`[bot ${bot.name}] ${line}`);
        }
      },
    });
    const record: RunRecord = {
      ok: result.ok,
      value: result.ok ? result.value : undefined,
      error: result.ok ? undefined : result.error,
      durationMs: Math.round((performance.now() - started) * 100) / 100,
      log,
      touched: [...touched],
    };
    this.deps.audit.record(
      this.auditRow(bot, how.trigger, result.ok ? '0' : '8', record.durationMs, {
        focus: how.focus,
        attempt: how.attempt,
        error: result.ok ? undefined : result.error.message,
        log,
        touched: record.touched,
      }),
    );
    return record;
  }

  private auditRow(
    bot: BotDefinition,
    trigger: string,
    outcome: AuditRow['outcome'],
    durationMs: number,
    detail: { focus?: string; attempt?: number; error?: string; log?: string[]; touched?: string[]; dead?: boolean },
  ): AuditRow {
    return {
      recorded: this.deps.now().toISOString(),
      category: 'bot',
      interaction: trigger,
      action: 'E',
      outcome,
      clientId: `bot:${bot.name}`,
      entity: `Library/${bot.id}`,
      patient: detail.focus?.startsWith('Patient/') ? detail.focus.slice(8) : undefined,
      detail: JSON.stringify({ bot: bot.name, trigger, durationMs, ...detail }),
    };
  }

  /** A FHIR request from a bot: the same handle() as any client, with the bot's context. */
  private async fhirCall(arg: string, ctx: RequestContext, touched: Set<string>): Promise<string> {
    let req: { method?: string; path?: string; query?: Record<string, string[]>; body?: unknown; ifMatch?: string; ifNoneExist?: string; contentType?: string };
    try {
      req = JSON.parse(arg) as typeof req;
    } catch {
      throw new Error('malformed request');
    }
    const method = String(req.method) as FhirMethod;
    if (!FHIR_METHODS.has(method) || typeof req.path !== 'string') {
      return JSON.stringify({ status: 400, body: operationOutcome('error', 'invalid', 'A bot request needs a method and a path') });
    }
    let ifMatch = req.ifMatch;
    if (ifMatch !== undefined && !ifMatch.startsWith('W/')) {
      ifMatch = `W/"${ifMatch}"`;
    }
    let res: FhirResponse;
    try {
      res = await handle(
        {
          method,
          path: req.path,
          query: req.query ?? {},
          body: req.body,
          contentType: req.body === undefined ? undefined : (req.contentType ?? 'application/fhir+json'),
          ifMatch,
          ifNoneExist: req.ifNoneExist,
          preferReturn: 'representation',
        },
        ctx,
      );
    } catch (err) {
      if (err instanceof FhirError) {
        return JSON.stringify({ status: STATUS_BY_CATEGORY[err.category], body: err.outcome });
      }
      this.deps.logError(err, `bot request ${method} ${req.path}`);
      return JSON.stringify({ status: 500, body: operationOutcome('fatal', 'exception', 'Internal error while handling the bot request') });
    }
    if (touched.size < 100) {
      touched.add((res.location ?? req.path).replace(/\/_history\/.*$/, '').split('?')[0]);
    }
    const body = res.json ?? (res.resource ? JSON.stringify(res.resource) : 'null');
    return `{"status":${res.status},"body":${body}}`;
  }

  /** `Library/{id}/$execute`: runs the bot now with `input` and answers with what it returned. */
  async execute(libraryId: string, input: unknown, caller: RequestContext): Promise<FhirResponse> {
    // The caller must be able to see the bot (404 otherwise, like a read).
    const visible = await caller.store.read('Library', libraryId);
    const bot = this.botsById.get(`Library/${libraryId}`);
    if (!visible || visible.deleted || !bot) {
      throw notFound(`Library/${libraryId} is not a bot known to this server`);
    }
    if (caller.access?.principal.patient) {
      throw forbidden(`Running a bot needs a user or system token; bots act with their own scopes, not the patient's`);
    }
    if (!bot.active) {
      throw unprocessable(`Bot ${bot.name} is not active (Library.status is '${(parseJson(visible) as Library).status ?? ''}')`);
    }
    const run = await this.run(bot, { trigger: 'manual', input }, this.storeAt(1), { trigger: 'manual' });
    if (!run.ok) {
      const status = run.error?.status && run.error.status >= 400 && run.error.status < 500 ? run.error.status : 422;
      const outcome = (run.error?.outcome as OperationOutcome | undefined) ?? operationOutcome('error', run.error?.kind === 'timeout' ? 'timeout' : 'exception', `Bot ${bot.name} failed: ${run.error?.message ?? ''}`);
      return { status, resource: outcome };
    }
    const value = run.value;
    if (value && typeof value === 'object' && typeof (value as { resourceType?: unknown }).resourceType === 'string') {
      return { status: 200, resource: value as Resource };
    }
    if (value === undefined) {
      return { status: 200, resource: operationOutcome('information', 'informational', `Bot ${bot.name} ran in ${run.durationMs} ms`) };
    }
    return { status: 200, resource: { resourceType: 'Parameters', parameter: [{ name: 'result', valueString: JSON.stringify(value) }] } };
  }

  // ---------------------------------------------------------------- the queue

  /** Drains the queue now (in the background); returns at once. */
  kick(): void {
    if (this.stopped || !this.options.worker) {
      return;
    }
    if (this.draining) {
      this.again = true;
      return;
    }
    this.draining = this.drain()
      .catch((err: unknown) => this.deps.logError(err, 'bot queue'))
      .finally(() => {
        this.draining = undefined;
      });
  }

  /** Waits until the queue has nothing due (tests, CLI). */
  async idle(): Promise<void> {
    for (;;) {
      this.kick();
      await this.draining;
      const due = await this.deps.store.jobs.nextDue(['bot', 'rest-hook']);
      if (due === undefined || due > 0) {
        return;
      }
    }
  }

  /** Jobs this process holds: their leases are renewed until they finish. */
  private readonly held = new Set<string>();

  private async drain(): Promise<void> {
    const renew = setInterval(() => {
      this.deps.store.jobs.renew(this.owner, [...this.held], this.options.leaseMs).catch((err: unknown) => this.deps.logError(err, 'job lease renewal'));
    }, Math.max(50, Math.floor(this.options.leaseMs / 3)));
    renew.unref();
    try {
      do {
        this.again = false;
        for (;;) {
          if (this.stopped) {
            return;
          }
          const jobs = await this.deps.store.jobs.claim(this.owner, this.options.batchSize, this.options.leaseMs, ['bot', 'rest-hook']);
          if (jobs.length === 0) {
            break;
          }
          for (const j of jobs) {
            this.held.add(j.id);
          }
          // Each job is marked done as soon as it finishes (a process killed later does not run it
          // again); marks go out in small groups so a fast queue is not one statement per job.
          const finished: string[] = [];
          let flushing: Promise<void> = Promise.resolve();
          const flush = (): Promise<void> => {
            const ids = finished.splice(0);
            flushing = flushing
              .then(() => (ids.length > 0 ? this.deps.store.jobs.complete(ids, this.owner) : undefined))
              .catch((err: unknown) => this.deps.logError(err, 'marking jobs done'));
            return flushing;
          };
          await Promise.all(
            jobs.map(async (job) => {
              const p = this.runJob(job);
              this.running.add(p);
              try {
                if (await p) {
                  finished.push(job.id);
                  if (finished.length >= 16) {
                    void flush();
                  }
                }
              } finally {
                this.running.delete(p);
                this.held.delete(job.id);
              }
            }),
          );
          await flush();
        }
      } while (this.again);
    } finally {
      clearInterval(renew);
    }
  }

  /** Runs one job; true when it is done (succeeded or nothing to do), false when it was failed or retried. */
  private async runJob(job: Job): Promise<boolean> {
    try {
      const error = job.queue === 'bot' ? await this.runBotJob(job) : await this.deliver(job);
      if (error === undefined) {
        return true;
      }
      await this.failJob(job, error);
      return false;
    } catch (err) {
      this.deps.logError(err, `job ${job.id}`);
      await this.failJob(job, err instanceof Error ? err.message : String(err));
      return false;
    }
  }

  private async failJob(job: Job, error: string): Promise<void> {
    if (job.attempts >= job.maxAttempts) {
      await this.deps.store.jobs.fail(job.id, error, undefined, this.owner);
      await this.deadLetter(job, error);
      return;
    }
    const delay = Math.min(this.options.retryMaxMs, this.options.retryBaseMs * 2 ** (job.attempts - 1));
    await this.deps.store.jobs.fail(job.id, error, Math.round(delay * (0.9 + Math.random() * 0.2)), this.owner);
  }

  private async deadLetter(job: Job, error: string): Promise<void> {
    const bot = this.botsById.get(job.target);
    if (bot) {
      this.deps.audit.record(this.auditRow(bot, String(job.payload.trigger ?? job.payload.kind), '8', 0, { error: `dead letter after ${job.attempts} attempts: ${error}`, dead: true, focus: job.payload.resource as string | undefined }));
    }
    if (job.queue === 'rest-hook') {
      // The Subscription shows the failure (R4 Subscription.status = error, Subscription.error).
      const id = job.target.slice('Subscription/'.length);
      await this.store.transaction(async (w) => {
        const current = parseJson(await w.read('Subscription', id)) as Subscription | undefined;
        if (current && isLive(current)) {
          await w.update({ ...(current as unknown as ResourceLike), status: 'error', error: `Delivery failed ${job.attempts} times: ${error}`.slice(0, 1000) });
        }
      });
    }
  }

  private async eventOf(job: Job): Promise<Record<string, unknown>> {
    const p = job.payload as { kind: string; trigger?: Interaction; resource?: string; versionId?: string; previousVersionId?: string; subscription?: string; scheduledFor?: string };
    if (p.kind === 'schedule') {
      return { trigger: 'schedule', scheduledFor: p.scheduledFor, idempotencyKey: job.key, attempt: job.attempts };
    }
    const [type, id] = (p.resource ?? '/').split('/');
    // The claim read both versions with the job; a job without them (another store) reads them.
    const version =
      p.trigger === 'delete' ? undefined : job.resourceJson ? (JSON.parse(job.resourceJson) as Resource) : parseJson(await this.deps.store.vread(type, id, p.versionId ?? ''));
    const previous = !p.previousVersionId
      ? undefined
      : job.previousJson
        ? (JSON.parse(job.previousJson) as Resource)
        : parseJson(await this.deps.store.vread(type, id, p.previousVersionId));
    return {
      trigger: p.trigger,
      resource: p.trigger === 'delete' ? previous : version,
      previous,
      subscription: p.subscription ? `Subscription/${p.subscription}` : undefined,
      idempotencyKey: job.key,
      attempt: job.attempts,
    };
  }

  /** A queued bot run; returns the error message of a failed run. */
  private async runBotJob(job: Job): Promise<string | undefined> {
    const bot = this.botsById.get(job.target);
    if (!bot?.active) {
      return undefined; // retired or removed since: nothing to run
    }
    const event = await this.eventOf(job);
    const depth = typeof job.payload.depth === 'number' ? job.payload.depth : 1;
    const run = await this.run(bot, event, this.storeAt(depth), {
      trigger: String(event.trigger),
      focus: job.payload.resource as string | undefined,
      attempt: job.attempts,
    });
    return run.ok ? undefined : (run.error?.message ?? 'failed');
  }

  /** A rest-hook delivery; returns the error message of a failed one. */
  private async deliver(job: Job): Promise<string | undefined> {
    const trigger = this.triggersById.get(job.target.slice('Subscription/'.length));
    if (!trigger || trigger.channel !== 'rest-hook') {
      return undefined; // the Subscription is gone or off
    }
    const event = await this.eventOf(job);
    const ref = String(job.payload.resource);
    const headers: Record<string, string> = {
      'X-Continuum-Event': String(event.trigger),
      'X-Continuum-Resource': `${ref}/_history/${String(job.payload.versionId)}`,
      'X-Continuum-Delivery': job.key,
    };
    for (const h of trigger.headers) {
      const colon = h.indexOf(':');
      if (colon > 0) {
        headers[h.slice(0, colon).trim()] = h.slice(colon + 1).trim();
      }
    }
    let url = trigger.endpoint;
    let method = 'POST';
    let body: string | undefined;
    if (trigger.payload === 'full-resource') {
      // R4 rest-hook with a payload: the resource is PUT (or DELETEd) at [endpoint]/[type]/[id].
      url = `${trigger.endpoint.replace(/\/+$/, '')}/${ref}`;
      method = event.trigger === 'delete' ? 'DELETE' : 'PUT';
      body = event.trigger === 'delete' ? undefined : JSON.stringify(event.resource);
      if (body) {
        headers['Content-Type'] = 'application/fhir+json';
      }
    } else if (trigger.payload === 'id-only') {
      body = JSON.stringify({
        resourceType: 'Parameters',
        parameter: [
          { name: 'subscription', valueReference: { reference: `Subscription/${trigger.id}` } },
          { name: 'event', valueCode: String(event.trigger) },
          { name: 'focus', valueReference: { reference: `${ref}/_history/${String(job.payload.versionId)}` } },
        ],
      });
      headers['Content-Type'] = 'application/fhir+json';
    }
    if (trigger.secret) {
      headers['X-Continuum-Signature'] = `sha256=${createHmac('sha256', trigger.secret).update(body ?? '').digest('hex')}`;
    }
    try {
      const res = await fetch(url, { method, headers, body, signal: AbortSignal.timeout(trigger.timeoutMs), redirect: 'manual' });
      await res.arrayBuffer().catch(() => undefined);
      return res.status >= 200 && res.status < 300 ? undefined : `${url} answered ${res.status}`;
    } catch (err) {
      const e = err as Error;
      return e.name === 'TimeoutError' ? `${url} did not answer within ${trigger.timeoutMs} ms` : `${url}: ${e.message}`;
    }
  }

  // ---------------------------------------------------------------- schedules

  private scheduleNextMinute(): void {
    if (this.stopped) {
      return;
    }
    const now = Date.now();
    const next = Math.floor(now / 60_000) * 60_000 + 60_000;
    this.scheduleTimer = setTimeout(() => {
      this.tick(this.deps.now())
        .catch((err: unknown) => this.deps.logError(err, 'bot scheduler'))
        .finally(() => this.scheduleNextMinute());
    }, next - now + 20);
    this.scheduleTimer.unref();
  }

  /** Enqueues the runs of scheduled bots due in the minute of `at` (once across processes); returns how many. */
  async tick(at: Date): Promise<number> {
    const minute = new Date(Math.floor(at.getTime() / 60_000) * 60_000);
    const jobs: NewJob[] = [];
    for (const bot of this.botsById.values()) {
      if (bot.active && bot.schedule?.matches(minute)) {
        jobs.push({
          queue: 'bot',
          target: `Library/${bot.id}`,
          key: `schedule:${bot.id}:${minute.toISOString()}`,
          maxAttempts: bot.maxAttempts,
          payload: { kind: 'schedule', trigger: 'schedule', scheduledFor: minute.toISOString(), depth: 1 },
        });
      }
    }
    const added = await this.deps.store.jobs.enqueue(jobs);
    if (added > 0) {
      this.kick();
    }
    return added;
  }
}

/** An OperationOutcome with error issues among a bot's return value (a pre-commit refusal). */
function errorsIn(value: unknown): OperationOutcome | undefined {
  const o = value as OperationOutcome | undefined;
  if (o?.resourceType === 'OperationOutcome' && (o.issue ?? []).some((i) => i.severity === 'error' || i.severity === 'fatal')) {
    return outcomeOf(o.issue);
  }
  return undefined;
}

/**
 * Files for bots with `fs:` grants: read, write (creating folders) and list, only below a granted
 * folder once symbolic links are resolved. Answers JSON.
 */
async function hostFiles(arg: string, roots: string[]): Promise<string> {
  const r = JSON.parse(arg) as { op: string; path: string; text?: string };
  const real = async (p: string): Promise<string> => {
    // The deepest existing ancestor's real path, plus what does not exist yet.
    let dir = p;
    const rest: string[] = [];
    for (;;) {
      try {
        return join(await realpath(dir), ...rest.reverse());
      } catch {
        const parent = dirname(dir);
        if (parent === dir) {
          return p;
        }
        rest.push(basename(dir));
        dir = parent;
      }
    }
  };
  const target = await real(isAbsolute(r.path) ? resolve(r.path) : resolve(roots[0], r.path));
  const allowed = await Promise.all(roots.map(async (root) => (await real(root)).replace(/\/+$/, '')));
  if (!allowed.some((root) => target === root || target.startsWith(root + sep))) {
    throw new Error(`${r.path} is outside the folders this bot may use (${roots.join(', ')})`);
  }
  switch (r.op) {
    case 'read':
      return JSON.stringify(await readFile(target, 'utf8'));
    case 'write':
      await mkdir(dirname(target), { recursive: true });
      await writeFile(target, r.text ?? '');
      return 'null';
    case 'list':
      return JSON.stringify((await readdir(target)).sort());
    default:
      throw new Error(`unknown file operation '${r.op}'`);
  }
}

/** fetch for bots with the network grant: answers with status, headers and body text. */
async function hostFetch(arg: string): Promise<string> {
  const r = JSON.parse(arg) as { url: string; method: string; headers: Record<string, string>; body?: string };
  if (!/^https?:\/\//.test(r.url)) {
    throw new Error('bots may fetch http(s) URLs only');
  }
  const res = await fetch(r.url, { method: r.method, headers: r.headers, body: r.body, signal: AbortSignal.timeout(30_000) });
  const headers: Record<string, string> = {};
  res.headers.forEach((v, k) => {
    headers[k] = v;
  });
  return JSON.stringify({ status: res.status, statusText: res.statusText, headers, body: await res.text() });
}
