/**
 * Parameters that are unions of other parameters of the same type. R4 gives Observation
 * `combo-code` = `Observation.code | Observation.component.code`, where `code` is `Observation.code`
 * and `component-code` is `Observation.component.code`; likewise `combo-value-quantity`,
 * `combo-code-value-quantity`, `combo-value-concept`, `combo-data-absent-reason`. Their index rows
 * would repeat, row for row, those of the parameters they join: 22,198 of the 159,554 index rows
 * of the Synthea sample (14 %), each a heap row and two B-tree entries to write.
 *
 * Such a parameter is not indexed; a search on it is the OR of the same search on each of its
 * sources (parse.ts), and a sort on it sorts by the values of all of them (search-sql.ts). The
 * relation is derived from the definitions, not listed: a parameter is a union when the branches
 * of its expression, in order, are the whole expressions of other indexed parameters of the same
 * resource type and parameter type (for composites, with the same components). So it follows
 * SearchParameters added or removed at run time; a parameter that stops being a union (one of its
 * sources removed) needs `$reindex`, like any parameter that starts being indexed.
 */
import type { PreparedBranch } from './expression';
import type { SearchParamDef, SearchParamRegistry } from './definitions';
import { componentTypes } from './extract/composite';

interface TypeUnions {
  /** code -> the indexed parameters it is the union of. */
  sources: Map<string, readonly SearchParamDef[]>;
  /** The parameters extraction writes rows for: indexed and not a union. */
  indexed: readonly SearchParamDef[];
}

/** Per registry: the generation the answers were computed at, and per resource type. */
const cache = new WeakMap<SearchParamRegistry, { generation: number; byType: Map<string, TypeUnions> }>();

function forType(registry: SearchParamRegistry, resourceType: string): TypeUnions {
  let cached = cache.get(registry);
  if (!cached || cached.generation !== registry.generation) {
    cached = { generation: registry.generation, byType: new Map() };
    cache.set(registry, cached);
  }
  let hit = cached.byType.get(resourceType);
  if (!hit) {
    const sources = findUnions(registry, resourceType);
    hit = { sources, indexed: registry.forType(resourceType).filter((d) => d.indexed && !sources.has(d.code)) };
    cached.byType.set(resourceType, hit);
  }
  return hit;
}

/** The parameters of `resourceType` whose values are written as index rows: indexed, not unions. */
export function indexedParams(registry: SearchParamRegistry, resourceType: string): readonly SearchParamDef[] {
  return forType(registry, resourceType).indexed;
}

/**
 * The parameters `def` (a parameter of `resourceType`) is the union of, in the order of its
 * branches; undefined when it is not a union (then it is indexed as itself).
 */
export function unionSources(registry: SearchParamRegistry, resourceType: string, def: SearchParamDef): readonly SearchParamDef[] | undefined {
  const sources = forType(registry, resourceType).sources.get(def.code);
  // The registry's own definition for the code: a caller holding another one gets no answer.
  return sources && registry.get(resourceType, def.code) === def ? sources : undefined;
}

function findUnions(registry: SearchParamRegistry, resourceType: string): Map<string, readonly SearchParamDef[]> {
  const defs = registry.forType(resourceType).filter((d) => d.indexed && d.type !== 'special' && d.branches.length > 0);
  const keys = new Map<SearchParamDef, string[]>();
  for (const d of defs) {
    const k = d.branches.map((b) => branchKey(d, b, registry));
    if (k.every((x): x is string => x !== undefined)) {
      keys.set(d, k);
    }
  }
  // Fewest branches first: a parameter's sources are decided before it can be one.
  const ordered = [...keys.keys()].sort((a, b) => a.branches.length - b.branches.length);
  const out = new Map<string, readonly SearchParamDef[]>();
  for (const d of ordered) {
    if (d.branches.length < 2) {
      continue;
    }
    const own = keys.get(d) as string[];
    // Cover the branches in order with parameters of fewer branches, longest match first.
    const parts: SearchParamDef[] = [];
    let i = 0;
    while (i < own.length) {
      let best: SearchParamDef | undefined;
      for (const c of ordered) {
        const ck = keys.get(c) as string[];
        if (c !== d && ck.length < own.length && ck.length > (best?.branches.length ?? 0) && ck.every((k, j) => own[i + j] === k)) {
          best = c;
        }
      }
      if (!best) {
        break;
      }
      parts.push(best);
      i += best.branches.length;
    }
    if (i === own.length) {
      // Sources that are unions themselves stand for their own sources: only indexed ones remain.
      const flat = parts.flatMap((p) => out.get(p.code) ?? [p]);
      out.set(d.code, [...new Set(flat)]);
    }
  }
  return out;
}

/** What `branch` of `def` indexes, as a comparable key (type, expression, target, components); undefined if unknown. */
function branchKey(def: SearchParamDef, branch: PreparedBranch, registry: SearchParamRegistry): string | undefined {
  const parts: unknown[] = [def.type, branch.expression, branch.targetType ?? null];
  if (def.type === 'composite') {
    const types = componentTypes(def, registry);
    if (!types) {
      return undefined;
    }
    parts.push((def.components ?? []).map((c, i) => [c.expression.trim(), c.branches.map((cb) => cb.expression), types[i]]));
  }
  return JSON.stringify(parts);
}
