/**
 * Projections: a few fields of a resource, derived when it is written and stored beside it, for
 * readers that need those fields of many resources. The CCM month close reads 200,000 time-entry
 * Tasks and the worklist 40,000 plans, reports, consents and determinations: read whole, each is
 * moved out of the database and parsed for the handful of values the rules use; read as
 * projections, only those values are.
 *
 * A projection is a pure function of one resource (`map`); its JSON is stored with the resource's
 * search index rows, so it is written, replaced and removed in the same transaction as the resource
 * and rebuilt by a reindex. Readers go through the store's searchProjected (which applies the same
 * search filters and access rules as a search) and fall back to reading the resources and applying
 * `map` themselves while a projection is not ready (new to the database and not yet backfilled):
 * both ways give the same values, because both are `map` of the current resource.
 *
 * Changing what `map` returns means a new `version`: the stored rows of the old one are then never
 * read, and the new one is backfilled at start.
 */

/** Any resource (this module is below the store interface, which imports it). */
interface ResourceLike {
  resourceType: string;
}

export interface Projection<T = ResourceLike, P = unknown> {
  /** Names the projection (with `version`, the stored code). */
  name: string;
  version: number;
  /** The resource types it projects. */
  types: readonly string[];
  /** The stored value of a resource (undefined: none, the resource is not of interest). Must survive JSON. */
  map(resource: T): P | undefined;
  /**
   * What readers select values by without a search: a status, a month (default: the one key
   * ''). A value with several keys is found under each.
   */
  keys?(value: P): string[];
}

/** What the store keeps of a projection: its rows' code and the types to backfill. */
export interface ProjectionSpec {
  code: string;
  types: readonly string[];
}

/** The stored code of a projection: `name.vN`. */
export const projectionCode = (p: Pick<Projection, 'name' | 'version'>): string => `${p.name}.v${p.version}`;

/** One projection row of a resource, as the store writes it. */
export interface ProjectionRow {
  code: string;
  key: string;
  /** The JSON of the projected value. */
  data: string;
}

/**
 * Computes the projection rows of resources from a set of projections (the store's indexer adds
 * them to the index rows). A projection that throws on a resource is reported and left out for it:
 * like a search parameter's expression, it must not make a valid resource unwritable.
 */
export function projector(projections: readonly Projection<never>[], onError?: (p: Projection<never>, err: unknown) => void): (resource: ResourceLike) => ProjectionRow[] {
  const byType = new Map<string, { code: string; p: Projection<never> }[]>();
  for (const p of projections) {
    for (const type of p.types) {
      byType.set(type, [...(byType.get(type) ?? []), { code: projectionCode(p), p }]);
    }
  }
  return (resource) => {
    const list = byType.get(resource.resourceType);
    if (!list) {
      return [];
    }
    const rows: ProjectionRow[] = [];
    for (const { code, p } of list) {
      try {
        const value = (p.map as (r: ResourceLike) => unknown)(resource);
        if (value !== undefined) {
          const data = JSON.stringify(value);
          for (const key of keysOf(p, value)) {
            rows.push({ code, key, data });
          }
        }
      } catch (err) {
        onError?.(p, err);
      }
    }
    return rows;
  };
}

/** The keys of a projected value (each once). */
export function keysOf<P>(p: Pick<Projection<never, P>, 'keys'>, value: P): string[] {
  return p.keys ? [...new Set(p.keys(value))] : [''];
}

/**
 * The months (YYYY-MM) from the month of `start` to that of `end` (dates or dateTimes as written),
 * for keys of values that last a while. A span longer than `cap` months is keyed 'long' (readers
 * of a month ask for that key too).
 */
export function monthsOf(start: string, end: string, cap = 36): string[] {
  let y = Number(start.slice(0, 4));
  let m = Number(start.slice(5, 7));
  const last = end.slice(0, 7);
  const out: string[] = [];
  for (let i = 0; i <= cap; i++) {
    const key = `${String(y).padStart(4, '0')}-${String(m).padStart(2, '0')}`;
    if (key > last) {
      return out;
    }
    out.push(key);
    m = m === 12 ? 1 : m + 1;
    y = m === 1 ? y + 1 : y;
  }
  return ['long'];
}
