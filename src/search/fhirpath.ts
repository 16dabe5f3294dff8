/**
 * The FHIRPath engine as the search index uses it: fhirpath.js with its R4 model, each expression
 * compiled once (cached by text), results returned as typed values.
 *
 * `resolve()` never fetches at write time: it yields the resources it can find without I/O (contained
 * resources) and nothing otherwise. Trailing `.where(resolve() is T)` is rewritten away beforehand
 * (see expression.ts), so the common case does not depend on it.
 */
import * as fhirpath from 'fhirpath';
import * as r4 from 'fhirpath/fhir-context/r4';

/** One result of an evaluation: the FHIR type of the value (when known) and the value as JSON. */
export interface TypedValue {
  /**
   * FHIR type name: `CodeableConcept`, `dateTime`, `Quantity`, `Reference`, a resource type, ...
   * Values computed by functions (`exists()`, `toString()`) get `boolean`, `string`, `decimal`,
   * `integer`, `dateTime`, `date`, `time` or `Quantity`. Undefined when unknown.
   */
  type: string | undefined;
  /** The JSON value (object for complex types, string/number/boolean for primitives). */
  value: unknown;
  /** The engine's node, so that a composite can evaluate its components relative to it. */
  node: unknown;
}

type Compiled = (resource: unknown, env?: Record<string, unknown>) => unknown[];

/** What `compile` caches for an expression that does not parse: the error, rethrown on use. */
interface Failed {
  error: Error;
}

const cache = new Map<string, Compiled | Failed>();

interface EngineNode {
  data: unknown;
  fhirNodeDataType: string | null;
  parentResNode: EngineNode | null;
}

function isEngineNode(v: unknown): v is EngineNode {
  return typeof v === 'object' && v !== null && 'fhirNodeDataType' in v && 'parentResNode' in v;
}

/** The root resource a node belongs to (walks up the engine's parent links). */
function rootData(n: EngineNode): unknown {
  let cur = n;
  while (cur.parentResNode) {
    cur = cur.parentResNode;
  }
  return cur.data;
}

type NodeClass = { makeResNode(ctx: unknown, data: unknown, parent: null, path: null, _data: null, type: null): unknown };

/**
 * resolve(): contained resources (`#id`) only; never I/O, never async. Results are wrapped in the
 * engine's own node class (taken from the input node) so that `is`/`ofType` see their type.
 */
function resolveWithoutIo(this: unknown, coll: unknown[]): unknown[] {
  const out: unknown[] = [];
  for (const item of coll) {
    if (!isEngineNode(item)) {
      continue;
    }
    const data = item.data as { reference?: unknown } | string | undefined;
    const ref = typeof data === 'string' ? data : typeof data?.reference === 'string' ? data.reference : undefined;
    if (!ref?.startsWith('#')) {
      continue;
    }
    const root = rootData(item) as { contained?: { id?: string }[] } | undefined;
    const found = root?.contained?.find((c) => c.id === ref.slice(1));
    const nodeClass = (item as { constructor?: Partial<NodeClass> }).constructor;
    if (found && typeof nodeClass?.makeResNode === 'function') {
      out.push(nodeClass.makeResNode(this, found, null, null, null, null));
    }
  }
  return out;
}

/** `as()` applied per item (like `ofType()`): R4 expressions use it on collections. */
function lenientAs(this: { model?: unknown }, coll: unknown[], typeInfo: unknown): unknown[] {
  return coll.filter((n) => {
    const node = n as { getTypeInfo?: () => { is(t: unknown, m: unknown): boolean } };
    return typeof node?.getTypeInfo === 'function' && node.getTypeInfo().is(typeInfo, this.model);
  });
}

const OPTIONS = {
  resolveInternalTypes: false,
  userInvocationTable: {
    resolve: { fn: resolveWithoutIo, arity: { 0: [] }, internalStructures: true },
    as: { fn: lenientAs, arity: { 1: ['TypeSpecifier' as const] }, internalStructures: true },
  },
};

