import { conflict, preconditionFailed } from '../../errors';
import type {
  AuditStore,
  AuthStore,
  ExportJobStore,
  JobStore,
  HistoryPage,
  HistoryQuery,
  IncludeQuery,
  ReindexOptions,
  ResourceLike,
  SearchPage,
  SearchFilter,
  SearchQuery,
  SnapshotPage,
  SnapshotQuery,
  Store,
  StoredVersion,
  StoreReader,
  StoreWriter,
  WriteOptions,
} from '../api';
import type { ProjectionSpec } from '../projections';
import type { Driver, Queryable } from './driver';
import { type ExtractedRows, IndexBatch, type Indexer, replaceIndexRows } from './index-writer';
import { PgAuditStore } from './audit-store';
import { PgJobStore } from './job-store';
import { PgAuthStore } from './auth-store';
import { PgExportJobStore } from './export-store';
import { CreateGroups, keyOf } from './create-groups';
import { TextArrayParam } from './text-array';
import { LazyTransaction } from './lazy-transaction';
import { cacheKey, ReadCache } from './read-cache';
import { matchAll } from '../../search/match';
import { anchorSql, byTypeAndId, filterSql, indexIdsSql, isPatientAnchor, isStringAnchor, keysetSql, type SortColumn, sortColumns, SqlParams } from './search-sql';

interface CurrentRow {
  version_id: number;
  last_updated: Date | string;
  deleted: boolean;
  content: string | null;
}

interface VersionRow extends CurrentRow {
  seq: string;
  resource_type: string;
  id: string;
  method: StoredVersion['method'];
}

/** A chained search with at most this many targets searches a reference to them (resolveChains). */
export const CHAIN_TARGETS_INLINE = 20;
const iso = (v: Date | string): string => (v instanceof Date ? v : new Date(v)).toISOString();

function fromRow(resourceType: string, id: string, row: CurrentRow, method?: StoredVersion['method']): StoredVersion {
  return {
    resourceType,
    id,
    versionId: String(row.version_id),
    lastUpdated: iso(row.last_updated),
    deleted: row.deleted,
    method: method ?? (row.deleted ? 'DELETE' : 'PUT'),
    json: row.content ?? undefined,
  };
}

/**
 * A parameter value as an SQL literal, for explain()'s EXPLAIN EXECUTE only (a diagnostics path
 * that no request reaches; every search runs with bound parameters).
 */
function sqlLiteral(v: unknown): string {
  if (v === null || v === undefined) {
    return 'NULL';
  }
  const text = Array.isArray(v)
    ? `{${v.map((e) => `"${String(e).replace(/["\\]/g, '\\$&')}"`).join(',')}}`
    : v instanceof Date
      ? v.toISOString()
      : String(v);
  return `'${text.replace(/'/g, "''")}'`;
}

/** Statements prepared by explain() so far (each gets its own name). */
let explained = 0;

/**
 * A search's filters with nested ANDs spread out (the same conditions): an access rule arrives as
 * one filter, `and(restrictions..., compartment)` for a patient-scoped grant with restrictions,
 * and its compartment can then anchor the search.
 */
function flatFilters(filters: SearchFilter[]): SearchFilter[] {
  return filters.flatMap((f) => (f.kind === 'and' ? flatFilters(f.filters) : [f]));
}

/**
 * The index in flatFilters() of the filter a search starts from (search-sql.ts anchorSql): its
 * first patient anchor, else its first string anchor; -1 when it has none.
 */
function anchorOf(query: SearchQuery): number {
  if (Array.isArray(query.resourceType) && query.resourceType.length !== 1) {
    return -1;
  }
  const filters = flatFilters(query.filters);
  const patient = filters.findIndex(isPatientAnchor);
  return patient >= 0 ? patient : filters.findIndex(isStringAnchor);
}

class PgReader implements StoreReader {
  constructor(
    protected readonly q: Queryable,
    /** Index values of a version that is not the current one (snapshot filters). */
    protected readonly snapshotIndexer?: Indexer,
  ) {}

  async read(resourceType: string, id: string): Promise<StoredVersion | undefined> {
    const rows = await this.q.query<CurrentRow>(
      'SELECT version_id, last_updated, deleted, content FROM resource_current WHERE resource_type = $1 AND id = $2',
      [resourceType, id],
      { prepare: true },
    );
    return rows[0] && fromRow(resourceType, id, rows[0]);
  }

  async vread(resourceType: string, id: string, versionId: string): Promise<StoredVersion | undefined> {
    const vid = Number(versionId);
    if (!Number.isSafeInteger(vid) || vid < 1) {
      return undefined;
    }
    const rows = await this.q.query<VersionRow>(
      `SELECT version_id, last_updated, deleted, content, method FROM resource_version
       WHERE resource_type = $1 AND id = $2 AND version_id = $3`,
      [resourceType, id, vid],
      { prepare: true },
    );
    return rows[0] && fromRow(resourceType, id, rows[0], rows[0].method);
  }

  async history(query: HistoryQuery): Promise<HistoryPage> {
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (clause: string, value: unknown): void => {
      params.push(value);
      where.push(clause.replace('?', '$' + params.length));
    };
    if (query.resourceType) {
      add('resource_type = ?', query.resourceType);
    }
    if (query.id) {
      add('id = ?', query.id);
    }
    if (query.since) {
      add('last_updated >= ?', query.since);
    }
    const filter = where.length ? 'WHERE ' + where.join(' AND ') : '';
    const totalRows = await this.q.query<{ n: string | number }>(
      `SELECT count(*) AS n FROM resource_version ${filter}`,
      params,
    );
    if (query.cursor) {
      add('seq < ?', query.cursor);
    }
    const pageFilter = where.length ? 'WHERE ' + where.join(' AND ') : '';
    params.push(query.count + 1);
    const rows = await this.q.query<VersionRow>(
      `SELECT seq, resource_type, id, version_id, last_updated, deleted, content, method FROM resource_version
       ${pageFilter} ORDER BY seq DESC LIMIT $${params.length}`,
      params,
    );
    const page = rows.slice(0, query.count);
    return {
      versions: page.map((r) => fromRow(r.resource_type, r.id, r, r.method)),
      next: rows.length > query.count && page.length > 0 ? String(page[page.length - 1].seq) : undefined,
      total: Number(totalRows[0].n),
    };
  }


