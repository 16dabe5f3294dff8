/**
 * A Store whose writes pass through hooks: before each write (pre-commit bots, which may refuse
 * it) and after it, in the same transaction (post-commit jobs enqueued with the write, so they
 * commit or roll back together). Every write path (REST, batch and transaction entries,
 * conditional writes, $import, the CLI import, bots' own writes) goes through the store, so none
 * bypasses the triggers. Types nobody watches cost one Set lookup.
 */
import type { NewJob, ResourceLike, Store, StoredVersion, StoreWriter, WriteOptions } from '../store/api';
import type { Interaction } from './definition';

/** One write, as hooks see it. */
export interface WriteChange {
  interaction: Interaction;
  resourceType: string;
  id: string;
  /** The resource written (before: as proposed; after: as stored). For a delete: the last version. */
  resource: ResourceLike;
  /** The version replaced (updates and deletes). */
  previous?: ResourceLike;
  /** After the write: the version written. */
  version?: StoredVersion;
}

export interface WriteHooks {
  /** Whether any hook cares about writes of this type. */
  watches(resourceType: string): boolean;
  /** Whether `after` has anything to do for this type (post-commit work). */
  watchesAfter(resourceType: string): boolean;
  /**
   * Before the write; throws (a FhirError) to refuse it. `store` is the transaction's, one chain
   * level deeper (for the writes of pre-commit bots); `depth` is the level of this write.
   */
  before(change: WriteChange, store: Store, depth: number): Promise<void>;
  /** After the write, in its transaction: the jobs to enqueue with it. */
  after(change: WriteChange, store: Store, depth: number): Promise<NewJob[]>;
  /** After a commit that enqueued jobs or changed watched definitions. */
  committed(info: { jobs: number; types: Set<string> }): Promise<void>;
}

const parse = (v: StoredVersion | undefined): ResourceLike | undefined => (v?.json ? (JSON.parse(v.json) as ResourceLike) : undefined);

class HookedWriter implements StoreWriter {
  readonly store: Store;

  constructor(
    private readonly w: StoreWriter,
    private readonly hooks: WriteHooks,
    private readonly depth: number,
    private readonly state: { jobs: number; types: Set<string> },
  ) {
    this.store = { ...w.store, transaction: (fn) => fn(this) };
  }

  private deeper?: HookedWriter;
  /** The same transaction one chain level down (what a pre-commit bot writes through). */
  private nested(): Store {
    this.deeper ??= new HookedWriter(this.w, this.hooks, this.depth + 1, this.state);
    return this.deeper.store;
  }

  read(t: string, i: string): Promise<StoredVersion | undefined> {
    return this.w.read(t, i);
  }
  vread(t: string, i: string, v: string): Promise<StoredVersion | undefined> {
    return this.w.vread(t, i, v);
  }
  history(q: Parameters<StoreWriter['history']>[0]): ReturnType<StoreWriter['history']> {
    return this.w.history(q);
  }
  search(q: Parameters<StoreWriter['search']>[0]): ReturnType<StoreWriter['search']> {
    return this.w.search(q);
  }
  searchIds(q: Parameters<StoreWriter['searchIds']>[0]): ReturnType<StoreWriter['searchIds']> {
    return this.w.searchIds(q);
  }
  readMany(t: string, ids: string[]): Promise<string[]> {
    return this.w.readMany(t, ids);
  }
  searchProjected(q: Parameters<StoreWriter['searchProjected']>[0], code: string, keys?: string[]): Promise<unknown[] | undefined> {
    return this.w.searchProjected(q, code, keys);
  }
  includes(q: Parameters<StoreWriter['includes']>[0]): ReturnType<StoreWriter['includes']> {
    return this.w.includes(q);
  }

  private async afterWrite(change: WriteChange): Promise<void> {
    this.state.types.add(change.resourceType);
    if (!this.hooks.watchesAfter(change.resourceType)) {
      return;
    }
    const jobs = await this.hooks.after(change, this.store, this.depth);
    if (jobs.length > 0) {
      this.state.jobs += await this.w.store.jobs.enqueue(jobs);
    }
  }

  async prefetch(keys: { resourceType: string; id: string }[]): Promise<void> {
    await this.w.prefetch?.(keys);
  }

  async create(resource: ResourceLike, options?: WriteOptions): Promise<StoredVersion> {
    const type = resource.resourceType;
    if (!this.hooks.watches(type)) {
      return this.w.create(resource, options);
    }
    const id = resource.id as string;
    await this.hooks.before({ interaction: 'create', resourceType: type, id, resource }, this.nested(), this.depth);
    const version = await this.w.create(resource, options);
    if (this.hooks.watchesAfter(type)) {
      await this.afterWrite({ interaction: 'create', resourceType: type, id, resource: parse(version) ?? resource, version });
    } else {
      this.state.types.add(type);
    }
    return version;
  }

  async update(resource: ResourceLike, options?: WriteOptions): Promise<{ version: StoredVersion; created: boolean }> {
    const type = resource.resourceType;
    if (!this.hooks.watches(type)) {
      return this.w.update(resource, options);
    }
    const id = resource.id as string;
    const previous = parse(await this.w.read(type, id));
    const interaction: Interaction = previous ? 'update' : 'create';
    await this.hooks.before({ interaction, resourceType: type, id, resource, previous }, this.nested(), this.depth);
    const result = await this.w.update(resource, options);
    await this.afterWrite({ interaction: result.created ? 'create' : 'update', resourceType: type, id, resource: parse(result.version) ?? resource, previous, version: result.version });
    return result;
  }

  async delete(resourceType: string, id: string, options?: WriteOptions): Promise<StoredVersion | undefined> {
    if (!this.hooks.watches(resourceType)) {
      return this.w.delete(resourceType, id, options);
    }
    const previous = parse(await this.w.read(resourceType, id));
    if (previous) {
      await this.hooks.before({ interaction: 'delete', resourceType, id, resource: previous, previous }, this.nested(), this.depth);
    }
    const version = await this.w.delete(resourceType, id, options);
    if (version && previous) {
      await this.afterWrite({ interaction: 'delete', resourceType, id, resource: previous, previous, version });
    }
    return version;
  }
}

/** `store` with write hooks; `depth` is the bot chain depth of the writes made through it. */
export function hookStore(store: Store, hooks: WriteHooks, depth = 0): Store {
  return {
    ...store,
    read: (t, i) => store.read(t, i),
    vread: (t, i, v) => store.vread(t, i, v),
    history: (q) => store.history(q),
    search: (q) => store.search(q),
    searchIds: (q) => store.searchIds(q),
    readMany: (t, ids) => store.readMany(t, ids),
    searchProjected: (q, code, keys) => store.searchProjected(q, code, keys),
    includes: (q) => store.includes(q),
    snapshot: (q) => store.snapshot(q),
    snapshotCount: (q) => store.snapshotCount(q),
    reindex: (o) => store.reindex(o),
    prepareProjections: (specs, o) => store.prepareProjections(specs, o),
    analyze: () => store.analyze(),
    close: () => store.close(),
    transaction: async (fn) => {
      const state = { jobs: 0, types: new Set<string>() };
      const result = await store.transaction((w) => fn(new HookedWriter(w, hooks, depth, state)));
      if (state.jobs > 0 || state.types.size > 0) {
        await hooks.committed(state);
      }
      return result;
    },
  };
}
