/**
 * The store interface: everything the FHIR core knows about persistence.
 *
 * Callers (src/fhir, src/import, bots) see only this file. The one implementation lives in
 * ./postgres and runs on either embedded PGlite or a PostgreSQL server.
 */
import type { ProjectionSpec } from './projections';

/** One stored version of a resource. `json` is the resource exactly as served (meta included). */
export interface StoredVersion {
  resourceType: string;
  id: string;
  /** Monotonic per resource: "1", "2", ... */
  versionId: string;
  /** ISO 8601 instant. */
  lastUpdated: string;
  /** A delete is a version of its own: `deleted` is true and `json` is undefined. */
  deleted: boolean;
  /** The interaction that produced this version (history bundles report it). */
  method: 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  json?: string;
}

export interface HistoryQuery {
  resourceType?: string;
  id?: string;
  /** Only versions with lastUpdated >= since. */
  since?: string;
  /** Only versions with lastUpdated <= at (the `_at`-free "as of" bound used for stable paging). */
  count: number;
  /** Opaque cursor from a previous page: continue after it (newest first). */
  cursor?: string;
}

export interface HistoryPage {
  versions: StoredVersion[];
  /** Cursor for the next (older) page, absent on the last page. */
  next?: string;
  /** Total number of versions matching the query (without the cursor); absent when not known. */
  total?: number;
}

export interface WriteOptions {
  /** Expected current versionId (If-Match); a mismatch raises a precondition failure. */
  ifMatch?: string;
  method?: StoredVersion['method'];
}

/** A search prefix (FHIR R4 search.html#prefix). */
export type Prefix = 'eq' | 'ne' | 'gt' | 'lt' | 'ge' | 'le' | 'sa' | 'eb' | 'ap';

/** One token alternative: `system` undefined = any system, null = no system. */
export interface TokenMatch {
  system?: string | null;
  value?: string;
  /** `:text`: normalized starts-with on display/text. */
  text?: string;
  /** `:of-type`: Identifier.type coding plus value. */
  typeSystem?: string;
  typeCode?: string;
}

export interface ReferenceMatch {
  targetType?: string;
  targetId?: string;
  /** An absolute or canonical URL as written in the resource. */
  url?: string;
  /** null: the identifier must have no system. */
  identifierSystem?: string | null;
  identifierValue?: string;
}

/** A date search value: the range its precision covers, [start, end). */
export interface DateMatch {
  prefix: Prefix;
  start: string;
  end: string;
}

/** A number/quantity search value: `value` with the range its precision implies, [low, high). */
export interface NumberMatch {
  prefix: Prefix;
  value: number;
  low: number;
  high: number;
  system?: string;
  unitCode?: string;
}

/**
 * A parsed search, as the store understands it (src/search builds these from query strings).
 * Every filter in a list must hold (AND); the values inside one filter are alternatives (OR).
 * `code` names the SearchParameter whose index rows are matched.
 */
export type SearchFilter =
  | { kind: 'id'; ids: string[] }
  | { kind: 'string'; code: string; mode: 'starts' | 'exact' | 'contains'; values: string[] }
  | { kind: 'token'; code: string; values: TokenMatch[] }
  | { kind: 'reference'; code: string; values: ReferenceMatch[] }
  | { kind: 'date'; code: string; values: DateMatch[] }
  | { kind: 'number' | 'quantity'; code: string; values: NumberMatch[] }
  | { kind: 'uri'; code: string; mode: 'exact' | 'below' | 'above'; values: string[] }
  /** Composite: per alternative, one filter per component, all on the same index row. */
  | { kind: 'composite'; code: string; values: CompositeComponentMatch[][] }
  /** `:missing`: whether the resource has any index row for the parameter. */
  | { kind: 'missing'; table: IndexTable; code: string; missing: boolean }
  | { kind: 'not'; filter: SearchFilter }
  | { kind: 'or'; filters: SearchFilter[] }
  /** All of several filters (where a list is not enough: inside an `or`). */
  | { kind: 'and'; filters: SearchFilter[] }
  /** The resource is of one of these types (access rules of a system-level search). */
  | { kind: 'type'; types: string[] }
  /** Chained: a reference parameter whose target (of `targetType`) matches `filters`. */
  | { kind: 'chain'; code: string; targetType: string; filters: SearchFilter[] }
  /** Reverse chained (`_has`): some `sourceType` whose reference `code` points here matches `filters`. */
  | { kind: 'has'; sourceType: string; code: string; filters: SearchFilter[] };