  /** The WHERE clause of a search (resource type and filters) over resource_current `r`. */
  private whereOf(query: SearchQuery, p: SqlParams, anchor = anchorOf(query)): string[] {
    const where = ['NOT r.deleted'];
    const types = Array.isArray(query.resourceType) ? query.resourceType : [query.resourceType];
    if (types.length === 1) {
      where.push(`r.resource_type = ${p.add(types[0])}`);
    } else if (types.length > 1) {
      where.push(`r.resource_type = ANY(${p.add(types, 'text[]')})`);
    }
    const filters = flatFilters(query.filters);
    if (anchor < 0) {
      where.push(...filters.map((f) => filterSql(f, 'r', p)));
      return where;
    }
    // The other filters that read only the type and id are checked on the anchor's ids, before
    // any resource is read; the rest (_lastUpdated) on each resource read.
    const rest = filters.filter((_, i) => i !== anchor);
    where.push(anchorSql(filters[anchor], types[0], 'r', p, rest.filter(byTypeAndId)));
    where.push(...rest.filter((f) => !byTypeAndId(f)).map((f) => filterSql(f, 'r', p)));
    return where;
  }

  /** The SQL of one page of a search (count + 1 rows, in sort order, after the cursor). */
  private pageSql(query: SearchQuery, where: string[], p: SqlParams): { sql: string; cols: SortColumn[] } {
    const cols = sortColumns(query.sort ?? [{ kind: 'lastUpdated', descending: false }], 'r', p).map((c) =>
      query.reverse ? { ...c, descending: !c.descending } : c,
    );
    const conditions = query.after ? [...where, keysetSql(cols, query.after, p)] : where;
    const select = cols.map((c, i) => `${c.expr} AS s${i}`).join(', ');
    const order = cols.map((c, i) => `s${i}${c.descending ? ' DESC' : ''}`).join(', ');
    const sql = `SELECT r.resource_type, r.id, r.version_id, r.last_updated, r.deleted, r.content, ${select}
       FROM resource_current r WHERE ${conditions.join(' AND ')} ORDER BY ${order} LIMIT ${p.add(query.count + 1, 'int')}`;
    return { sql, cols };
  }

  /**
   * Chains (`subject:Patient.name=x`) whose targets are few, replaced by a plain reference to
   * those targets, found first. Two small statements are planned faster than one with the
   * target's search nested in it (planning was most of a chained search's time on the embedded
   * store); a chain with more targets keeps the nested form. The targets are read with the
   * chain's own filters, so access rules the guard put there apply to them as before.
   */
  private async resolveChains(filters: SearchFilter[]): Promise<SearchFilter[]> {
    if (!filters.some((f) => f.kind === 'chain')) {
      return filters;
    }
    const out: SearchFilter[] = [];
    for (const f of filters) {
      if (f.kind !== 'chain') {
        out.push(f);
        continue;
      }
      // The targets' own search, anchored (and planned once) when it is a lookup such as a name.
      const p = new SqlParams();
      const targets: SearchQuery = { resourceType: f.targetType, filters: f.filters, count: CHAIN_TARGETS_INLINE + 1 };
      const anchor = anchorOf(targets);
      const where = this.whereOf(targets, p, anchor);
      const rows = await this.q.query<{ id: string }>(`SELECT r.id FROM resource_current r WHERE ${where.join(' AND ')} LIMIT ${p.add(targets.count, 'int')}`, p.values, {
        prepare: true,
        plan: anchor >= 0 ? 'generic' : 'custom',
      });
      out.push(rows.length > CHAIN_TARGETS_INLINE ? f : { kind: 'reference', code: f.code, values: rows.map((row) => ({ targetType: f.targetType, targetId: row.id })) });
    }
    return out;
  }

  async search(query: SearchQuery): Promise<SearchPage> {
    query = { ...query, filters: await this.resolveChains(query.filters) };
    const p = new SqlParams();
    const anchor = anchorOf(query);
    const where = this.whereOf(query, p, anchor);
    let total: number | undefined;
    if (query.total) {
      const rows = await this.q.query<{ n: string | number }>(`SELECT count(*) AS n FROM resource_current r WHERE ${where.join(' AND ')}`, p.values);
      total = Number(rows[0].n);
    }
    if (query.count === 0) {
      return { versions: [], more: false, total };
    }
    const { sql, cols } = this.pageSql(query, where, p);
    // An anchored statement's plan does not depend on its values (anchorSql): plan it once.
    // Any other depends on them: plan it with them every time.
    const rows = await this.q.query<CurrentRow & { resource_type: string; id: string; [k: string]: unknown }>(sql, p.values, {
      prepare: true,
      plan: anchor >= 0 ? 'generic' : 'custom',
    });
    const page = rows.slice(0, query.count);
    const position = (row: Record<string, unknown> | undefined): unknown[] | undefined =>
      row ? cols.map((_, i) => cursorValue(row[`s${i}`])) : undefined;
    return {
      versions: page.map((row) => fromRow(row.resource_type, row.id, row)),
      first: position(page[0]),
      last: position(page[page.length - 1]),
      more: rows.length > query.count,
      total,
    };
  }

  async readMany(resourceType: string, ids: string[]): Promise<string[]> {
    if (ids.length === 0) {
      return [];
    }
    const rows = await this.q.query<{ content: string }>(
      'SELECT content FROM resource_current WHERE resource_type = $1 AND id = ANY($2::text[]) AND NOT deleted ORDER BY id',
      [resourceType, ids],
      { prepare: true },
    );
    return rows.map((r) => r.content);
  }