/**
 * Compiles (once) and returns the evaluator for an expression. Throws on a syntax error or an unknown
 * function; the failure is cached too.
 */
export function compile(expression: string): Compiled {
  let hit = cache.get(expression);
  if (!hit) {
    try {
      hit = fhirpath.compile(expression, r4, OPTIONS) as Compiled;
    } catch (err) {
      hit = { error: err instanceof Error ? err : new Error(String(err)) };
    }
    cache.set(expression, hit);
  }
  if (typeof hit !== 'function') {
    throw hit.error;
  }
  return hit;
}

/** Number of cached compiled expressions (for measurements). */
export function compiledCount(): number {
  return cache.size;
}

/**
 * Evaluates `expression` against `input` (a resource, or a node from a previous evaluation) and
 * returns typed values. `resource` is `%resource` (the resource being indexed). Throws on errors.
 */
export function evaluateTyped(expression: string, input: unknown, resource: unknown): TypedValue[] {
  const raw = compile(expression)(input, { resource, rootResource: resource });
  const out: TypedValue[] = [];
  for (const item of raw) {
    const tv = toTyped(item);
    if (tv) {
      out.push(tv);
    }
  }
  return out;
}

function toTyped(item: unknown): TypedValue | undefined {
  if (isEngineNode(item)) {
    const value = plain(item.data);
    if (value === undefined || value === null) {
      return undefined;
    }
    let type = item.fhirNodeDataType ?? undefined;
    if (type?.startsWith('System.')) {
      type = systemToFhir(type.slice(7), value);
    }
    if (!type) {
      const rt = (value as { resourceType?: unknown }).resourceType;
      type = typeof rt === 'string' ? rt : jsType(value);
    }
    return { type, value, node: item };
  }
  // System values computed by functions (booleans from exists(), FP_DateTime, FP_Quantity, ...).
  const resolved = fhirpath.resolveInternalTypes([item]) as unknown[];
  const value = resolved[0];
  if (value === undefined || value === null) {
    return undefined;
  }
  const t = (fhirpath.types([item]) as string[])[0];
  const type = t?.startsWith('System.') ? systemToFhir(t.slice(7), value) : t?.startsWith('FHIR.') ? t.slice(5) : jsType(value);
  return { type, value, node: item };
}

/** Unwraps the engine's decimal wrapper (FP_Decimal) to a JS number. */
function plain(v: unknown): unknown {
  if (typeof v === 'object' && v !== null && typeof (v as { toNumber?: unknown }).toNumber === 'function') {
    return (v as { toNumber(): number }).toNumber();
  }
  if (typeof v === 'bigint') {
    return Number(v);
  }
  return v;
}

function systemToFhir(name: string, value: unknown): string | undefined {
  switch (name) {
    case 'String':
      return 'string';
    case 'Boolean':
      return 'boolean';
    case 'Integer':
    case 'Long':
      return 'integer';
    case 'Decimal':
      return 'decimal';
    case 'Date':
      return 'date';
    case 'DateTime':
      return 'dateTime';
    case 'Time':
      return 'time';
    case 'Quantity':
      return 'Quantity';
    default:
      return jsType(value);
  }
}

function jsType(value: unknown): string | undefined {
  if (typeof value === 'string' || typeof value === 'boolean') {
    return typeof value;
  }
  if (typeof value === 'number') {
    return Number.isInteger(value) ? 'integer' : 'decimal';
  }
  return undefined;
}

const SIMPLE_PATH = /^\(?([A-Z][A-Za-z]+)((?:\.[a-z][A-Za-z0-9]*)+)(?:\.ofType\(([A-Za-z]+)\)|\.where\(([a-z][A-Za-z0-9]*)\s*=\s*'([A-Za-z0-9\-.:/]*)'\))?\)?((?:\.[a-z][A-Za-z0-9]*)*)$/;
/** Element types a `where(element = 'literal')` filter compares as plain strings. */
const STRING_LIKE = new Set(['code', 'string', 'uri', 'url', 'canonical', 'id', 'oid', 'uuid']);
const model = r4 as unknown as {
  path2Type: Record<string, string>;
  pathsDefinedElsewhere: Record<string, string>;
  choiceTypePaths: Record<string, string[]>;
};

