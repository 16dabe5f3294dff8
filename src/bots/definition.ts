/**
 * How bots and their triggers are written down as FHIR resources (docs/bots.md):
 *
 * - A bot is a `Library` of type `logic-library` whose `name` is the bot's name and whose `content`
 *   holds its TypeScript source (`text/typescript`) and, when deployed by the CLI, the compiled
 *   bundle (`application/javascript`). Its identity and limits are extensions (BOT_EXT below).
 * - A trigger is a `Subscription` whose `channel.endpoint` is `Library/{id}` (channel type
 *   `message`): `criteria` says which writes, extensions say which interactions, the phase
 *   (pre- or post-commit), an optional FHIRPath condition over `%current` and `%previous`, and
 *   the maximum number of attempts. A schedule (cron) is an extension on the Library itself,
 *   since an R4 Subscription must have search criteria.
 * - Any other active Subscription (`rest-hook`) is a notification channel for outside clients.
 */
import type { Extension, Library, Subscription } from '@medplum/fhirtypes';
import { createHash } from 'node:crypto';
import { parseCron, type CronSchedule } from './cron';
import { bundleSources } from './compile';
import { parseScopes } from '../auth/scopes';

const BASE = 'http://continuum-ccm.org/fhir/StructureDefinition/';

/** Extension URLs on a bot's Library. */
export const BOT_EXT = {
  /** The SMART scopes the bot runs with (valueString, space-separated). */
  scope: `${BASE}bot-scope`,
  /** Cron expression of a scheduled run (valueString). */
  schedule: `${BASE}bot-schedule`,
  /** Time limit of one run in milliseconds (valueInteger). */
  timeout: `${BASE}bot-timeout`,
  /** Heap limit of the bot's workers in MB (valueInteger). */
  memory: `${BASE}bot-memory`,
  /** A grant (valueString): `network`, `env:NAME` (one environment variable), `fs:/dir` (files under one folder). */
  grant: `${BASE}bot-grant`,
  /** Configuration handed to the bot as `ctx.config` (valueString, JSON). */
  config: `${BASE}bot-config`,
  /** Attempts of a post-commit or scheduled run before it becomes a dead letter (valueInteger). */
  maxAttempts: `${BASE}bot-max-attempts`,
} as const;

/** Extension URLs on a Subscription. */
export const SUBSCRIPTION_EXT = {
  /** Which interactions trigger it (valueCode create | update | delete, repeating; default all). */
  interaction: `${BASE}subscription-interaction`,
  /** `pre-commit` (synchronous, may reject the write) or `post-commit` (default) (valueCode). */
  phase: `${BASE}subscription-phase`,
  /** FHIRPath over the resource, with `%current` and `%previous` (valueString). */
  condition: `${BASE}subscription-condition`,
  /** Attempts before a dead letter (valueInteger). */
  maxAttempts: `${BASE}subscription-max-attempts`,
  /** Shared secret: deliveries carry an HMAC-SHA256 of the body in `X-Continuum-Signature` (valueString). */
  secret: `${BASE}subscription-secret`,
  /** Time limit of one delivery in milliseconds (valueInteger). */
  timeout: `${BASE}subscription-timeout`,
  /** What a delivery carries: empty | id-only | full-resource (valueCode). */
  payload: `${BASE}subscription-payload`,
} as const;

export const LIBRARY_TYPE_SYSTEM = 'http://terminology.hl7.org/CodeSystem/library-type';
export const TYPESCRIPT = 'text/typescript';
export const JAVASCRIPT = 'application/javascript';

export type Interaction = 'create' | 'update' | 'delete';

/** A bot as the runtime uses it. */
export interface BotDefinition {
  id: string;
  versionId: string;
  name: string;
  active: boolean;
  /** The compiled bundle. */
  code: string;
  /** A hash of the code (deploy compares it). */
  hash: string;
  scope: string;
  schedule?: CronSchedule;
  timeoutMs: number;
  memoryMb: number;
  maxAttempts: number;
  network: boolean;
  env: string[];
  /** Absolute folders whose files the bot may read and write (`fs:` grants). */
  fs: string[];
  config: unknown;
}