  async searchIds(query: SearchQuery): Promise<string[]> {
    if (Array.isArray(query.resourceType) && query.resourceType.length !== 1) {
      throw new Error('searchIds takes one resource type');
    }
    const p = new SqlParams();
    const type = Array.isArray(query.resourceType) ? query.resourceType[0] : query.resourceType;
    const fromIndex = query.filters.length === 1 ? indexIdsSql(query.filters[0], type, p) : undefined;
    const sql = fromIndex
      ? `SELECT DISTINCT q.id FROM (${fromIndex}) q ORDER BY q.id LIMIT ${p.add(query.count, 'int')}`
      : `SELECT r.id FROM resource_current r WHERE ${this.whereOf(query, p).join(' AND ')} ORDER BY r.id LIMIT ${p.add(query.count, 'int')}`;
    const rows = await this.q.query<{ id: string }>(sql, p.values);
    return rows.map((r) => r.id);
  }

  async searchProjected(query: SearchQuery, code: string, keys?: string[]): Promise<unknown[] | undefined> {
    if (Array.isArray(query.resourceType) && query.resourceType.length !== 1) {
      throw new Error('searchProjected takes one resource type');
    }
    const ready = await this.q.query<{ ready: boolean }>('SELECT ready FROM projection_state WHERE code = $1', [code], { prepare: true });
    if (ready[0]?.ready !== true) {
      return undefined;
    }
    const p = new SqlParams();
    const type = Array.isArray(query.resourceType) ? query.resourceType[0] : query.resourceType;
    const where = [`pr.code = ${p.add(code)}`, `pr.resource_type = ${p.add(type)}`];
    if (keys) {
      where.push(keys.length === 1 ? `pr.key = ${p.add(keys[0])}` : `pr.key = ANY(${p.add(keys, 'text[]')})`);
    }
    if (query.filters.length > 0) {
      // The matches of the filters, found as searchIds finds them.
      const fromIndex = query.filters.length === 1 ? indexIdsSql(query.filters[0], type, p) : undefined;
      where.push(
        fromIndex
          ? `pr.id IN (SELECT q.id FROM (${fromIndex}) q)`
          : `pr.id IN (SELECT r.id FROM resource_current r WHERE ${this.whereOf(query, p).join(' AND ')})`,
      );
    }
    // Projection rows exist for current, undeleted resources only (no join with resource_current).
    // All of them as one JSON array of [id, value] built by the database: one string to move out
    // of it instead of a row per value (ids need no escaping: [A-Za-z0-9\-.]). Unordered, and a
    // resource with values under several of the keys comes once per key: ordering 200,000 values
    // by id in the database (DISTINCT ON, ORDER BY) sorted 50 MB on disk, twice, where sorting the
    // parsed pairs here takes a fraction of that (and often finds them in order already).
    const rows = await this.q.query<{ list: string | null }>(
      `SELECT '[' || string_agg('["' || pr.id || '",' || pr.data || ']', ',') || ']' AS list FROM resource_projection pr WHERE ${where.join(' AND ')}`,
      p.values,
    );
    return inIdOrder(JSON.parse(rows[0]?.list ?? '[]') as [string, unknown][], query.count);
  }

  /**
   * One page of `resourceType` as it was at `at`: current rows unchanged since then are served as
   * they are (filtered through the index); for rows changed (or deleted) later, the newest version
   * at `at` comes from history and is filtered in memory (see inSnapshot).
   */
  async snapshot(query: SnapshotQuery): Promise<SnapshotPage> {
    const p = new SqlParams();
    const where = snapshotWhere(query, p);
    // `changed`: written after the snapshot instant (compared in SQL: no timestamp parsing here);
    // `matches`: the filters on the current index (for unchanged rows, the snapshot's answer).
    const matches = matchesSql(query, p);
    const rows = await this.q.query<{ id: string; changed: boolean; matches: boolean; content: string | null }>(
      `SELECT r.id, r.last_updated > ${p.add(query.at, 'timestamptz')} AS changed, ${matches} AS matches, r.content FROM resource_current r
       WHERE ${where.join(' AND ')} ORDER BY r.id LIMIT ${p.add(query.count + 1, 'int')}`,
      p.values,
    );
    const page = rows.slice(0, query.count);
    const past = await this.pastVersions(query, page.filter((r) => r.changed).map((r) => r.id));
    const json: string[] = [];
    for (const r of page) {
      if (!r.changed) {
        json.push(r.content as string);
      } else {
        const v = past.get(r.id);
        if (v && this.inSnapshot(query, v, r.matches)) {
          json.push(v.content);
        }
      }
    }
    return { json, nextAfterId: rows.length > query.count ? page[page.length - 1].id : undefined };
  }

  /**
   * Whether the version of a resource at the snapshot instant matches the snapshot's filters: the
   * index holds only current values, so the old version's values are extracted and matched in
   * memory; what cannot be decided there (dates, chains, ...) follows the current index.
   */
  private inSnapshot(query: SnapshotQuery, v: { content: string; last_updated: Date | string }, currentMatch: boolean): boolean {
    if (query.since !== undefined && iso(v.last_updated) <= query.since) {
      return false;
    }
    if (query.filters.length === 0) {
      return true;
    }
    const content = v.content;
    if (!this.snapshotIndexer) {
      return currentMatch;
    }
    const resource = JSON.parse(content) as { resourceType: string; id?: string };
    return matchAll(query.filters, resource, this.snapshotIndexer(resource)) ?? currentMatch;
  }

  /** The newest live version at `query.at` of each of `ids` (absent: none then, or deleted). */
  private async pastVersions(query: SnapshotQuery, ids: string[]): Promise<Map<string, { content: string; last_updated: Date | string }>> {
    const past = new Map<string, { content: string; last_updated: Date | string }>();
    if (ids.length === 0) {
      return past;
    }
    const versions = await this.q.query<{ id: string; deleted: boolean; content: string | null; last_updated: Date | string }>(
      `SELECT DISTINCT ON (id) id, deleted, content, last_updated FROM resource_version
       WHERE resource_type = $1 AND id = ANY($2::text[]) AND last_updated <= $3::timestamptz ORDER BY id, version_id DESC`,
      [query.resourceType, ids, query.at],
    );
    for (const v of versions) {
      if (!v.deleted && v.content !== null) {
        past.set(v.id, { content: v.content, last_updated: v.last_updated });
      }
    }
    return past;
  }

