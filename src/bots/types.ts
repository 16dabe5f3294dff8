/**
 * The types a bot is written against: `export async function handler(event: BotEvent, ctx: BotContext)`.
 * Bots import them type-only (`import type { BotEvent, BotContext } from '../../src/bots/types'`),
 * so nothing of the server ends up in a bot's bundle.
 */
import type { Bundle, OperationOutcome, Resource } from '@medplum/fhirtypes';

/** What started a run. */
export type BotTrigger = 'create' | 'update' | 'delete' | 'schedule' | 'manual';

/** A run's input. */
export interface BotEvent<T extends Resource = Resource> {
  trigger: BotTrigger;
  /** `pre-commit` when the write waits for this run (return an error OperationOutcome to refuse it). */
  phase?: 'pre-commit';
  /** The resource written (for a delete: its last version). */
  resource?: T;
  /** The version an update or delete replaced. */
  previous?: T;
  /** The Subscription that matched (`Subscription/{id}`). */
  subscription?: string;
  /** `$execute` / `continuum bots run`: the body sent. */
  input?: unknown;
  /** Scheduled runs: the minute the run was due (ISO instant). */
  scheduledFor?: string;
  /** Stable across retries of one event: use it to make writes idempotent. */
  idempotencyKey?: string;
  /** 1 on the first attempt, then 2, 3, ... (post-commit and scheduled runs). */
  attempt?: number;
  bot: { id: string; name: string };
}

/** Search parameters: a query string or name -> value(s). */
export type BotQuery = string | Record<string, string | number | boolean | (string | number | boolean)[] | undefined>;

/** The FHIR client a bot gets: the server's own API in process, with the bot's scopes (MedplumClient's shape). */
export interface BotFhirClient {
  readResource<T extends Resource = Resource>(type: T['resourceType'], id: string): Promise<T>;
  vreadResource<T extends Resource = Resource>(type: T['resourceType'], id: string, versionId: string): Promise<T>;
  readHistory(type: string, id: string): Promise<Bundle>;
  search<T extends Resource = Resource>(type: T['resourceType'], query?: BotQuery): Promise<Bundle<T>>;
  searchResources<T extends Resource = Resource>(type: T['resourceType'], query?: BotQuery): Promise<T[]>;
  searchOne<T extends Resource = Resource>(type: T['resourceType'], query?: BotQuery): Promise<T | undefined>;
  createResource<T extends Resource>(resource: T): Promise<T>;
  /** Creates unless a resource matches `query` (If-None-Exist); returns the one that exists or was made. */
  createResourceIfNoneExist<T extends Resource>(resource: T, query: BotQuery): Promise<T>;
  updateResource<T extends Resource>(resource: T, options?: { ifMatch?: string }): Promise<T>;
  patchResource<T extends Resource = Resource>(type: T['resourceType'], id: string, operations: unknown[]): Promise<T>;
  deleteResource(type: string, id: string): Promise<unknown>;
  executeBatch(bundle: Bundle): Promise<Bundle>;
  /** GET any path below the base (an operation such as `Patient/1/$ccm-eligibility`); the answer's body. */
  get<T = Resource>(path: string, query?: BotQuery): Promise<T>;
  /** POST a body to any path below the base (an operation); the answer's body. */
  post<T = Resource>(path: string, body?: unknown, query?: BotQuery): Promise<T>;
}

export interface BotLogger {
  debug(...args: unknown[]): void;
  info(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
}

/** What a bot is given besides its event. */
export interface BotContext<C = Record<string, unknown>> {
  bot: { id: string; name: string };
  /** From bot.json `config` (the Library's bot-config extension). */
  config: C;
  /** Granted environment variables only (`env:NAME` grants). */
  env: Readonly<Record<string, string>>;
  /** The run's "now" (the server's clock; fixed per run, injectable in tests). */
  now(): Date;
  log: BotLogger;
  fhir: BotFhirClient;
  /** Only with an `fs:/folder` grant: files below the granted folder(s); relative paths start at the first. */
  files?: {
    read(path: string): Promise<string>;
    write(path: string, text: string): Promise<void>;
    list(path?: string): Promise<string[]>;
  };
}

/** A bot's handler. Return a resource for `$execute`, or an error OperationOutcome to refuse a pre-commit write. */
export type BotHandler<C = Record<string, unknown>> = (event: BotEvent, ctx: BotContext<C>) => Promise<Resource | OperationOutcome | unknown>;

/** Thrown by BotFhirClient calls that the server answered with an error. */
export interface BotFhirError extends Error {
  status: number;
  outcome?: OperationOutcome;
}