/** A Subscription as the runtime uses it. */
export interface TriggerDefinition {
  id: string;
  /** The bot it runs (`Library/{id}`), or undefined for a notification channel. */
  bot?: string;
  channel: 'bot' | 'rest-hook' | 'websocket';
  resourceType: string;
  /** The query part of the criteria (`code=...`), empty for all resources of the type. */
  query: string;
  interactions: Set<Interaction>;
  phase: 'pre-commit' | 'post-commit';
  condition?: string;
  maxAttempts: number;
  endpoint: string;
  headers: string[];
  secret?: string;
  timeoutMs: number;
  payload: 'empty' | 'id-only' | 'full-resource';
}

export const DEFAULTS = { timeoutMs: 10_000, memoryMb: 128, maxAttempts: 5, preCommitTimeoutMs: 2_000, deliveryTimeoutMs: 5_000 };

/** A problem with a bot or trigger definition (reported as a 422 when it is written). */
export class DefinitionError extends Error {}

const ext = (exts: Extension[] | undefined, url: string): Extension[] => (exts ?? []).filter((e) => e.url === url);
const str = (exts: Extension[] | undefined, url: string): string | undefined => ext(exts, url)[0]?.valueString ?? ext(exts, url)[0]?.valueCode;
const int = (exts: Extension[] | undefined, url: string, min: number, max: number, fallback: number): number => {
  const e = ext(exts, url)[0];
  if (!e) {
    return fallback;
  }
  const v = e.valueInteger ?? e.valuePositiveInt ?? e.valueUnsignedInt;
  if (typeof v !== 'number' || v < min || v > max) {
    throw new DefinitionError(`extension ${url} must be an integer from ${min} to ${max}`);
  }
  return v;
};

/** Whether a Library is a bot (logic-library with TypeScript or JavaScript content). */
export function isBotLibrary(library: Library): boolean {
  return (
    (library.type?.coding ?? []).some((c) => c.code === 'logic-library') &&
    (library.content ?? []).some((a) => a.contentType === TYPESCRIPT || a.contentType === JAVASCRIPT)
  );
}

const decode = (data: string | undefined): string => Buffer.from(data ?? '', 'base64').toString('utf8');

/** Reads a bot from its Library; compiles TypeScript content when no bundle is attached. Throws DefinitionError. */
export function botFromLibrary(library: Library): BotDefinition {
  const name = library.name;
  if (!name || !/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/.test(name)) {
    throw new DefinitionError('a bot Library needs a name of letters, digits, - and _ (Library.name)');
  }
  const bundle = library.content?.find((a) => a.contentType === JAVASCRIPT);
  const source = library.content?.find((a) => a.contentType === TYPESCRIPT);
  let code: string;
  if (bundle?.data) {
    code = decode(bundle.data);
  } else if (source?.data) {
    code = bundleSources({ 'index.ts': decode(source.data) });
  } else {
    throw new DefinitionError(`bot ${name} has no code: attach the TypeScript source (${TYPESCRIPT}) or a bundle (${JAVASCRIPT}) as base64 data`);
  }
  const exts = library.extension;
  const scheduleText = str(exts, BOT_EXT.schedule);
  let schedule: CronSchedule | undefined;
  if (scheduleText) {
    try {
      schedule = parseCron(scheduleText);
    } catch (err) {
      throw new DefinitionError(`bot ${name}: ${(err as Error).message}`);
    }
  }
  const scope = str(exts, BOT_EXT.scope) ?? '';
  const unknownScopes = parseScopes(scope).unknown;
  if (unknownScopes.length > 0) {
    throw new DefinitionError(
      `bot ${name}: scope '${unknownScopes.join(' ')}' is not a SMART scope this server understands (resource scopes look like system/Patient.rs, their letters in the order c r u d s)`,
    );
  }
  const grants = ext(exts, BOT_EXT.grant).map((e) => e.valueString ?? '');
  const env: string[] = [];
  const fs: string[] = [];
  let network = false;
  for (const g of grants) {
    if (g === 'network') {
      network = true;
    } else if (/^env:[A-Za-z_][A-Za-z0-9_]*$/.test(g)) {
      env.push(g.slice(4));
    } else if (/^fs:\/./.test(g)) {
      fs.push(g.slice(3).replace(/\/+$/, ''));
    } else {
      throw new DefinitionError(`bot ${name}: unknown grant '${g}' (use 'network', 'env:NAME' or 'fs:/absolute/folder')`);
    }
  }
  const configText = str(exts, BOT_EXT.config);
  let config: unknown = {};
  if (configText) {
    try {
      config = JSON.parse(configText);
    } catch {
      throw new DefinitionError(`bot ${name}: the configuration extension is not valid JSON`);
    }
  }
  return {
    id: library.id as string,
    versionId: library.meta?.versionId ?? '1',
    name,
    active: library.status === 'active',
    code,
    hash: createHash('sha256').update(code).digest('hex'),
    scope,
    schedule,
    timeoutMs: int(exts, BOT_EXT.timeout, 10, 600_000, DEFAULTS.timeoutMs),
    memoryMb: int(exts, BOT_EXT.memory, 16, 4096, DEFAULTS.memoryMb),
    maxAttempts: int(exts, BOT_EXT.maxAttempts, 1, 100, DEFAULTS.maxAttempts),
    network,
    env,
    fs,
    config,
  };
}