  async snapshotCount(query: SnapshotQuery): Promise<{ count: number; nextAfterId?: string }> {
    const p = new SqlParams();
    const where = snapshotWhere(query, p);
    const matches = matchesSql(query, p);
    const rows = await this.q.query<{ id: string; changed: boolean; matches: boolean }>(
      `SELECT r.id, r.last_updated > ${p.add(query.at, 'timestamptz')} AS changed, ${matches} AS matches FROM resource_current r
       WHERE ${where.join(' AND ')} ORDER BY r.id LIMIT ${p.add(query.count + 1, 'int')}`,
      p.values,
    );
    const page = rows.slice(0, query.count);
    const changed = page.filter((r) => r.changed);
    let count = page.length - changed.length;
    const past = await this.pastVersions(query, changed.map((r) => r.id));
    for (const r of changed) {
      const v = past.get(r.id);
      if (v && this.inSnapshot(query, v, r.matches)) {
        count++;
      }
    }
    return { count, nextAfterId: rows.length > query.count ? page[page.length - 1].id : undefined };
  }

  /**
   * The query plan PostgreSQL chooses for a search page (diagnostics and plan tests). `generic`:
   * the plan made without the parameter values, which PostgreSQL may reuse for a prepared
   * statement (as it would for an anchored search, search-sql.ts anchorSql).
   */
  async explain(query: SearchQuery, options: { generic?: boolean } = {}): Promise<string> {
    const p = new SqlParams();
    const { sql } = this.pageSql(query, this.whereOf(query, p), p);
    const plan = (rows: { 'QUERY PLAN': string }[]): string => rows.map((r) => r['QUERY PLAN']).join('\n');
    if (!options.generic) {
      return plan(await this.q.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${sql}`, p.values));
    }
    if (!('transaction' in this.q)) {
      throw new Error('a generic plan is explained outside transactions');
    }
    // PostgreSQL 15 has no EXPLAIN (GENERIC_PLAN): prepare the statement on one connection and
    // explain its execution with custom plans turned off.
    return (this.q as Driver).transaction(async (q) => {
      await q.exec('SET LOCAL plan_cache_mode = force_generic_plan');
      // PREPARE outlives a rollback: a name of its own keeps a failed call from blocking the next.
      const name = `continuum_explain_${++explained}`;
      await q.exec(`PREPARE ${name} AS ${sql}`);
      // EXECUTE takes no bound parameters: its arguments are literals (their types come from PREPARE).
      const rows = await q.query<{ 'QUERY PLAN': string }>(`EXPLAIN EXECUTE ${name}(${p.values.map(sqlLiteral).join(', ')})`);
      await q.exec(`DEALLOCATE ${name}`);
      return plan(rows);
    });
  }

  async includes(query: IncludeQuery): Promise<StoredVersion[]> {
    if (query.from.length === 0) {
      return [];
    }
    const p = new SqlParams();
    const types = p.add(query.from.map((f) => f.resourceType), 'text[]');
    const ids = p.add(query.from.map((f) => f.id), 'text[]');
    const conds: string[] = [`x.resource_type = ${p.add(query.sourceType)}`];
    if (query.code) {
      conds.push(`x.code = ${p.add(query.code)}`);
    }
    if (query.targetType) {
      conds.push(`x.target_type = ${p.add(query.targetType)}`);
    }
    const join =
      query.direction === 'include'
        ? `JOIN unnest(${types}, ${ids}) AS f(resource_type, id) ON f.resource_type = x.resource_type AND f.id = x.id
           JOIN resource_current r ON r.resource_type = x.target_type AND r.id = x.target_id`
        : `JOIN unnest(${types}, ${ids}) AS f(resource_type, id) ON f.resource_type = x.target_type AND f.id = x.target_id
           JOIN resource_current r ON r.resource_type = x.resource_type AND r.id = x.id`;
    const rows = await this.q.query<CurrentRow & { resource_type: string; id: string }>(
      `SELECT DISTINCT r.resource_type, r.id, r.version_id, r.last_updated, r.deleted, r.content
       FROM search_reference x ${join}
       WHERE ${conds.join(' AND ')} AND NOT r.deleted
       ORDER BY r.resource_type, r.id LIMIT ${p.add(query.limit, 'int')}`,
      p.values,
    );
    return rows.map((row) => fromRow(row.resource_type, row.id, row));
  }
}

/**
 * The rows of resource_current a snapshot at `query.at` looks at: live ones, and deleted ones that
 * were deleted after the instant (their earlier version belongs to the snapshot).
 */
function snapshotWhere(query: SnapshotQuery, p: SqlParams): string[] {
  const at = p.add(query.at, 'timestamptz');
  const where = [`r.resource_type = ${p.add(query.resourceType)}`, `(NOT r.deleted OR r.last_updated > ${at})`];
  if (query.afterId !== undefined) {
    where.push(`r.id > ${p.add(query.afterId)}`);
  }
  // Bulk Data `_since`: changed after the instant. Rows changed after the snapshot are judged on
  // their older version (in JavaScript), so neither this nor the filters may drop them here.
  if (query.since !== undefined) {
    where.push(`(r.last_updated > ${p.add(query.since, 'timestamptz')} OR r.last_updated > ${at})`);
  }
  if (query.filters.length > 0) {
    where.push(`(r.last_updated > ${at} OR (${query.filters.map((f) => filterSql(f, 'r', p)).join(' AND ')}))`);
  }
  return where;
}

/** For rows changed after the snapshot: whether they match the filters now (the fallback of inSnapshot). */
function matchesSql(query: SnapshotQuery, p: SqlParams): string {
  if (query.filters.length === 0) {
    return 'true';
  }
  return `CASE WHEN r.last_updated > ${p.add(query.at, 'timestamptz')} THEN (${query.filters.map((f) => filterSql(f, 'r', p)).join(' AND ')}) ELSE true END`;
}

/** Sort values as they go into a cursor (JSON): instants as ISO text. */
function cursorValue(v: unknown): unknown {
  return v instanceof Date ? v.toISOString() : v;
}

/** The values of [id, value] pairs in id order, each id once (the first pair of it), at most `count`. */
export function inIdOrder(pairs: [string, unknown][], count: number): unknown[] {
  let sorted = true;
  for (let i = 1; i < pairs.length && sorted; i++) {
    sorted = pairs[i - 1][0] < pairs[i][0];
  }
  if (!sorted) {
    pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  }
  const out: unknown[] = [];
  for (let i = 0; i < pairs.length && out.length < count; i++) {
    if (i === 0 || pairs[i][0] !== pairs[i - 1][0]) {
      out.push(pairs[i][1]);
    }
  }
  return out;
}

/** Keys per prefetch() query. */
const PREFETCH_CHUNK = 1000;

/**
 * Queued creates are sent in the background once this many wait, when the driver runs statements
 * off this thread (Driver.pipelined): the database writes them while this thread validates and
 * indexes the next ones.
 */
export const STREAM_ROWS = 200;

/**
 * A transaction's first group is smaller, and each next one twice the size up to STREAM_ROWS, so
 * the database starts on a transaction's rows early: `continuum import` left the database idle
 * for its first ~0.4 s while this thread validated and indexed the first 200 resources (cold
 * code, validators compiled on first use).
 */
export const FIRST_STREAM_ROWS = 25;

/** The 409 of a create whose id another write took first. */
const alreadyExists = (c: { resourceType: string; id: string }): Error => conflict(`${c.resourceType}/${c.id} already exists`);

interface PendingCreate {
  index?: ExtractedRows;
  resourceType: string;
  id: string;
  lastUpdated: string;
  json: string;
  method: string;
}

/**
 * Inserts creates and their index rows in one call (continuum_create); resolves with the keys
 * (`Type/id`) of those written. A create whose id already existed is skipped, its index rows too.
 */
async function insertCreates(q: Queryable, rows: PendingCreate[]): Promise<Set<string>> {
  const batch = new IndexBatch();
  for (const r of rows) {
    if (r.index) {
      batch.add(r.resourceType, r.id, r.index);
    }
  }
  const inserted = await q.query<{ id: string }>(
    'SELECT continuum_create($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::jsonb) AS id',
    [
      new TextArrayParam(rows.map((r) => r.resourceType)),
      new TextArrayParam(rows.map((r) => r.id)),
      rows.map((r) => r.lastUpdated),
      new TextArrayParam(rows.map((r) => r.json)),
      new TextArrayParam(rows.map((r) => r.method)),
      batch.json(),
    ],
    { prepare: true },
  );
  return new Set(inserted.map((r) => r.id));
}

class PgWriter extends PgReader implements StoreWriter {
  readonly store: Store;
  private pending: PendingCreate[] = [];
  /** Resources this transaction wrote (for the read cache). */
  readonly touched = new Set<string>();
  /**
   * Current rows locked by prefetch() and not written since (null: the resource does not exist).
   * A write of a key removes it: from then on reads and locks ask the database again.
   */
  private readonly locked = new Map<string, CurrentRow | null>();

  /**
   * Creates sent in the background (see STREAM_ROWS) and not yet known written, in the order sent.
   * Each group is sent as soon as it is full, not when the group before it has been answered: the
   * answer is a message this thread reads only when it next returns to its event loop, which a
   * transaction Bundle's entries (all promises, no I/O) may not do for a whole Bundle, so a chain
   * of groups waiting for answers kept the database idle while this thread worked. The database
   * runs a transaction's statements one at a time in the order they arrive. Every other statement
   * of this writer waits for these first (`ordered` below), so it sees those rows and the order of
   * statements is the order of calls.
   */
  private streaming: Promise<void>[] = [];
  /** Queued creates at which the next group is sent (FIRST_STREAM_ROWS, doubling to STREAM_ROWS). */
  private sendAt = FIRST_STREAM_ROWS;
  /** A create the background writes found already existing: the transaction fails with 409. */
  private clash?: PendingCreate;
  /** The transaction's connection without the wait (background writes go through it). */
  private readonly raw: Queryable;

  constructor(
    q: Queryable,
    kind: Store['kind'],
    private readonly indexer?: Indexer,
    private readonly stream = false,
  ) {
    // `this` is not available before super(): the gate is filled in just after it.
    const gate = { wait: (): Promise<void> => Promise.resolve() };
    const raw = q;
    const ordered: Queryable = {
      query: async (sql, params, options) => {
        await gate.wait();
        return raw.query(sql, params, options);
      },
      exec: async (sql) => {
        await gate.wait();
        return raw.exec(sql);
      },
    };
    super(stream ? ordered : raw, indexer);
    gate.wait = () => this.settled();
    this.raw = raw;
    q = this.q; // the stores joined below wait for background writes too
    // Nested transactions (entries of a transaction Bundle) join this one.
    const joined: Store = {
      kind,
      auth: new PgAuthStore(q),
      audit: new PgAuditStore(q),
      exportJobs: new PgExportJobStore(q),
      jobs: new PgJobStore(q),
      snapshot: (sq) => this.snapshot(sq),
      snapshotCount: (sq) => this.snapshotCount(sq),
      read: (t, i) => this.read(t, i),
      vread: (t, i, v) => this.vread(t, i, v),
      history: (h) => this.history(h),
      search: (q) => this.search(q),
      searchIds: (q) => this.searchIds(q),
      readMany: (t, ids) => this.readMany(t, ids),
      searchProjected: (q, code, keys) => this.searchProjected(q, code, keys),
      includes: (q) => this.includes(q),
      transaction: (fn) => fn(this),
      reindex: () => Promise.reject(new Error('reindex runs outside transactions')),
      prepareProjections: () => Promise.reject(new Error('projections are prepared outside transactions')),
      analyze: () => Promise.reject(new Error('analyze runs outside transactions')),
      close: async () => undefined,
    };
    this.store = joined;
  }

  /**
   * Creates are queued and written together (one statement for many rows) just before the next
   * read or other write in this transaction, or at commit. A transaction Bundle of 300 creates is
   * then one round trip instead of 300.
   */
  async create(resource: ResourceLike, options: WriteOptions = {}): Promise<StoredVersion> {
    const id = resource.id as string;
    const { json, lastUpdated, stamped } = stamp(resource, 1);
    const method = options.method ?? 'POST';
    const index = this.indexer?.(stamped);
    const key = cacheKey(resource.resourceType, id);
    this.touched.add(key);
    this.locked.delete(key);
    this.pending.push({ resourceType: resource.resourceType, id, lastUpdated, json, method, index });
    if (this.stream && this.pending.length >= this.sendAt) {
      this.sendPending();
      this.sendAt = Math.min(this.sendAt * 2, STREAM_ROWS);
    }
    return { resourceType: resource.resourceType, id, versionId: '1', lastUpdated, deleted: false, method, json };
  }

  /** Writes the queued creates. A create whose id already exists fails the transaction (409). */
  async flush(): Promise<void> {
    await this.flushWith(this.q);
  }

  /** flush() through another connection: the store's own, when no transaction was needed. */
  async flushWith(q: Queryable): Promise<void> {
    await this.settled();
    const clash = await this.writePending(q);
    if (clash) {
      throw alreadyExists(clash);
    }
  }

  /** flush() outside a transaction, through the store's group commit (create-groups.ts). */
  async flushGrouped(groups: CreateGroups<PendingCreate>): Promise<void> {
    await this.settled();
    const rows = this.pending;
    this.pending = [];
    const clash = rows.length === 0 ? undefined : await groups.write(rows);
    if (clash) {
      throw alreadyExists(clash);
    }
  }

  /** Writes the queued creates; false when one of them already existed (and was not written). */
  private async flushInserted(): Promise<boolean> {
    await this.settled();
    return (await this.writePending(this.raw)) === undefined;
  }

  /** Sends the queued creates now; the database writes them after those already sent. */
  private sendPending(): void {
    const rows = this.pending;
    this.pending = [];
    const write = this.writeRows(this.raw, rows).then((clash) => {
      this.clash ??= clash;
    });
    write.catch(() => undefined); // awaited (and thrown) by settled(); never "unhandled"
    this.streaming.push(write);
  }

  /**
   * Waits until every background write sent so far is done; throws its error, or a 409 when one
   * of its creates already existed.
   */
  private async settled(): Promise<void> {
    // In order: the first failure is the one reported (later ones failed because of it, and stay
    // listed for quiesce()).
    while (this.streaming.length > 0) {
      const write = this.streaming[0];
      try {
        await write;
      } finally {
        if (this.streaming[0] === write) {
          void this.streaming.shift(); // settled: awaited just above
        }
      }
    }
    if (this.clash) {
      throw alreadyExists(this.clash);
    }
  }

  /** Waits for background writes without throwing (before a rollback). */
  async quiesce(): Promise<void> {
    while (this.streaming.length > 0) {
      const sent = this.streaming;
      this.streaming = [];
      await Promise.allSettled(sent);
    }
  }

  /**
   * Inserts the queued creates and their index rows in one call (continuum_create); returns the
   * first create whose id already existed, if any (neither it nor its index rows were written: the
   * caller fails the transaction or writes it as an update).
   */
  private async writePending(q: Queryable): Promise<PendingCreate | undefined> {
    const rows = this.pending;
    this.pending = [];
    return this.writeRows(q, rows);
  }

  private async writeRows(q: Queryable, rows: PendingCreate[]): Promise<PendingCreate | undefined> {
    if (rows.length === 0) {
      return undefined;
    }
    const written = await insertCreates(q, rows);
    return rows.find((r) => !written.has(keyOf(r)));
  }

  /**
   * Locks the current rows of `keys` in one query, so that the writes of a transaction Bundle that
   * follow (and the reads the layers above make before each write) need no query of their own;
   * the creates among them are queued and written together at the end.
   */
  async prefetch(keys: { resourceType: string; id: string }[]): Promise<void> {
    const todo = keys.filter((k) => !this.locked.has(cacheKey(k.resourceType, k.id)) && !this.touched.has(cacheKey(k.resourceType, k.id)));
    if (todo.length === 0) {
      return;
    }
    await this.flush();
    for (let i = 0; i < todo.length; i += PREFETCH_CHUNK) {
      const chunk = todo.slice(i, i + PREFETCH_CHUNK);
      const rows = await this.q.query<CurrentRow & { resource_type: string; id: string }>(
        `SELECT resource_type, id, version_id, last_updated, deleted, content FROM resource_current
         WHERE (resource_type, id) IN (SELECT * FROM unnest($1::text[], $2::text[])) ORDER BY resource_type, id FOR UPDATE`,
        [chunk.map((k) => k.resourceType), chunk.map((k) => k.id)],
      );
      for (const k of chunk) {
        this.locked.set(cacheKey(k.resourceType, k.id), null);
      }
      for (const r of rows) {
        this.locked.set(cacheKey(r.resource_type, r.id), { version_id: r.version_id, last_updated: r.last_updated, deleted: r.deleted, content: r.content });
      }
    }
  }

  override async read(resourceType: string, id: string): Promise<StoredVersion | undefined> {
    const row = this.locked.get(cacheKey(resourceType, id));
    if (row !== undefined) {
      return row === null ? undefined : fromRow(resourceType, id, row);
    }
    await this.flush();
    return super.read(resourceType, id);
  }

  override async vread(resourceType: string, id: string, versionId: string): Promise<StoredVersion | undefined> {
    await this.flush();
    return super.vread(resourceType, id, versionId);
  }

  override async history(query: HistoryQuery): Promise<HistoryPage> {
    await this.flush();
    return super.history(query);
  }

  override async search(query: SearchQuery): Promise<SearchPage> {
    await this.flush();
    return super.search(query);
  }

  override async searchIds(query: SearchQuery): Promise<string[]> {
    await this.flush();
    return super.searchIds(query);
  }

  override async searchProjected(query: SearchQuery, code: string, keys?: string[]): Promise<unknown[] | undefined> {
    await this.flush();
    return super.searchProjected(query, code, keys);
  }

  override async readMany(resourceType: string, ids: string[]): Promise<string[]> {
    await this.flush();
    return super.readMany(resourceType, ids);
  }

  override async includes(query: IncludeQuery): Promise<StoredVersion[]> {
    await this.flush();
    return super.includes(query);
  }

  async update(
    resource: ResourceLike,
    options: WriteOptions = {},
  ): Promise<{ version: StoredVersion; created: boolean }> {
    const id = resource.id as string;
    const key = cacheKey(resource.resourceType, id);
    // Known absent from prefetch() (and locked against nothing): the create is queued with the
    // others; should another writer create the id first, the commit fails with a conflict.
    const knownAbsent = this.locked.get(key) === null;
    let current = await this.lockCurrent(resource.resourceType, id);
    this.touched.add(key);
    if (!current) {
      if (options.ifMatch !== undefined) {
        throw preconditionFailed(`${resource.resourceType}/${id} does not exist, so If-Match cannot match`);
      }
      const version = await this.create(resource, { method: options.method ?? 'PUT' });
      if (knownAbsent) {
        return { version, created: true };
      }
      const inserted = await this.flushInserted();
      if (inserted) {
        return { version, created: true };
      }
      // Another writer created it between our lock attempt and our insert (the insert waited for
      // its commit): carry on as an ordinary update of what it wrote.
      current = await this.lockCurrent(resource.resourceType, id);
      if (!current) {
        throw conflict(`${resource.resourceType}/${id} changed concurrently; retry the update`);
      }
    }
    checkIfMatch(resource.resourceType, id, current.version_id, options.ifMatch);
    const versionId = current.version_id + 1;
    const { json, lastUpdated, stamped } = stamp(resource, versionId);
    const batch = new IndexBatch();
    if (this.indexer) {
      batch.add(resource.resourceType, id, this.indexer(stamped));
    }
    await this.writeVersion(resource.resourceType, id, versionId, lastUpdated, false, options.method ?? 'PUT', json, batch.json());
    const method = options.method ?? 'PUT';
    return {
      version: { resourceType: resource.resourceType, id, versionId: String(versionId), lastUpdated, deleted: false, method, json },
      created: false,
    };
  }

  async delete(resourceType: string, id: string, options: WriteOptions = {}): Promise<StoredVersion | undefined> {
    const current = await this.lockCurrent(resourceType, id);
    this.touched.add(cacheKey(resourceType, id));
    if (!current || current.deleted) {
      if (options.ifMatch !== undefined && current) {
        checkIfMatch(resourceType, id, current.version_id, options.ifMatch);
      }
      return undefined;
    }
    checkIfMatch(resourceType, id, current.version_id, options.ifMatch);
    const versionId = current.version_id + 1;
    const lastUpdated = new Date().toISOString();
    await this.writeVersion(resourceType, id, versionId, lastUpdated, true, 'DELETE', null, null);
    return { resourceType, id, versionId: String(versionId), lastUpdated, deleted: true, method: 'DELETE' };
  }

  /** Reads the current row and locks it until the transaction ends (serialises concurrent writers). */
  private async lockCurrent(resourceType: string, id: string): Promise<CurrentRow | undefined> {
    const key = cacheKey(resourceType, id);
    const known = this.locked.get(key);
    if (known !== undefined) {
      // Locked by prefetch(); the write that follows changes it, so it is not served again.
      this.locked.delete(key);
      return known ?? undefined;
    }
    await this.flush();
    const rows = await this.q.query<CurrentRow>(
      `SELECT version_id, last_updated, deleted, content FROM resource_current
       WHERE resource_type = $1 AND id = $2 FOR UPDATE`,
      [resourceType, id],
      { prepare: true },
    );
    return rows[0];
  }

  /** Writes a new version of a locked resource and replaces its index rows (continuum_write_version). */
  private async writeVersion(
    resourceType: string,
    id: string,
    versionId: number,
    lastUpdated: string,
    deleted: boolean,
    method: string,
    json: string | null,
    index: string | null,
  ): Promise<void> {
    await this.q.query(
      'SELECT continuum_write_version($1, $2, $3, $4::timestamptz, $5, $6, $7, $8::jsonb)',
      [resourceType, id, versionId, lastUpdated, deleted, method, json, index],
      { prepare: true },
    );
  }
}

function checkIfMatch(resourceType: string, id: string, current: number, ifMatch: string | undefined): void {
  if (ifMatch !== undefined && ifMatch !== String(current)) {
    throw preconditionFailed(
      `If-Match expected version ${ifMatch} of ${resourceType}/${id}, but the current version is ${current}`,
    );
  }
}

/** Sets meta.versionId and meta.lastUpdated and serialises the resource as it will be served. */
function stamp(resource: ResourceLike, versionId: number): { json: string; lastUpdated: string; stamped: ResourceLike } {
  const lastUpdated = new Date().toISOString();
  const { resourceType, id, meta, ...rest } = resource;
  // resourceType and id first, then meta: the order people expect to read.
  const stamped = {
    resourceType,
    id,
    meta: { ...(meta ?? {}), versionId: String(versionId), lastUpdated },
    ...rest,
  };
  return { json: JSON.stringify(stamped), lastUpdated, stamped };
}

/** The PostgreSQL store over either driver. */
export class PgStore extends PgReader implements Store {
  readonly kind: Store['kind'];
  readonly auth: AuthStore;
  readonly audit: AuditStore;
  readonly exportJobs: ExportJobStore;
  readonly jobs: JobStore;

  /** Current versions, for the embedded store only (see read-cache.ts). */
  private readonly cache?: ReadCache;
  /** Group commit of plain creates, for the embedded store only (see create-groups.ts). */
  private readonly createGroups?: CreateGroups<PendingCreate>;

  constructor(
    private readonly driver: Driver,
    private readonly indexer?: Indexer,
  ) {
    super(driver, indexer);
    this.kind = driver.kind;
    this.auth = new PgAuthStore(driver);
    this.audit = new PgAuditStore(driver);
    this.exportJobs = new PgExportJobStore(driver);
    this.jobs = new PgJobStore(driver);
    if (driver.kind === 'pglite') {
      this.cache = new ReadCache();
      // One statement at a time there: concurrent creates lose nothing by sharing one. (A
      // server's pool runs them side by side on several connections.)
      this.createGroups = new CreateGroups<PendingCreate>((rows) => insertCreates(driver, rows), STREAM_ROWS);
    }
  }

  override async read(resourceType: string, id: string): Promise<StoredVersion | undefined> {
    const cache = this.cache;
    if (!cache) {
      return super.read(resourceType, id);
    }
    const key = cacheKey(resourceType, id);
    const hit = cache.get(key);
    if (hit) {
      return hit;
    }
    const epoch = cache.epoch;
    const version = await super.read(resourceType, id);
    if (version) {
      cache.set(key, version, epoch);
    }
    return version;
  }

  async transaction<T>(fn: (writer: StoreWriter) => Promise<T>): Promise<T> {
    const tx = new LazyTransaction(this.driver);
    const writer = new PgWriter(tx.queryable, this.kind, this.indexer, this.driver.pipelined === true);
    try {
      const result = await fn(writer);
      if (tx.started) {
        await writer.flush();
      } else if (this.createGroups) {
        // Nothing was sent yet: the queued creates are one statement, atomic without BEGIN, and
        // may share it with other requests' creates.
        await writer.flushGrouped(this.createGroups);
      } else {
        // Nothing was sent yet: the queued creates are one statement, atomic without BEGIN.
        await writer.flushWith(this.driver);
      }
      // Before COMMIT too: a cached version must not outlive the write by even a tick.
      this.cache?.invalidate(writer.touched);
      await tx.end(true);
      return result;
    } catch (err) {
      await writer.quiesce();
      await tx.end(false, err);
      throw err;
    } finally {
      if (writer.touched.size > 0) {
        this.cache?.invalidate(writer.touched);
        this.countWrites(writer.touched.size);
      }
    }
  }

  /**
   * PGlite runs no autovacuum, so the embedded store refreshes statistics itself after every
   * 20,000 written resources (a PostgreSQL server's autovacuum does this there).
   */
  private writesSinceAnalyze = 0;
  private countWrites(n: number): void {
    if (this.kind !== 'pglite') {
      return;
    }
    this.writesSinceAnalyze += n;
    if (this.writesSinceAnalyze >= 20_000) {
      this.writesSinceAnalyze = 0;
      this.analyze().catch(() => undefined); // statistics are an optimisation; a failure changes no data
    }
  }

  async prepareProjections(specs: readonly ProjectionSpec[], options: ReindexOptions = {}): Promise<string[]> {
    // Resources written from now on get their rows from this process's indexer (which has the
    // projections): only those last written up to now need the backfill.
    const writtenBy = new Date().toISOString();
    const pending: ProjectionSpec[] = [];
    for (const spec of specs) {
      await this.driver.query('INSERT INTO projection_state (code, types) VALUES ($1, $2::text[]) ON CONFLICT (code) DO NOTHING', [spec.code, [...spec.types]]);
      const state = await this.driver.query<{ ready: boolean }>('SELECT ready FROM projection_state WHERE code = $1', [spec.code]);
      if (state[0]?.ready !== true) {
        pending.push(spec);
      }
    }
    // Each type once, however many projections it has.
    for (const type of new Set(pending.flatMap((s) => s.types))) {
      await this.reindex({ ...options, resourceType: type, writtenBy });
      if (options.signal?.aborted) {
        return [];
      }
    }
    for (const spec of pending) {
      await this.driver.query('UPDATE projection_state SET ready = true, updated_at = now() WHERE code = $1', [spec.code]);
    }
    return pending.map((s) => s.code);
  }

  async reindex(options: ReindexOptions): Promise<number> {
    const indexer = this.indexer;
    if (!indexer) {
      return 0;
    }
    const size = options.batchSize ?? 500;
    const base: unknown[] = [];
    let typeFilter = '';
    if (options.resourceType) {
      base.push(options.resourceType);
      typeFilter += ` AND resource_type = $${base.length}`;
    }
    if (options.writtenBy) {
      base.push(options.writtenBy);
      typeFilter += ` AND last_updated <= $${base.length}::timestamptz`;
    }
    const totalRows = await this.driver.query<{ n: string | number }>(`SELECT count(*) AS n FROM resource_current WHERE NOT deleted ${typeFilter}`, base);
    const total = Number(totalRows[0].n);
    let done = 0;
    let after: [string, string] | undefined;
    for (;;) {
      const params: unknown[] = [...base];
      let keyset = '';
      if (after) {
        params.push(after[0], after[1]);
        keyset = `AND (resource_type, id) > ($${params.length - 1}, $${params.length})`;
      }
      params.push(size);
      // Read and rewrite under row locks, so a concurrent update cannot be indexed with stale content.
      const rows = await this.driver.transaction(async (q) => {
        const found = await q.query<{ resource_type: string; id: string; content: string }>(
          `SELECT resource_type, id, content FROM resource_current WHERE NOT deleted ${typeFilter} ${keyset}
           ORDER BY resource_type, id LIMIT $${params.length} FOR UPDATE`,
          params,
        );
        const batch = new IndexBatch();
        for (const r of found) {
          batch.add(r.resource_type, r.id, indexer(JSON.parse(r.content) as ResourceLike));
        }
        if (found.length > 0) {
          await replaceIndexRows(q, found.map((r) => ({ resourceType: r.resource_type, id: r.id })), batch);
        }
        return found;
      });
      if (rows.length === 0) {
        if (done > 0) {
          await this.analyze(); // the index was rewritten: refresh the planner's view of it
        }
        return done;
      }
      done += rows.length;
      options.onProgress?.(done, total);
      if (options.signal?.aborted) {
        return done;
      }
      const last = rows[rows.length - 1];
      after = [last.resource_type, last.id];
    }
  }

  async analyze(): Promise<void> {
    await this.driver.exec('ANALYZE');
  }

  close(): Promise<void> {
    return this.driver.close();
  }
}
