/**
 * The store as one caller may see it: every read, search, include, history page and write goes
 * through the caller's AccessPolicy. The FHIR core hands handlers this store instead of the raw
 * one, so no interaction, batch entry, operation or bot call can reach data around the policy.
 *
 * - read / vread: a resource the caller may not read is reported as absent (404, never 403, so
 *   that ids of other patients' resources are not confirmed).
 * - search: the policy's filter for each searched type is added in SQL, and into every chained and
 *   `_has` filter (a chain cannot probe resources the caller may not search).
 * - includes and history: each version is checked in memory; delete markers of a resource the
 *   caller could not see before are hidden.
 * - writes: the new content must be writable (`c` or `u`), and so must the version it replaces;
 *   a refused write is a 403 and the transaction it belongs to rolls back.
 */
import type { Library, Subscription } from '@medplum/fhirtypes';
import { isBotLibrary } from '../bots/definition';
import { forbidden, notFound } from '../errors';
import type { ResourceLike, SearchFilter, SearchQuery, Store, StoredVersion, StoreReader, StoreWriter, WriteOptions } from '../store/api';
import type { AccessPolicy } from './policy';
import type { ScopeLetter } from './scopes';

/** How many hidden versions one history page may skip over before it is returned short. */
const HISTORY_SCAN_BUDGET = 2000;

const parse = (v: StoredVersion): { resourceType: string; id?: string } => JSON.parse(v.json as string) as { resourceType: string; id?: string };

class GuardedReader implements StoreReader {
  constructor(
    protected readonly inner: StoreReader,
    protected readonly policy: AccessPolicy,
  ) {}

  /** Whether the caller may see this version (delete markers: whether it could see the resource). */
  protected async visible(v: StoredVersion, letter: ScopeLetter): Promise<boolean> {
    if (!this.policy.allows(letter, v.resourceType)) {
      return false;
    }
    if (this.policy.filter(v.resourceType, letter) === undefined) {
      return true; // an unrestricted grant: no need to look inside
    }
    if (v.json !== undefined) {
      return this.policy.permits(parse(v), letter);
    }
    const previous = Number(v.versionId) > 1 ? await this.inner.vread(v.resourceType, v.id, String(Number(v.versionId) - 1)) : undefined;
    return previous?.json !== undefined && this.policy.permits(parse(previous), letter);
  }

  async read(resourceType: string, id: string): Promise<StoredVersion | undefined> {
    const v = await this.inner.read(resourceType, id);
    return v && (await this.visible(v, 'r')) ? v : undefined;
  }

  async vread(resourceType: string, id: string, versionId: string): Promise<StoredVersion | undefined> {
    const v = await this.inner.vread(resourceType, id, versionId);
    return v && (await this.visible(v, 'r')) ? v : undefined;
  }

  /**
   * History through the policy. Versions are checked one by one, so a page is filled from as many
   * store pages as it takes (up to a scan budget), the `next` link is given only when a version
   * the caller may see follows, and no total is reported when the rules narrow the listing (the
   * store's count would include versions the caller may not see).
   */
  async history(query: Parameters<StoreReader['history']>[0]): ReturnType<StoreReader['history']> {
    // Instance history is a read of that resource; type and system history are searches.
    const letter: ScopeLetter = query.id !== undefined ? 'r' : 's';
    if (!this.restricts(query.resourceType, letter)) {
      return this.inner.history(query);
    }
    const kept: StoredVersion[] = [];
    let budget = HISTORY_SCAN_BUDGET + query.count;
    let cursor = query.cursor;
    let next: string | undefined;
    while (kept.length < query.count) {
      const page = await this.inner.history({ ...query, cursor, count: Math.min(query.count - kept.length, budget) });
      budget -= page.versions.length;
      for (const v of page.versions) {
        if (await this.visible(v, letter)) {
          kept.push(v);
        }
      }
      next = page.next;
      if (!next || budget <= 0) {
        break;
      }
      cursor = next;
    }
    if (next && budget > 0 && !(await this.anyVisibleFrom({ ...query, cursor: next }, letter, budget))) {
      next = undefined;
    }
    return { versions: kept, next, total: undefined };
  }

  /** Whether the policy narrows what `letter` shows of `type` (any type when undefined). */
  private restricts(type: string | undefined, letter: ScopeLetter): boolean {
    if (type !== undefined) {
      return this.policy.filter(type, letter) !== undefined;
    }
    return this.policy.perTypeFilter(undefined).filter !== undefined;
  }

  /** Whether some version from `query.cursor` on is visible (looking at up to `budget` versions). */
  private async anyVisibleFrom(query: Parameters<StoreReader['history']>[0], letter: ScopeLetter, budget: number): Promise<boolean> {
    let cursor = query.cursor;
    while (budget > 0) {
      const page = await this.inner.history({ ...query, cursor, count: Math.min(100, budget) });
      budget -= page.versions.length;
      for (const v of page.versions) {
        if (await this.visible(v, letter)) {
          return true;
        }
      }
      if (!page.next) {
        return false;
      }
      cursor = page.next;
    }
    return true; // not known within the budget: keep the link (a later page may be short)
  }