export type IndexTable = 'string' | 'token' | 'reference' | 'date' | 'number' | 'quantity' | 'uri' | 'composite';

export type CompositeComponentMatch =
  | { type: 'token'; match: TokenMatch }
  | { type: 'string'; value: string }
  | { type: 'reference'; match: ReferenceMatch }
  | { type: 'date'; match: DateMatch }
  | { type: 'number' | 'quantity'; match: NumberMatch }
  | { type: 'uri'; value: string };

/** A sort key: the resource id, lastUpdated, or a parameter's smallest (asc) / largest (desc) value. */
export type SortKey =
  | { kind: 'id'; descending: boolean }
  | { kind: 'lastUpdated'; descending: boolean }
  /** `codes`: a parameter that is a union of others (src/search/unions.ts) sorts by all their rows. */
  | { kind: 'param'; table: Exclude<IndexTable, 'composite' | 'reference'>; code: string; codes?: string[]; descending: boolean };

export interface SearchQuery {
  /** Types searched (one for a type search; several or none = all for a system search). */
  resourceType: string | string[];
  filters: SearchFilter[];
  count: number;
  sort?: SortKey[];
  /** Continue after this position (a `first`/`last` of an earlier page). */
  after?: unknown[];
  /** Walk the order backwards (for `previous` links): results come nearest-first. */
  reverse?: boolean;
  /** Also count all matches. */
  total?: boolean;
}

export interface SearchPage {
  versions: StoredVersion[];
  /** Sort positions of the first and last result returned, to continue from. */
  first?: unknown[];
  last?: unknown[];
  /** Whether more results follow in the direction walked. */
  more: boolean;
  total?: number;
}

/** What `_include` / `_revinclude` ask for. */
export interface IncludeQuery {
  direction: 'include' | 'revinclude';
  /** The resources found so far. */
  from: { resourceType: string; id: string }[];
  /** include: type of the referencing resources; revinclude: type of the resources pointing at `from`. */
  sourceType: string;
  /** Reference parameter code; undefined for `*`. */
  code?: string;
  targetType?: string;
  limit: number;
}

/** Read-side operations, available inside and outside a transaction. */
export interface StoreReader {
  /** The current version, including a delete marker; undefined if the resource never existed. */
  read(resourceType: string, id: string): Promise<StoredVersion | undefined>;
  vread(resourceType: string, id: string, versionId: string): Promise<StoredVersion | undefined>;
  history(query: HistoryQuery): Promise<HistoryPage>;
  /** Current, non-deleted resources matching every filter, one page at a time. */
  search(query: SearchQuery): Promise<SearchPage>;
  /**
   * The ids of every current resource of one type matching the filters, in id order, up to
   * `query.count` (sort, cursor and total ignored): one pass over the index, for callers that
   * read many matches (then by `_id` in large chunks) where paging would join the index per page.
   */
  searchIds(query: SearchQuery): Promise<string[]>;
  /**
   * The JSON of the current versions of `type` with these ids, in id order; ids that do not exist
   * or are deleted are left out. For reading many resources at once (after searchIds): it returns
   * only the JSON, the cheapest form to move out of the database.
   */
  readMany(resourceType: string, ids: string[]): Promise<string[]>;
  /**
   * The stored projection `code` (src/store/projections.ts) of every current resource of one type
   * that matches the filters (none: every one) and has a value under one of `keys` (undefined:
   * any): the values, parsed, one per resource, in id order, up to `query.count` (sort, cursor and
   * total ignored). Undefined while the projection is not ready (not yet backfilled): the caller
   * then reads the resources and projects them itself.
   */
  searchProjected(query: SearchQuery, code: string, keys?: string[]): Promise<unknown[] | undefined>;
  /** Resources referenced by (include) or referencing (revinclude) a set of resources. */
  includes(query: IncludeQuery): Promise<StoredVersion[]>;
}