interface FastPlan {
  /** The resource type the path starts from (`Resource` and `DomainResource` match any). */
  root: string;
  /** JSON keys to walk, the one of a choice element already expanded for ofType (`valueQuantity`). */
  keys: string[];
  type: string;
  /** `where(element = 'literal')` on the last step: keep the items whose element is the literal. */
  where?: { key: string; literal: string };
  /**
   * A choice element as the last step, without ofType (`Observation.effective`): its JSON keys and
   * types in the model's order. As the engine does, the first key present (as a value or as `_key`)
   * is the element, whatever the others hold.
   */
  choices?: { key: string; type: string }[];
}

const fastPlans = new Map<string, FastPlan | null>();

/**
 * The model's own path for `path`: follows contentReferences (Questionnaire.item.item ->
 * Questionnaire.item) and steps into datatypes (Patient.name.family -> HumanName.family).
 */
function modelPath(path: string): string {
  const parts = path.split('.');
  let current = parts[0];
  for (const p of parts.slice(1)) {
    let next = `${current}.${p}`;
    next = model.pathsDefinedElsewhere[next] ?? next;
    if (model.path2Type[next] === undefined && model.choiceTypePaths[next] === undefined) {
      const parentType = model.path2Type[current];
      if (parentType !== undefined && /^[A-Z]/.test(parentType) && parentType !== 'BackboneElement' && parentType !== 'Element') {
        const inType = `${parentType}.${p}`;
        next = model.pathsDefinedElsewhere[inType] ?? inType;
      }
    }
    current = next;
  }
  return current;
}

/** The model type of `path` (undefined for a choice element or an unknown path). */
function modelType(path: string): string | undefined {
  return model.path2Type[modelPath(path)];
}

function fastPlan(expression: string): FastPlan | null {
  let plan = fastPlans.get(expression);
  if (plan === undefined) {
    plan = null;
    const m = SIMPLE_PATH.exec(expression);
    if (m) {
      const [, root, dotted, ofType, whereKey, whereLiteral, trailing] = m;
      const keys = dotted.slice(1).split('.');
      const pathTo = (n: number): string => `${root}.${keys.slice(0, n).join('.')}`;
      // Every step before the last must be a known element, so JSON keys are element names.
      const parentsKnown = keys.slice(0, -1).every((_, i) => modelType(pathTo(i + 1)) !== undefined);
      const lastType = modelType(pathTo(keys.length));
      const last = keys[keys.length - 1];
      const choiceTypes = model.choiceTypePaths[modelPath(pathTo(keys.length))];
      if (trailing !== '') {
        // `(Observation.value.ofType(CodeableConcept)).text`: elements of the type ofType selected.
        if (parentsKnown && ofType !== undefined && lastType === undefined && ofTypeIsOneKey(choiceTypes, ofType)) {
          const after = trailing.slice(1).split('.');
          const afterKnown = after.every((_, i) => modelType(`${ofType}.${after.slice(0, i + 1).join('.')}`) !== undefined);
          if (afterKnown) {
            const type = modelType(`${ofType}.${after.join('.')}`) as string;
            plan = { root, keys: [...keys.slice(0, -1), last + capitalized(ofType), ...after], type: fastType(type) };
          }
        }
      } else if (parentsKnown && ofType === undefined && whereKey === undefined && lastType !== undefined) {
        plan = { root, keys, type: fastType(lastType) };
      } else if (parentsKnown && ofType === undefined && whereKey === undefined && lastType === undefined && choiceTypes !== undefined) {
        const base = modelPath(pathTo(keys.length));
        const choices = choiceTypes.map((t) => ({ key: last + t, type: model.path2Type[base + t] }));
        if (choices.every((c) => c.type !== undefined)) {
          plan = { root, keys: keys.slice(0, -1), type: '', choices: choices.map((c) => ({ key: c.key, type: fastType(c.type) })) };
        }
      } else if (parentsKnown && ofType !== undefined && lastType === undefined && ofTypeIsOneKey(choiceTypes, ofType)) {
        // A choice element: `value.ofType(Quantity)` is the JSON key `valueQuantity`,
        // `value.ofType(dateTime)` the key `valueDateTime` (the model lists types capitalized).
        plan = { root, keys: [...keys.slice(0, -1), last + capitalized(ofType)], type: ofType };
      } else if (parentsKnown && whereKey !== undefined && lastType !== undefined && STRING_LIKE.has(modelType(`${pathTo(keys.length)}.${whereKey}`) ?? '')) {
        // `telecom.where(system = 'phone')`: a string comparison on a primitive of each item.
        plan = { root, keys, type: fastType(lastType), where: { key: whereKey, literal: whereLiteral } };
      }
    }
    fastPlans.set(expression, plan);
  }
  return plan;
}

