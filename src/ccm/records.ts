/**
 * Reading what the CCM operations need through the caller's store (so the caller's scopes and
 * patient compartment apply): every match of a search, and one resource by reference.
 */
import type { Resource } from '@medplum/fhirtypes';
import { FhirError } from '../errors';
import type { RequestContext } from '../fhir/types';
import type { SearchQuery } from '../store/api';
import { keysOf, type Projection, projectionCode } from '../store/projections';

/** Resources read per store query. */
const CHUNK = 5000;

/**
 * Every current resource of `type` matching `query` (FHIR search parameters), in id order, up to
 * `limit`. The matches are found in one pass over the index (store.searchIds) and read by id in
 * large chunks: paging through a search would join the index again for every page, which over
 * the 200,000 time entries of a month close costs minutes instead of seconds. A resource changed
 * between the two steps is read as it is then (callers check what they rely on), and one deleted
 * in between is left out. Both steps go through the caller's store, so its scopes apply to each.
 */
export async function searchAll<T extends Resource>(ctx: RequestContext, type: T['resourceType'], query: Record<string, string | string[]>, limit = 20_000): Promise<T[]> {
  return searchMapped<T, T>(ctx, type, query, limit, (t) => t);
}

/**
 * searchAll, keeping `map(resource)` of each match instead (undefined: left out). For many matches
 * of which a little is needed: each resource is dropped as soon as it is mapped, so 200,000 parsed
 * Tasks are never alive together (the garbage collector's time grows with what stays alive).
 */
export async function searchMapped<T extends Resource, U>(
  ctx: RequestContext,
  type: T['resourceType'],
  query: Record<string, string | string[]>,
  limit: number,
  map: (resource: T) => U | undefined,
): Promise<U[]> {
  return readMapped<T, U>(ctx, type, await ctx.store.searchIds(storeQuery(ctx, type, query, limit)), map);
}

/** What searchProjected reads. */
export interface ProjectedRead {
  /** Only values under one of these keys (Projection.keys); undefined: all. */
  keys?: string[];
  /** Search parameters the resources must match (none: every resource of the type). */
  query?: Record<string, string | string[]>;
  /**
   * Only while the projection is not ready: search parameters that select at least the resources
   * whose values have the keys (so that reading whole resources does not read every one).
   */
  narrow?: Record<string, string | string[]>;
  /** Only resources with these ids (as `_id`, without a search value per id). */
  ids?: string[];
  limit: number;
}

/**
 * The projected values (src/store/projections.ts) of the resources of `type` that match `query`,
 * under `keys`: read from the projection's rows without reading the resources, or, while the
 * projection is not ready, by reading the resources (matching `query` and `narrow`) and projecting
 * them here. Same values either way: each is `projection.map` of the current resource (stored ones
 * have been through JSON).
 */
export async function searchProjected<T extends Resource, P>(ctx: RequestContext, type: T['resourceType'], projection: Projection<T, P>, read: ProjectedRead): Promise<P[]> {
  const stored = await ctx.store.searchProjected(storeQuery(ctx, type, read.query ?? {}, read.limit, read.ids), projectionCode(projection), read.keys);
  if (stored !== undefined) {
    return stored as P[];
  }
  const wanted = read.keys && new Set(read.keys);
  const ids = await ctx.store.searchIds(storeQuery(ctx, type, { ...read.narrow, ...read.query }, read.limit, read.ids));
  return readMapped<T, P>(ctx, type, ids, (r) => {
    const value = projection.map(r);
    return value !== undefined && (!wanted || keysOf(projection, value).some((k) => wanted.has(k))) ? value : undefined;
  });
}

function storeQuery(ctx: RequestContext, type: string, query: Record<string, string | string[]>, limit: number, ids?: string[]): SearchQuery {
  const q: Record<string, string[]> = {};
  for (const [k, v] of Object.entries(query)) {
    q[k] = Array.isArray(v) ? v : [v];
  }
  const filters = ctx.searchParser(false).parse(type, q).filters;
  return { resourceType: type, filters: ids ? [{ kind: 'id', ids }, ...filters] : filters, count: limit };
}

/** The current versions of `type` with these ids (in id order; absent and deleted ones left out). */
export async function readAll<T extends Resource>(ctx: RequestContext, type: T['resourceType'], ids: string[]): Promise<T[]> {
  return readMapped<T, T>(ctx, type, ids, (t) => t);
}

async function readMapped<T extends Resource, U>(ctx: RequestContext, type: T['resourceType'], unsorted: string[], map: (resource: T) => U | undefined): Promise<U[]> {
  const ids = [...new Set(unsorted)].sort();
  const out: U[] = [];
  const fetch = (i: number): Promise<string[]> | undefined => {
    if (i >= ids.length) {
      return undefined;
    }
    const read = ctx.store.readMany(type, ids.slice(i, i + CHUNK));
    read.catch(() => undefined); // handled where it is awaited; not "unhandled" if map throws first
    return read;
  };
  // The next chunk is asked for before this one is parsed, so the store reads while this thread
  // parses (at most two chunks of JSON are held at once).
  let next = fetch(0);
  for (let i = 0; next; i += CHUNK) {
    const current = await next;
    next = fetch(i + CHUNK);
    for (const json of current) {
      const kept = map(JSON.parse(json) as T);
      if (kept !== undefined) {
        out.push(kept);
      }
    }
  }
  return out;
}

/** The current version of `Type/id`, or undefined when it does not exist (or is deleted). */
export async function readReference<T extends Resource>(ctx: RequestContext, reference: string | undefined): Promise<T | undefined> {
  const m = /^([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})$/.exec(reference ?? '');
  if (!m) {
    return undefined;
  }
  const v = await ctx.store.read(m[1], m[2]);
  return v?.json && !v.deleted ? (JSON.parse(v.json) as T) : undefined;
}

/** Like readReference, but a missing resource is a 404 naming it. */
export async function readOrNotFound<T extends Resource>(ctx: RequestContext, type: string, id: string): Promise<T> {
  const found = await readReference<T>(ctx, `${type}/${id}`);
  if (!found) {
    throw new FhirError('not-found', `${type}/${id} is not known`);
  }
  return found;
}

/** YYYY-MM-DD of the server's clock (UTC). */
export function today(ctx: RequestContext): string {
  return ctx.now().toISOString().slice(0, 10);
}