  async search(query: SearchQuery): ReturnType<StoreReader['search']> {
    return this.inner.search(this.restrict(query));
  }

  async searchIds(query: SearchQuery): Promise<string[]> {
    return this.inner.searchIds(this.restrict(query));
  }

  /** As read(): each resource the caller may not read is left out. */
  async readMany(resourceType: string, ids: string[]): Promise<string[]> {
    if (!this.policy.allows('r', resourceType)) {
      return [];
    }
    const found = await this.inner.readMany(resourceType, ids);
    if (this.policy.filter(resourceType, 'r') === undefined) {
      return found;
    }
    return found.filter((json) => this.policy.permits(JSON.parse(json) as { resourceType: string; id?: string }, 'r'));
  }

  /** As searchIds: the policy's filter is part of the query, so only permitted resources' rows come back. */
  async searchProjected(query: SearchQuery, code: string, keys?: string[]): Promise<unknown[] | undefined> {
    return this.inner.searchProjected(this.restrict(query), code, keys);
  }

  async includes(query: Parameters<StoreReader['includes']>[0]): Promise<StoredVersion[]> {
    const found = await this.inner.includes(query);
    const kept: StoredVersion[] = [];
    for (const v of found) {
      if ((await this.visible(v, 'r')) || (await this.visible(v, 's'))) {
        kept.push(v);
      }
    }
    return kept;
  }

  /** The query with the policy's filter added for every type it searches, chains into or reverse-chains from. */
  private restrict(query: SearchQuery): SearchQuery {
    const types = Array.isArray(query.resourceType) ? query.resourceType : [query.resourceType];
    const filters = query.filters.map((f) => this.restrictFilter(f));
    if (types.length === 1) {
      const own = this.policy.filter(types[0], 's');
      return { ...query, filters: own ? [...filters, own] : filters };
    }
    // A system search: each type with its own rule; types not listed are searched only if unrestricted.
    const perType = this.policy.perTypeFilter(types.length > 0 ? types : undefined);
    return { ...query, resourceType: perType.types, filters: perType.filter ? [...filters, perType.filter] : filters };
  }

  private restrictFilter(f: SearchFilter): SearchFilter {
    if (f.kind === 'chain' || f.kind === 'has') {
      const own = this.policy.filter(f.kind === 'chain' ? f.targetType : f.sourceType, 's');
      const inner = f.filters.map((g) => this.restrictFilter(g));
      return { ...f, filters: own ? [...inner, own] : inner };
    }
    if (f.kind === 'not') {
      return { ...f, filter: this.restrictFilter(f.filter) };
    }
    if (f.kind === 'or' || f.kind === 'and') {
      return { ...f, filters: f.filters.map((g) => this.restrictFilter(g)) };
    }
    return f; // a value filter on the resource itself
  }
}

class GuardedWriter extends GuardedReader implements StoreWriter {
  readonly store: Store;

  constructor(
    private readonly writer: StoreWriter,
    policy: AccessPolicy,
    outer: Store,
  ) {
    super(writer, policy);
    this.store = { ...outer, jobs: writer.store.jobs, read: (t, i) => this.read(t, i), vread: (t, i, v) => this.vread(t, i, v), history: (q) => this.history(q), search: (q) => this.search(q), searchIds: (q) => this.searchIds(q), readMany: (t, ids) => this.readMany(t, ids), searchProjected: (q, c, k) => this.searchProjected(q, c, k), includes: (q) => this.includes(q), transaction: (fn) => fn(this) };
  }

  private check(resource: { resourceType: string; id?: string }, letter: ScopeLetter, what: string): void {
    if (!this.policy.permitsWrite(resource, letter)) {
      throw forbidden(`The token's scopes do not allow ${what} ${resource.resourceType}${resource.id ? '/' + resource.id : ''}`);
    }
    if (resource.resourceType === 'Library' || resource.resourceType === 'Subscription') {
      this.checkAutomation(resource as unknown as Library | Subscription, what);
    }
  }