/** FHIR primitive types whose specializations `ofType` also matches (`ofType(uri)` takes a canonical). */
const PRIMITIVE_SUBTYPES: Record<string, string[]> = {
  uri: ['Url', 'Canonical', 'Oid', 'Uuid'],
  string: ['Code', 'Id', 'Markdown'],
  integer: ['UnsignedInt', 'PositiveInt'],
};

/** Whether `ofType(type)` on a choice element with these types selects exactly one JSON key. */
function ofTypeIsOneKey(choices: string[] | undefined, type: string): boolean {
  return choices !== undefined && choices.includes(capitalized(type)) && !(PRIMITIVE_SUBTYPES[type] ?? []).some((t) => choices.includes(t));
}

function capitalized(name: string): string {
  return name[0].toUpperCase() + name.slice(1);
}

function fastType(modelTypeName: string): string {
  return modelTypeName.startsWith('System.') ? (systemToFhir(modelTypeName.slice(7), undefined) ?? modelTypeName) : modelTypeName;
}

/**
 * The common case without the engine: a plain element path (`Observation.code`,
 * `Observation.component.code`, `(Observation.value.ofType(Quantity))`) walked over the JSON, with
 * types from the R4 model. Returns undefined when the expression is not such a path, so the caller
 * falls back to `evaluateTyped`. Equivalence with the engine is tested (test/unit/search).
 */
export function evaluateFast(expression: string, resource: { resourceType: string }): TypedValue[] | undefined {
  const plan = fastPlan(expression);
  if (!plan) {
    return existsNotFalse(expression, resource);
  }
  if (resource.resourceType !== plan.root && plan.root !== 'Resource' && plan.root !== 'DomainResource') {
    return [];
  }
  return walkPlan(plan, resource, 0);
}

/** The plan's keys from `from` on, walked from `start`; then its `where` filter; typed. */
function walkPlan(plan: FastPlan, start: unknown, from: number): TypedValue[] {
  let current: unknown[] = [start];
  for (let k = from; k < plan.keys.length; k++) {
    const key = plan.keys[k];
    const next: unknown[] = [];
    for (const item of current) {
      const v = (item as Record<string, unknown>)[key];
      if (Array.isArray(v)) {
        for (const x of v) {
          if (x !== null && x !== undefined) {
            next.push(x);
          }
        }
      } else if (v !== undefined && v !== null) {
        next.push(v);
      }
    }
    if (next.length === 0) {
      return [];
    }
    current = next;
  }
  if (plan.choices) {
    return choiceValues(plan.choices, current);
  }
  const { where } = plan;
  if (where) {
    // FHIRPath `=` compares collections: a repeated element equals the literal only with one item.
    current = current.filter((item) => {
      const v = (item as Record<string, unknown>)[where.key];
      return Array.isArray(v) ? v.length === 1 && v[0] === where.literal : v === where.literal;
    });
  }
  return current.map((value) => ({ type: plan.type, value, node: undefined }));
}