/** Write operations: only reachable inside `Store.transaction`. */
export interface StoreWriter extends StoreReader {
  /** Stores version 1 of a new resource. `resource.id` must be set by the caller. */
  create(resource: ResourceLike, options?: WriteOptions): Promise<StoredVersion>;
  /**
   * Stores a new version of `resource` (which carries its id), creating the resource when it does
   * not exist (update-as-create). `created` says which happened.
   */
  update(resource: ResourceLike, options?: WriteOptions): Promise<{ version: StoredVersion; created: boolean }>;
  /** Adds a delete version. Returns undefined when there was nothing to delete. */
  delete(resourceType: string, id: string, options?: WriteOptions): Promise<StoredVersion | undefined>;
  /**
   * A hint before many writes to known ids (a transaction Bundle's PUTs): lock and read their
   * current versions at once, so each write that follows costs no lookup of its own. Changes
   * nothing a caller can observe but speed.
   */
  prefetch?(keys: { resourceType: string; id: string }[]): Promise<void>;
  /** This transaction seen as a Store: its `transaction()` joins this one instead of opening another. */
  readonly store: Store;
}

/** The kinds of authorization-server records (src/auth). */
export type AuthKind = 'client' | 'user' | 'key' | 'authz' | 'code' | 'launch' | 'refresh' | 'revoked' | 'jti' | 'ws-binding';

export interface AuthRecord<T = Record<string, unknown>> {
  id: string;
  doc: T;
  expiresAt?: string;
  usedAt?: string;
  /** Insertion order (revocations are polled by it). */
  seq: number;
}

/**
 * Non-FHIR records of the authorization server, in the same database as the resources, so that
 * several processes against one PostgreSQL share clients, keys, codes and the replay cache.
 * Expired records are invisible and purged from time to time.
 */
export interface AuthStore {
  get<T>(kind: AuthKind, id: string): Promise<AuthRecord<T> | undefined>;
  /** Inserts or replaces. */
  put(kind: AuthKind, id: string, doc: object, expiresAt?: Date): Promise<void>;
  /** Inserts unless a live record exists; false when one did (replay detection, first registration). */
  insertOnce(kind: AuthKind, id: string, doc: object, expiresAt?: Date): Promise<boolean>;
  /** Marks a live, unused record used and returns it; undefined when absent, expired or already used. */
  consume<T>(kind: AuthKind, id: string): Promise<AuthRecord<T> | undefined>;
  list<T>(kind: AuthKind, afterSeq?: number): Promise<AuthRecord<T>[]>;
  remove(kind: AuthKind, id: string): Promise<boolean>;
}

/** One audit record (src/audit builds AuditEvent resources from these). */
export interface AuditRow {
  /** Position in the trail (`<batch>-<index>`), set when read back. */
  seq?: string;
  recorded: string;
  /** rest: an interaction; login: sign-in and tokens; bot: a bot run. */
  category: 'rest' | 'login' | 'bot';
  interaction: string;
  action: 'C' | 'R' | 'U' | 'D' | 'E';
  outcome: '0' | '4' | '8';
  status?: number;
  clientId?: string;
  fhirUser?: string;
  patient?: string;
  entity?: string;
  detail?: string;
}

export interface AuditQuery {
  patient?: string;
  clientId?: string;
  since?: string;
  /** Rows after this position (a `seq` read earlier; paging). */
  after?: string;
  count: number;
}