  /**
   * Bots act with their own scopes and Subscriptions send resources out, so neither may reach
   * further than the caller who writes them: a bot or a bot trigger needs a system/*.cruds token; a
   * notification Subscription needs unrestricted search access to the type it watches (no patient
   * compartment, no granular rule), or its notifications would carry what the caller cannot see.
   */
  private checkAutomation(resource: Library | Subscription, what: string): void {
    if (resource.resourceType === 'Library') {
      if (isBotLibrary(resource) && !this.policy.isSystemAdmin()) {
        throw forbidden(`${what} a bot (a logic-library with code) needs a system/*.cruds token: a bot acts with scopes of its own`);
      }
      return;
    }
    if (/^Library\//.test(resource.channel?.endpoint ?? '')) {
      if (!this.policy.isSystemAdmin()) {
        throw forbidden(`${what} a bot trigger needs a system/*.cruds token`);
      }
      return;
    }
    const [typePart, query = ''] = (resource.criteria ?? '').split('?');
    const type = /^[A-Za-z]+$/.test(typePart) ? typePart : undefined;
    if (type && (!this.policy.allows('s', type) || this.policy.filter(type, 's') !== undefined)) {
      throw forbidden(`${what} a Subscription on ${type} needs search access to every ${type} (its notifications would otherwise reach beyond the token's scopes)`);
    }
    // Criteria are matched by the server, outside the caller's rules: a chain or _has would let
    // notifications tell about resources of other types the caller may not see.
    if (!this.policy.isSystemAdmin() && [...new URLSearchParams(query).keys()].some((k) => k.startsWith('_has') || k.split(':')[0].includes('.') || /:[A-Z][A-Za-z]*\./.test(k))) {
      throw forbidden(`${what} a Subscription whose criteria use chained parameters or _has needs a system/*.cruds token`);
    }
  }

  /**
   * The version a write replaces: one the caller cannot read is reported as absent (404, as a read
   * would), so a refused write does not confirm that the id exists.
   */
  private async replaced(resourceType: string, id: string): Promise<StoredVersion | undefined> {
    const current = await this.writer.read(resourceType, id);
    if (current && !(await this.visible(current, 'r'))) {
      throw notFound(`${resourceType}/${id} is not known`);
    }
    return current;
  }

  async prefetch(keys: { resourceType: string; id: string }[]): Promise<void> {
    // Only a cache below the checks: every read and write still passes through them.
    await this.writer.prefetch?.(keys);
  }

  async create(resource: ResourceLike, options?: WriteOptions): Promise<StoredVersion> {
    this.check(resource, 'c', 'creating');
    return this.writer.create(resource, options);
  }

  async update(resource: ResourceLike, options?: WriteOptions): Promise<{ version: StoredVersion; created: boolean }> {
    const current = await this.replaced(resource.resourceType, resource.id as string);
    if (current?.json !== undefined) {
      // The version being replaced must be the caller's to change, and so must the new one.
      this.check(parse(current), 'u', 'updating');
      this.check(resource, 'u', 'updating');
    } else {
      this.check(resource, current ? 'u' : 'c', current ? 'updating' : 'creating');
    }
    return this.writer.update(resource, options);
  }

  async delete(resourceType: string, id: string, options?: WriteOptions): Promise<StoredVersion | undefined> {
    const current = await this.replaced(resourceType, id);
    if (current?.json !== undefined) {
      this.check(parse(current), 'd', 'deleting');
    } else if (!this.policy.allows('d', resourceType)) {
      throw forbidden(`The token's scopes do not allow deleting ${resourceType}`);
    }
    return this.writer.delete(resourceType, id, options);
  }
}

/** `store` seen through `policy`. */
export function guardStore(store: Store, policy: AccessPolicy): Store {
  const reader = new GuardedReader(store, policy);
  const guarded: Store = {
    kind: store.kind,
    auth: store.auth,
    audit: store.audit,
    exportJobs: store.exportJobs,
    jobs: store.jobs,
    snapshot: (q) => {
      // Exports are for callers who may see every resource of the type (backend services).
      if (!policy.allows('r', q.resourceType) || policy.filter(q.resourceType, 'r') !== undefined) {
        return Promise.reject(forbidden(`Exporting ${q.resourceType} needs access to all of its resources (system/${q.resourceType}.rs)`));
      }
      return store.snapshot(q);
    },
    snapshotCount: (q) => {
      if (!policy.allows('r', q.resourceType) || policy.filter(q.resourceType, 'r') !== undefined) {
        return Promise.reject(forbidden(`Exporting ${q.resourceType} needs access to all of its resources (system/${q.resourceType}.rs)`));
      }
      return store.snapshotCount(q);
    },
    read: (t, i) => reader.read(t, i),
    vread: (t, i, v) => reader.vread(t, i, v),
    history: (q) => reader.history(q),
    search: (q) => reader.search(q),
    searchIds: (q) => reader.searchIds(q),
    readMany: (t, ids) => reader.readMany(t, ids),
    searchProjected: (q, code, keys) => reader.searchProjected(q, code, keys),
    includes: (q) => reader.includes(q),
    transaction: (fn) => store.transaction((w) => fn(new GuardedWriter(w, policy, guarded))),
    reindex: (o) => {
      if (!policy.isSystemAdmin()) {
        return Promise.reject(forbidden('Reindexing needs a system/*.cruds (or system/*.*) token'));
      }
      return store.reindex(o);
    },
    prepareProjections: (specs, o) => {
      if (!policy.isSystemAdmin()) {
        return Promise.reject(forbidden('Backfilling projections needs a system/*.cruds (or system/*.*) token'));
      }
      return store.prepareProjections(specs, o);
    },
    analyze: () => store.analyze(),
    close: () => store.close(),
  };
  return guarded;
}