/** The value of a choice element on each item: the first of its keys present, typed by that key. */
function choiceValues(choices: { key: string; type: string }[], items: unknown[]): TypedValue[] {
  const out: TypedValue[] = [];
  for (const item of items) {
    const rec = item as Record<string, unknown>;
    for (const c of choices) {
      const v = rec[c.key];
      if (v !== undefined || rec['_' + c.key] !== undefined) {
        for (const x of Array.isArray(v) ? v : [v]) {
          if (x !== null && x !== undefined) {
            out.push({ type: c.type, value: x, node: undefined });
          }
        }
        break;
      }
    }
  }
  return out;
}

/** A plain path evaluated on one element's JSON value (see relativeFastPath). */
export type RelativePath = (value: unknown) => TypedValue[];

/**
 * evaluateFast for `expression` evaluated on elements found at `base`, a plain element path
 * (`Observation.component`) or a resource type (`Observation`): a composite's components (`code`,
 * `value.ofType(Quantity)`) on each repetition, without the engine. Undefined when the two do not
 * make a plain path together (the caller evaluates with the engine).
 */
export function relativeFastPath(base: string, expression: string): RelativePath | undefined {
  if (!/^[A-Z][A-Za-z]+(?:\.[a-z][A-Za-z0-9]*)*$/.test(base) || !/^[a-z]/.test(expression)) {
    return undefined;
  }
  const plan = fastPlan(`${base}.${expression}`);
  const baseKeys = base.split('.').slice(1);
  // The plan's first keys must be base's own elements (not a choice element expanded by ofType).
  if (!plan || plan.keys.length <= baseKeys.length || baseKeys.some((k, i) => plan.keys[i] !== k)) {
    return undefined;
  }
  return (value) => walkPlan(plan, value, baseKeys.length);
}

/** `Patient.deceased.exists() and Patient.deceased != false`: an element of the resource itself. */
const EXISTS_NOT_FALSE = /^([A-Z][A-Za-z]+)\.([a-z][A-Za-z0-9]*)\.exists\(\) and \1\.\2 != false$/;

/** For `R.e.exists() and R.e != false`: the JSON keys of `e` (one per type of a choice element). */
const existsKeys = new Map<string, string[] | null>();

function existsNotFalseKeys(expression: string): string[] | null {
  let keys = existsKeys.get(expression);
  if (keys === undefined) {
    keys = null;
    const m = EXISTS_NOT_FALSE.exec(expression);
    if (m) {
      const [, root, element] = m;
      const path = `${root}.${element}`;
      const choices = model.choiceTypePaths[path];
      if (choices) {
        keys = choices.map((t) => element + t[0].toUpperCase() + t.slice(1));
      } else if (model.path2Type[path] !== undefined) {
        keys = [element];
      }
    }
    existsKeys.set(expression, keys);
  }
  return keys;
}

/**
 * `R.e.exists() and R.e != false` (the `deceased` parameter) without the engine: false when `e` is
 * absent or is the boolean false, true otherwise (true, a date: FHIRPath `!=` between different
 * types is true). Declines when `e` is there only as an extension (`_e`: present for exists(), no
 * value to compare), holds several items, or the resource is another type.
 */
function existsNotFalse(expression: string, resource: { resourceType: string }): TypedValue[] | undefined {
  const keys = existsNotFalseKeys(expression);
  if (!keys || !expression.startsWith(resource.resourceType + '.')) {
    return undefined;
  }
  const r = resource as unknown as Record<string, unknown>;
  const items: unknown[] = [];
  for (const key of keys) {
    if (r['_' + key] !== undefined) {
      return undefined;
    }
    const v = r[key];
    if (Array.isArray(v)) {
      items.push(...v.filter((x) => x !== null && x !== undefined));
    } else if (v !== undefined && v !== null) {
      items.push(v);
    }
  }
  if (items.length > 1) {
    return undefined; // not valid FHIR (a choice given twice); the engine decides
  }
  return [{ type: 'boolean', value: items.length === 1 && items[0] !== false, node: undefined }];
}