/** The audit trail: appended in batches, read newest last by sequence. */
export interface AuditStore {
  append(rows: AuditRow[]): Promise<void>;
  query(q: AuditQuery): Promise<AuditRow[]>;
}

/** One type's resources as they were at an instant (Bulk Data export files). */
export interface SnapshotQuery {
  resourceType: string;
  /** The snapshot instant (the export's transactionTime). */
  at: string;
  /** Only versions with lastUpdated >= since. */
  since?: string;
  /** Filters on the current index (type filters, compartments). */
  filters: SearchFilter[];
  /** Continue after this id (pages are in id order). */
  afterId?: string;
  count: number;
}

export interface SnapshotPage {
  /** The resources (as served), in id order. */
  json: string[];
  /** Where the next page starts; undefined on the last page. */
  nextAfterId?: string;
}

export type ExportStatus = 'accepted' | 'in-progress' | 'completed' | 'failed' | 'cancelled';

export interface ExportJob {
  id: string;
  clientId: string;
  status: ExportStatus;
  request: string;
  params: {
    level: 'system' | 'patient' | 'group';
    groupId?: string;
    /** Group level: the member patients at kick-off. */
    patients?: string[];
    types: string[];
    since?: string;
    /** Per type, search queries (OR-ed) from `_typeFilter`. */
    typeFilters: Record<string, string[]>;
  };
  transactionTime: string;
  progress?: string;
  /** One file per type with resources at transactionTime (`count` when it was counted). */
  output?: { type: string; count?: number }[];
  error?: string;
  expiresAt?: string;
  createdAt: string;
}

/** Durable export jobs: created at kick-off, run by whichever process holds the lease. */
export interface ExportJobStore {
  create(job: ExportJob): Promise<void>;
  get(id: string): Promise<ExportJob | undefined>;
  /** Changes a job; a cancelled job stays cancelled (a runner finishing late cannot revive it). */
  update(id: string, patch: Partial<Pick<ExportJob, 'status' | 'progress' | 'output' | 'error' | 'expiresAt'>>): Promise<void>;
  /** Jobs of a client that are still queued or running. */
  active(clientId: string): Promise<ExportJob[]>;
  /** Takes (or renews) the lease of a queued or running job; false when another owner holds it. */
  claim(id: string, owner: string, leaseMs: number): Promise<boolean>;
  /** Queued or running jobs whose lease is free (to resume after a restart). */
  orphans(): Promise<ExportJob[]>;
  /** Deletes jobs that expired; returns how many. */
  purgeExpired(): Promise<number>;
}

/** A job of the durable queue (post-commit bot runs, scheduled runs, Subscription deliveries). */
export interface Job {
  id: string;
  queue: 'bot' | 'rest-hook' | 'websocket';
  /** `Library/{id}` (a bot) or `Subscription/{id}`. */
  target: string;
  /** Idempotency key: a second job with the same key is not enqueued. */
  key: string;
  payload: Record<string, unknown>;
  status: 'queued' | 'done' | 'dead';
  /** Attempts started so far (including the one a claim starts). */
  attempts: number;
  maxAttempts: number;
  runAfter: string;
  lastError?: string;
  createdAt: string;
  finishedAt?: string;
  /**
   * From a claim: the resource version the payload names (`resource` + `versionId`) and the one
   * before it (`previousVersionId`), as stored JSON, read with the claim (no read per job).
   */
  resourceJson?: string;
  previousJson?: string;
}

/** `status: done` records an event that no worker runs (websocket notifications are read from the log). */
export type NewJob = Pick<Job, 'queue' | 'target' | 'key' | 'payload'> & { maxAttempts?: number; runAfter?: Date; status?: 'queued' | 'done' };