/** Whether a Subscription is live (requested or active). */
export function isLive(subscription: Subscription): boolean {
  return subscription.status === 'active' || subscription.status === 'requested';
}

/** Reads a trigger from a Subscription. Throws DefinitionError. */
export function triggerFromSubscription(subscription: Subscription): TriggerDefinition {
  const criteria = subscription.criteria ?? '';
  const m = /^([A-Z][A-Za-z]+)(?:\?(.*))?$/.exec(criteria);
  if (!m) {
    throw new DefinitionError(`Subscription.criteria '${criteria}' must be a resource type with optional search parameters, e.g. Observation?code=http://loinc.org|8867-4`);
  }
  const exts = subscription.extension;
  const endpoint = subscription.channel?.endpoint ?? '';
  const botRef = /^Library\/([A-Za-z0-9\-.]{1,64})$/.exec(endpoint);
  const type = subscription.channel?.type;
  let channel: TriggerDefinition['channel'];
  if (botRef && (type === 'message' || type === 'rest-hook')) {
    channel = 'bot';
  } else if (type === 'websocket') {
    channel = 'websocket';
  } else if (type === 'rest-hook') {
    if (!/^https?:\/\//.test(endpoint)) {
      throw new DefinitionError('a rest-hook Subscription needs an http(s) channel.endpoint');
    }
    channel = 'rest-hook';
  } else {
    throw new DefinitionError(`Subscription channel type '${type ?? ''}' is not supported: use rest-hook, websocket, or message with endpoint Library/{id} for a bot`);
  }
  const interactions = new Set<Interaction>();
  for (const e of ext(exts, SUBSCRIPTION_EXT.interaction)) {
    const code = e.valueCode;
    if (code !== 'create' && code !== 'update' && code !== 'delete') {
      throw new DefinitionError(`subscription-interaction must be create, update or delete, not '${code ?? ''}'`);
    }
    interactions.add(code);
  }
  if (interactions.size === 0) {
    interactions.add('create').add('update').add('delete');
  }
  const phase = str(exts, SUBSCRIPTION_EXT.phase) ?? 'post-commit';
  if (phase !== 'pre-commit' && phase !== 'post-commit') {
    throw new DefinitionError(`subscription-phase must be pre-commit or post-commit, not '${phase}'`);
  }
  if (phase === 'pre-commit' && channel !== 'bot') {
    throw new DefinitionError('only a bot can run pre-commit');
  }
  const payloadExt = str(exts, SUBSCRIPTION_EXT.payload);
  const payload = payloadExt ?? (subscription.channel?.payload ? 'full-resource' : 'empty');
  if (payload !== 'empty' && payload !== 'id-only' && payload !== 'full-resource') {
    throw new DefinitionError(`subscription-payload must be empty, id-only or full-resource, not '${payload}'`);
  }
  return {
    id: subscription.id as string,
    bot: botRef ? `Library/${botRef[1]}` : undefined,
    channel,
    resourceType: m[1],
    query: m[2] ?? '',
    interactions,
    phase,
    condition: str(exts, SUBSCRIPTION_EXT.condition),
    maxAttempts: int(exts, SUBSCRIPTION_EXT.maxAttempts, 1, 100, DEFAULTS.maxAttempts),
    endpoint,
    headers: subscription.channel?.header ?? [],
    secret: str(exts, SUBSCRIPTION_EXT.secret),
    timeoutMs: int(exts, SUBSCRIPTION_EXT.timeout, 100, 60_000, DEFAULTS.deliveryTimeoutMs),
    payload,
  };
}
