/**
 * composite parameters: the parameter's expression selects repetitions (each Observation.component,
 * each useContext, or the resource itself for `code-value-quantity`); each component expression is
 * evaluated relative to ONE repetition, and every combination of the component values of that
 * repetition is a row. A repetition missing any component gives no row.
 *
 * A component's type is the type of the SearchParameter its `definition` names.
 */
import type { SearchParamDef, SearchParamRegistry, SearchParamType } from '../definitions';
import { evaluateFast, evaluateTyped, relativeFastPath, type RelativePath, type TypedValue } from '../fhirpath';
import { type ExtractContext, hasElement, resourceHas } from './context';
import type { CompositeComponent, CompositeValue } from './rows';
import { valueKey, valuesOf } from './values';

/** Cap on rows from one repetition (combinations multiply: codings x values). */
const MAX_COMBINATIONS = 256;

/**
 * Component types of a composite, or undefined when one cannot be resolved.
 *
 * Normally the type of the SearchParameter each component's `definition` names. R4 has a composite
 * whose definitions are swapped (DocumentReference `relationship`: `code` -> relatesto (reference),
 * `target` -> relation (token)); when a component's path is the tail of ANOTHER component's
 * definition expression and not of its own, that other definition's type is used.
 */
export function componentTypes(def: SearchParamDef, registry: SearchParamRegistry): SearchParamType[] | undefined {
  let cached = typesCache.get(registry);
  if (!cached || cached.generation !== registry.generation) {
    // A SearchParameter added or removed since may be one a component names.
    cached = { generation: registry.generation, byDef: new WeakMap() };
    typesCache.set(registry, cached);
  }
  if (!cached.byDef.has(def)) {
    cached.byDef.set(def, resolveComponentTypes(def, registry));
  }
  return cached.byDef.get(def);
}

/** componentTypes per registry and definition (they are looked up on every write). */
const typesCache = new WeakMap<SearchParamRegistry, { generation: number; byDef: WeakMap<SearchParamDef, SearchParamType[] | undefined> }>();

function resolveComponentTypes(def: SearchParamDef, registry: SearchParamRegistry): SearchParamType[] | undefined {
  const components = def.components ?? [];
  const targets = components.map((c) => registry.byUrl(c.definition));
  const types: SearchParamType[] = [];
  for (let i = 0; i < components.length; i++) {
    let source = targets[i];
    const path = components[i].expression.trim();
    if (/^[A-Za-z][A-Za-z0-9.]*$/.test(path) && !endsWithPath(source?.expression, path)) {
      const other = targets.find((t, j) => j !== i && endsWithPath(t?.expression, path));
      source = other ?? source;
    }
    const t = source?.type;
    if (t === undefined || t === 'composite' || t === 'special') {
      return undefined;
    }
    types.push(t);
  }
  return types.length > 0 ? types : undefined;
}

function endsWithPath(expression: string | undefined, path: string): boolean {
  return expression !== undefined && expression.split('|').some((branch) => branch.trim().endsWith('.' + path));
}

/** Throws on evaluation errors (the caller reports them per parameter). */
export function compositeValues(def: SearchParamDef, registry: SearchParamRegistry, ctx: ExtractContext): CompositeValue[] {
  const types = componentTypes(def, registry);
  const components = def.components;
  if (!types || !components) {
    return [];
  }
  const out: CompositeValue[] = [];
  const seen = new Set<string>();
  const fast = fastPaths(def);
  for (const [n, branch] of def.branches.entries()) {
    if (branch.requires !== undefined && !resourceHas(ctx, branch.requires)) {
      continue;
    }
    const paths = fast[n];
    const repetitions = (paths && fastRepetitions(branch.expression, ctx.resource)) ?? evaluateTyped(branch.expression, ctx.resource, ctx.resource);
    for (const repetition of repetitions) {
      // Last component first: it is usually the value, the one most often absent.
      const perComponent: CompositeComponent[][] = new Array<CompositeComponent[]>(components.length);
      let complete = true;
      for (let i = components.length - 1; i >= 0 && complete; i--) {
        const values: CompositeComponent[] = [];
        for (const [k, b] of components[i].branches.entries()) {
          if (b.requires !== undefined && !hasElement(repetition.value, b.requires)) {
            continue;
          }
          // The engine needs the repetition's node; the fast paths only its value.
          const typed = repetition.node === undefined && paths ? paths[i][k](repetition.value) : evaluateTyped(b.expression, repetition.node, ctx.resource);
          for (const tv of typed) {
            for (const value of valuesOf(types[i], tv, ctx)) {
              if (!isTextOnly(value)) {
                values.push(value);
              }
            }
          }
        }
        perComponent[i] = values;
        complete = values.length > 0;
      }
      if (!complete) {
        continue;
      }
      for (const tuple of combinations(perComponent)) {
        const key = tuple.map(valueKey).join('\u001e');
        if (!seen.has(key)) {
          seen.add(key);
          out.push({ components: tuple });
        }
      }
    }
  }
  return out;
}

/**
 * A token value with neither system nor code (a CodeableConcept's text alone). A composite's token
 * component is matched on its code and system (composites take no `:text`), so a combination with
 * one can never match a search: no row is written for it. (Half of Synthea's Observation
 * composite rows were these.)
 */
function isTextOnly(v: CompositeComponent): boolean {
  return v.type === 'token' && v.system === null && v.value === null && v.typeCode === null;
}

/**
 * Per branch of a composite, its components' expressions as plain paths relative to the branch
 * (relativeFastPath), or undefined when the branch or one of them is not a plain path.
 */
const fastCache = new WeakMap<SearchParamDef, (RelativePath[][] | undefined)[]>();

function fastPaths(def: SearchParamDef): (RelativePath[][] | undefined)[] {
  let cached = fastCache.get(def);
  if (!cached) {
    cached = def.branches.map((branch) => {
      const base = branch.expression.trim();
      const paths = (def.components ?? []).map((c) => c.branches.map((b) => relativeFastPath(base, b.expression.trim())));
      return paths.every((list) => list.every((p) => p !== undefined)) ? (paths as RelativePath[][]) : undefined;
    });
    fastCache.set(def, cached);
  }
  return cached;
}

/** The repetitions of a branch without the engine: the resource itself, or a plain path's values. */
function fastRepetitions(expression: string, resource: ExtractContext['resource']): TypedValue[] | undefined {
  const e = expression.trim();
  if (e === resource.resourceType) {
    return [{ type: e, value: resource, node: undefined }];
  }
  return /^[A-Z][A-Za-z]+\./.test(e) ? evaluateFast(e, resource) : undefined;
}

function combinations(lists: CompositeComponent[][]): CompositeComponent[][] {
  let acc: CompositeComponent[][] = [[]];
  for (const list of lists) {
    const next: CompositeComponent[][] = [];
    for (const prefix of acc) {
      for (const v of list) {
        if (next.length >= MAX_COMBINATIONS) {
          break;
        }
        next.push([...prefix, v]);
      }
    }
    acc = next;
  }
  return acc;
}