/** The durable job queue, shared by every process on one database. */
export interface JobStore {
  /** Adds jobs (in the caller's transaction when reached through a writer); returns how many were new. */
  enqueue(jobs: NewJob[]): Promise<number>;
  /** Leases up to `limit` due jobs (oldest first) for `leaseMs`, counting an attempt on each. */
  claim(owner: string, limit: number, leaseMs: number, queues?: Job['queue'][]): Promise<Job[]>;
  /** Extends the lease of jobs `owner` still holds (runs in progress). */
  renew(owner: string, ids: string[], leaseMs: number): Promise<void>;
  /** Marks jobs done, unless another owner holds them now (this one's lease ran out). */
  complete(ids: string[], owner?: string): Promise<void>;
  /** Records a failed attempt: retried after `retryInMs`, or dead (kept, visible) when undefined. */
  fail(id: string, error: string, retryInMs: number | undefined, owner?: string): Promise<void>;
  /** Jobs of one target (or all), newest first. */
  list(query: { target?: string; status?: Job['status']; count: number }): Promise<Job[]>;
  /** Puts a dead job back in the queue with fresh attempts; false when there was no such dead job. */
  requeue(id: string): Promise<boolean>;
  /** Milliseconds until the next queued job is due (0: due now), undefined when none is queued. */
  nextDue(queues?: Job['queue'][]): Promise<number | undefined>;
  /** Jobs of one target after an id, oldest first (the event log a websocket catches up from). */
  events(target: string, afterId: string, limit: number): Promise<Job[]>;
  /** Deletes finished jobs older than `olderThanMs`; returns how many. */
  purge(olderThanMs: number): Promise<number>;
}

export interface Store extends StoreReader {
  /** Records of the authorization server (not FHIR resources; never reachable through the FHIR API). */
  readonly auth: AuthStore;
  /** The audit trail. */
  readonly audit: AuditStore;
  /** Bulk export jobs. */
  readonly exportJobs: ExportJobStore;
  /** The durable job queue (bots, subscriptions); through a writer, enqueued jobs commit with it. */
  readonly jobs: JobStore;
  /** One page of a type's snapshot at an instant (Bulk Data export). */
  snapshot(query: SnapshotQuery): Promise<SnapshotPage>;
  /** How many resources the next `query.count` rows of a snapshot hold (ids only, no content). */
  snapshotCount(query: SnapshotQuery): Promise<{ count: number; nextAfterId?: string }>;
  /**
   * Runs `fn` in one database transaction: all of its writes commit together or none do.
   * Nested calls (from a transaction Bundle's entries) join the outer transaction.
   */
  transaction<T>(fn: (writer: StoreWriter) => Promise<T>): Promise<T>;
  /**
   * Rebuilds the search index of current resources (all, or one type) in batches, each batch in its
   * own transaction. Returns how many resources were reindexed.
   */
  reindex(options: ReindexOptions): Promise<number>;
  /**
   * Makes projections ready: records each one new to the database and backfills it (reindexing its
   * types, batch by batch, each under row locks) before marking it ready. Returns the codes it
   * backfilled; stops early (leaving those not ready) when `signal` aborts.
   */
  prepareProjections(specs: readonly ProjectionSpec[], options?: ReindexOptions): Promise<string[]>;
  /** Refreshes the planner's statistics (after bulk loads; the embedded store has no autovacuum). */
  analyze(): Promise<void>;
  /** Which driver is in use, for logs and the benchmark. */
  readonly kind: 'pglite' | 'postgres';
  close(): Promise<void>;
}

export interface ReindexOptions {
  resourceType?: string;
  batchSize?: number;
  onProgress?: (done: number, total: number) => void;
  /** Only resources whose current version was written at or before this instant (ISO 8601). */
  writtenBy?: string;
  /** Stops between batches (what was done stays done). */
  signal?: AbortSignal;
}

/** The minimal shape the store needs from a resource. */
export interface ResourceLike {
  resourceType: string;
  id?: string;
  meta?: { versionId?: string; lastUpdated?: string; [key: string]: unknown };
  [key: string]: unknown;
}
