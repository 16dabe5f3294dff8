/**
 * The store interface: everything the FHIR core knows about persistence.
 *
 * Callers (src/fhir, src/import, bots) see only this file. The one implementation lives in
 * ./postgres and runs on either embedded PGlite or a PostgreSQL server.
 */

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
  /** Total number of versions matching the query (without the cursor). */
  total: number;
}

export interface WriteOptions {
  /** Expected current versionId (If-Match); a mismatch raises a precondition failure. */
  ifMatch?: string;
  method?: StoredVersion['method'];
}

/**
 * A parsed search, as the store understands it (src/search builds these from query strings).
 * Every filter must hold (AND); the values inside one filter are alternatives (OR).
 */
export type SearchFilter =
  | { kind: 'id'; ids: string[] }
  /** Identifier match: `system|value`, `|value` (no system) or `value` (any system). */
  | { kind: 'identifier'; values: { system?: string | null; value: string }[] }
  /** A top-level primitive element equal to one of the values (e.g. a canonical resource's `url`). */
  | { kind: 'element'; element: string; values: string[] };

export interface SearchQuery {
  resourceType: string;
  filters: SearchFilter[];
  count: number;
}

/** Read-side operations, available inside and outside a transaction. */
export interface StoreReader {
  /** The current version, including a delete marker; undefined if the resource never existed. */
  read(resourceType: string, id: string): Promise<StoredVersion | undefined>;
  vread(resourceType: string, id: string, versionId: string): Promise<StoredVersion | undefined>;
  history(query: HistoryQuery): Promise<HistoryPage>;
  /** Current, non-deleted resources matching every filter, in id order. */
  search(query: SearchQuery): Promise<StoredVersion[]>;
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
  /** This transaction seen as a Store: its `transaction()` joins this one instead of opening another. */
  readonly store: Store;
}

export interface Store extends StoreReader {
  /**
   * Runs `fn` in one database transaction: all of its writes commit together or none do.
   * Nested calls (from a transaction Bundle's entries) join the outer transaction.
   */
  transaction<T>(fn: (writer: StoreWriter) => Promise<T>): Promise<T>;
  /** Which driver is in use, for logs and the benchmark. */
  readonly kind: 'pglite' | 'postgres';
  close(): Promise<void>;
}

/** The minimal shape the store needs from a resource. */
export interface ResourceLike {
  resourceType: string;
  id?: string;
  meta?: { versionId?: string; lastUpdated?: string; [key: string]: unknown };
  [key: string]: unknown;
}
