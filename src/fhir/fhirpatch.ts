/**
 * FHIRPath Patch (FHIR R4 fhirpatch.html): a Parameters resource whose `operation` parameters add,
 * insert, delete, replace or move elements named by FHIRPath. Applied to a copy of the resource;
 * every problem is a 400 naming the operation (`operation[2]`) and what is wrong with it.
 *
 * Paths are evaluated with the `fhirpath` package. Elements that are objects (complex types,
 * backbone elements) are located by identity in the resource, so any FHIRPath that selects them
 * works (`Patient.identifier.where(system = 'x')`). A primitive (`Patient.birthDate`,
 * `Patient.name[0].given[1]`) is located through its parent, so its path must end with the
 * element's name, optionally indexed. Whether an element repeats, and the JSON key of a choice
 * element (`Observation.value` -> `valueQuantity`), come from the R4 JSON schema.
 */
import type { Resource } from '@medplum/fhirtypes';
import * as fhirpath from 'fhirpath';
import * as r4 from 'fhirpath/fhir-context/r4';
import { isDangerousKey } from '../util/json';
import { badRequest } from '../errors';
import { choiceKeys, choiceOf, elementShape, RESOURCE_TYPES } from '../validation/schema';

export type FhirPatchType = 'add' | 'insert' | 'delete' | 'replace' | 'move';

export interface FhirPatchOperation {
  type: FhirPatchType;
  path: string;
  name?: string;
  /** The new content, as JSON; `valueType` is the type its `value[x]` named (`Quantity`), if any. */
  value?: unknown;
  valueType?: string;
  index?: number;
  source?: number;
  destination?: number;
  /** `operation[i]`, for messages. */
  where: string;
}

type Json = Record<string, unknown>;
type Container = Json | unknown[];

const TYPES = new Set<FhirPatchType>(['add', 'insert', 'delete', 'replace', 'move']);
const PART_NAMES = new Set(['type', 'path', 'name', 'value', 'index', 'source', 'destination']);
/** Nesting of `part` in a value, well past any FHIR datatype's. */
const MAX_VALUE_DEPTH = 32;
/** Operations in one patch: each evaluates its path over the whole resource. */
export const MAX_OPERATIONS = 1000;
/** Conditions nested in parentheses inside one where(). */
const MAX_CONDITION_DEPTH = 4;

const TOKEN = /\s*(?:(\$this\b)|([A-Za-z_][A-Za-z0-9_]*)|`([^`]+)`|(\d+(?:\.\d+)?)|('(?:[^'\\]|\\.)*')|(@[0-9][0-9T:.+\-Z]*)|(!=|<=|>=|!~|[.[\]()=<>~,]))/y;

/**
 * Paths are FHIRPath, but only the part of it a patch needs: navigation, indexes, `ofType(T)`,
 * `first()`, `last()`, and `where()` over conditions comparing relative paths with literals
 * (`Patient.identifier.where(system = 'x' and use != 'old').value`). Each costs time in
 * proportion to the resource; the full language does not (nested select() or where() over
 * literal collections, regular expressions), and a request could hold the server for minutes.
 */
export function checkPatchPath(path: string, where: string): void {
  const tokens: string[] = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < path.length) {
    const at = TOKEN.lastIndex;
    const m = TOKEN.exec(path);
    if (!m) {
      if (path.slice(at).trim() === '') {
        break;
      }
      throw badRequest(`${where}.path: unexpected '${path.slice(at, at + 10)}' at character ${at + 1} of '${path}'`, [`${where}.path`]);
    }
    // Kind-tagged tokens: identifiers (i), literals (l), symbols as they are.
    tokens.push(m[1] ? '$this' : m[2] !== undefined || m[3] !== undefined ? `i:${m[2] ?? m[3]}` : m[4] !== undefined || m[5] !== undefined || m[6] !== undefined ? 'l' : m[7]);
  }
  let i = 0;
  const fail = (what: string): never => {
    throw badRequest(
      `${where}.path '${path}': ${what}. Patch paths may use navigation, [index], ofType(), first(), last() and where() comparing paths with literals`,
      [`${where}.path`],
    );
  };
  const peek = (): string | undefined => tokens[i];
  const expect = (t: string): void => {
    if (tokens[i] !== t) {
      fail(`expected '${t}'${tokens[i] === undefined ? ' at the end' : ''}`);
    }
    i++;
  };
  const ident = (): string => {
    const t = tokens[i];
    if (!t?.startsWith('i:')) {
      fail('expected an element name');
    }
    i++;
    return (t as string).slice(2);
  };
  // Steps after the first name: .name, .fn(...), [n]. `inCondition` allows only argument-less functions.
  const steps = (inCondition: boolean, depth: number): void => {
    for (;;) {
      if (peek() === '[') {
        i++;
        if (peek() !== 'l') {
          fail('an index must be a number');
        }
        i++;
        expect(']');
      } else if (peek() === '.') {
        i++;
        const name = ident();
        if (peek() !== '(') {
          continue;
        }
        i++;
        if (name === 'first' || name === 'last' || (inCondition && (name === 'exists' || name === 'empty' || name === 'not'))) {
          expect(')');
        } else if (name === 'ofType') {
          ident();
          expect(')');
        } else if (name === 'where' && !inCondition) {
          condition(depth + 1);
          expect(')');
        } else {
          fail(`${name}() is not supported${inCondition && name === 'where' ? ' inside where()' : ''}`);
        }
      } else {
        return;
      }
    }
  };
  const operand = (depth: number): void => {
    const t = peek();
    if (t === 'l' || t === 'i:true' || t === 'i:false') {
      i++;
    } else if (t === '$this' || t?.startsWith('i:')) {
      i++;
      steps(true, depth);
    } else if (t === '(' && depth < MAX_CONDITION_DEPTH) {
      i++;
      condition(depth + 1);
      expect(')');
    } else {
      fail(t === '(' ? 'conditions are nested too deeply' : 'expected a path or a literal');
    }
  };
  const condition = (depth: number): void => {
    for (;;) {
      operand(depth);
      if (['=', '!=', '<', '>', '<=', '>=', '~', '!~'].includes(peek() ?? '')) {
        i++;
        operand(depth);
      }
      if (peek() === 'i:and' || peek() === 'i:or') {
        i++;
        continue;
      }
      return;
    }
  };
  ident();
  steps(false, 0);
  if (i < tokens.length) {
    fail(`unexpected '${tokens[i].replace(/^i:/, '')}'`);
  }
}

/** Whether a PATCH body is FHIRPath Patch (a Parameters resource) rather than JSON Patch. */
export function isFhirPatch(body: unknown): boolean {
  return typeof body === 'object' && body !== null && !Array.isArray(body) && (body as Json).resourceType === 'Parameters';
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A parameter's single `value[x]`: its key's type suffix and its value. */
function valueOf(param: Json, where: string): { type: string; value: unknown } | undefined {
  const keys = Object.keys(param).filter((k) => /^value[A-Z]/.test(k));
  if (keys.length > 1) {
    throw badRequest(`${where} has more than one value[x] (${keys.join(', ')})`, [where]);
  }
  return keys.length === 1 ? { type: keys[0].slice(5), value: param[keys[0]] } : undefined;
}

/** The content of a `value` part: its value[x], or an object built from its own parts. */
function contentOf(param: Json, where: string, depth = 0): { value: unknown; type?: string } {
  if (depth > MAX_VALUE_DEPTH) {
    throw badRequest(`${where}: the value's parts are nested more than ${MAX_VALUE_DEPTH} levels deep`, [where]);
  }
  const direct = valueOf(param, where);
  const parts = param.part;
  if ((direct && parts !== undefined) || (direct && param.resource !== undefined) || (parts !== undefined && param.resource !== undefined)) {
    throw badRequest(`${where} must have one of a value[x], a resource or parts`, [where]);
  }
  if (direct) {
    return { value: structuredClone(direct.value), type: direct.type };
  }
  // A resource as the value (a contained resource, a Bundle entry's resource).
  if (isObject(param.resource)) {
    return { value: structuredClone(param.resource) };
  }
  if (!Array.isArray(parts) || parts.length === 0) {
    throw badRequest(`${where} needs a value[x] or parts`, [where]);
  }
  const out: Json = {};
  for (const [i, p] of parts.entries()) {
    const at = `${where}.part[${i}]`;
    if (!isObject(p) || typeof p.name !== 'string' || p.name === '') {
      throw badRequest(`${at} needs a name`, [at]);
    }
    if (isDangerousKey(p.name) || p.name.startsWith('_')) {
      throw badRequest(`${at}: '${p.name}' is not an element name`, [at]);
    }
    const { value } = contentOf(p, at, depth + 1);
    const key = p.name;
    if (Object.hasOwn(out, key)) {
      const prev = out[key];
      out[key] = Array.isArray(prev) ? [...prev, value] : [prev, value];
    } else {
      out[key] = value;
    }
  }
  return { value: out };
}

function integerPart(param: Json, where: string): number {
  const v = valueOf(param, where);
  if (!v || (v.type !== 'Integer' && v.type !== 'UnsignedInt' && v.type !== 'PositiveInt') || !Number.isInteger(v.value) || (v.value as number) < 0) {
    throw badRequest(`${where} must be a valueInteger of 0 or more`, [where]);
  }
  return v.value as number;
}

function stringPart(param: Json, where: string): string {
  const v = valueOf(param, where);
  if (!v || typeof v.value !== 'string' || v.value.trim() === '') {
    throw badRequest(`${where} must be a non-empty valueString`, [where]);
  }
  return v.value;
}

/** Reads the operations of a FHIRPath Patch Parameters resource. */
export function parseFhirPatch(body: unknown): FhirPatchOperation[] {
  if (!isFhirPatch(body)) {
    throw badRequest('A FHIRPath Patch body must be a Parameters resource');
  }
  const params = (body as Json).parameter;
  if (!Array.isArray(params) || params.length === 0) {
    throw badRequest('The FHIRPath Patch has no operation parameters', ['Parameters.parameter']);
  }
  if (params.length > MAX_OPERATIONS) {
    throw badRequest(`The FHIRPath Patch has ${params.length} operations; at most ${MAX_OPERATIONS} are accepted`, ['Parameters.parameter']);
  }
  return params.map((param, i): FhirPatchOperation => {
    const where = `operation[${i}]`;
    if (!isObject(param) || param.name !== 'operation') {
      throw badRequest(`Parameters.parameter[${i}] must be named 'operation'`, [`Parameters.parameter[${i}].name`]);
    }
    if (!Array.isArray(param.part)) {
      throw badRequest(`${where} has no parts (type, path, ...)`, [`Parameters.parameter[${i}].part`]);
    }
    const parts = new Map<string, Json>();
    for (const [j, part] of (param.part as unknown[]).entries()) {
      const name = isObject(part) ? part.name : undefined;
      if (typeof name !== 'string' || !PART_NAMES.has(name)) {
        throw badRequest(`${where}: unknown part '${String(name)}' (expected ${[...PART_NAMES].join(', ')})`, [`Parameters.parameter[${i}].part[${j}]`]);
      }
      if (parts.has(name)) {
        throw badRequest(`${where}: the part '${name}' is given twice`, [`Parameters.parameter[${i}].part[${j}]`]);
      }
      parts.set(name, part as Json);
    }
    const typePart = parts.get('type');
    const type = typePart ? valueOf(typePart, `${where}.type`)?.value : undefined;
    if (typeof type !== 'string' || !TYPES.has(type as FhirPatchType)) {
      throw badRequest(`${where}.type must be a valueCode, one of ${[...TYPES].join(', ')}`, [where]);
    }
    const pathPart = parts.get('path');
    if (!pathPart) {
      throw badRequest(`${where} needs a path`, [where]);
    }
    const op: FhirPatchOperation = { type: type as FhirPatchType, path: stringPart(pathPart, `${where}.path`), where };
    checkPatchPath(op.path, where);
    const need: Record<FhirPatchType, string[]> = {
      add: ['name', 'value'],
      insert: ['value', 'index'],
      delete: [],
      replace: ['value'],
      move: ['source', 'destination'],
    };
    for (const name of parts.keys()) {
      if (name !== 'type' && name !== 'path' && !need[op.type].includes(name)) {
        throw badRequest(`${where}: a ${op.type} operation takes no '${name}'`, [where]);
      }
    }
    for (const name of need[op.type]) {
      const part = parts.get(name);
      if (!part) {
        throw badRequest(`${where}: a ${op.type} operation needs '${name}'`, [where]);
      }
      if (name === 'name') {
        op.name = stringPart(part, `${where}.name`);
      } else if (name === 'value') {
        const { value, type: valueType } = contentOf(part, `${where}.value`);
        op.value = value;
        op.valueType = valueType;
      } else {
        op[name as 'index' | 'source' | 'destination'] = integerPart(part, `${where}.${name}`);
      }
    }
    return op;
  });
}

/** Where an element is: its container and key, and the schema definition of its container. */
interface Location {
  container: Container;
  key: string | number;
  /** For an array element: the object holding the array, and the array's key. */
  owner: Json;
  ownerKey: string;
  /** The schema definition of `owner`. */
  ownerType: string;
}

/** Every object in the resource, with where it is and the schema definition it follows. */
function indexObjects(root: Json): Map<object, Location & { type: string }> {
  const out = new Map<object, Location & { type: string }>();
  const stack: { node: Json; type: string }[] = [{ node: root, type: String(root.resourceType) }];
  while (stack.length > 0) {
    const { node, type } = stack.pop() as { node: Json; type: string };
    for (const [key, value] of Object.entries(node)) {
      if (key.startsWith('_') || typeof value !== 'object' || value === null) {
        continue;
      }
      const shape = elementShape(type, key);
      const childType = (v: Json): string => (shape?.type === 'ResourceList' && typeof v.resourceType === 'string' ? v.resourceType : (shape?.type ?? 'Element'));
      if (Array.isArray(value)) {
        value.forEach((v, i) => {
          if (isObject(v)) {
            out.set(v, { container: value, key: i, owner: node, ownerKey: key, ownerType: type, type: childType(v) });
            stack.push({ node: v, type: childType(v) });
          }
        });
      } else if (isObject(value)) {
        out.set(value, { container: node, key, owner: node, ownerKey: key, ownerType: type, type: childType(value) });
        stack.push({ node: value, type: childType(value) });
      }
    }
  }
  return out;
}

function evaluate(root: Json, path: string, where: string): unknown[] {
  try {
    return fhirpath.evaluate(root, path, undefined, r4) as unknown[];
  } catch (err) {
    throw badRequest(`${where}.path '${path}' is not a FHIRPath expression this server can evaluate: ${(err as Error).message}`, [`${where}.path`]);
  }
}

/** The objects `path` selects (the root included), each with its schema definition. */
function objectsAt(root: Json, path: string, where: string, index: Map<object, Location & { type: string }>): { node: Json; type: string }[] {
  return evaluate(root, path, where).map((v) => {
    if (v === root) {
      return { node: root, type: String(root.resourceType) };
    }
    const at = isObject(v) ? index.get(v) : undefined;
    if (!at) {
      throw badRequest(`${where}.path '${path}' must select elements of the resource (it selected ${JSON.stringify(v)})`, [`${where}.path`]);
    }
    return { node: v as Json, type: at.type };
  });
}

/** `parent.name` or `parent.name[n]`: the split used for primitives and collections. */
function lastStep(path: string, where: string): { parent: string; name: string; at?: number } {
  const m = /^(.+)\.([A-Za-z][A-Za-z0-9_]*)\s*(?:\[\s*(\d+)\s*\])?$/s.exec(path.trim());
  if (!m) {
    throw badRequest(`${where}.path '${path}' must end with an element name (optionally indexed) to name a primitive or a collection`, [`${where}.path`]);
  }
  return { parent: m[1], name: m[2], at: m[3] === undefined ? undefined : Number(m[3]) };
}

/** The single object a path selects (the parent of an add, insert or move). */
function single<T>(found: T[], path: string, where: string, what: string): T {
  if (found.length !== 1) {
    throw badRequest(`${where}.path '${path}' must select exactly one ${what}; it selected ${found.length}`, [`${where}.path`]);
  }
  return found[0];
}

/** The JSON key an element `name` has in `node` (a choice element's typed key, if present). */
function presentKey(node: Json, type: string, name: string): string | undefined {
  if (Object.hasOwn(node, name)) {
    return name;
  }
  return choiceKeys(type, name).find((k) => Object.hasOwn(node, k));
}

/** The elements `path` selects, located in the resource. */
function locate(root: Json, path: string, where: string, index: Map<object, Location & { type: string }>): Location[] {
  const found = evaluate(root, path, where);
  if (found.length === 0) {
    return [];
  }
  if (found.every((v) => isObject(v))) {
    return found.map((v) => {
      const at = index.get(v as object);
      if (!at) {
        throw badRequest(`${where}.path '${path}' must select elements of the resource, not the resource itself`, [`${where}.path`]);
      }
      return at;
    });
  }
  // Primitives: located through the parent named by the path's last step. An index counts over
  // the values of all the parents together, as FHIRPath does (`Patient.name.given[1]`).
  const step = lastStep(path, where);
  let out: Location[] = [];
  for (const parent of objectsAt(root, step.parent, where, index)) {
    const key = presentKey(parent.node, parent.type, step.name);
    if (key === undefined) {
      continue;
    }
    const value = parent.node[key];
    if (Array.isArray(value)) {
      value.forEach((_, i) => out.push({ container: value, key: i, owner: parent.node, ownerKey: key, ownerType: parent.type }));
    } else {
      out.push({ container: parent.node, key, owner: parent.node, ownerKey: key, ownerType: parent.type });
    }
  }
  if (step.at !== undefined) {
    out = step.at < out.length ? [out[step.at]] : [];
  }
  const valueAt = (l: Location): unknown => (Array.isArray(l.container) ? l.container[l.key as number] : l.container[l.key as string]);
  if (out.length !== found.length || out.some((l, k) => valueAt(l) !== found[k])) {
    throw badRequest(`${where}.path '${path}' selects values this server cannot locate in the resource; name them by element (e.g. Patient.name[0].given[1])`, [`${where}.path`]);
  }
  return out;
}

/** The object holding `node` removed when a removal left it empty (FHIR has no empty elements), up the tree. */
function pruneEmpty(node: Json, index: Map<object, Location & { type: string }>): void {
  let current: Json | undefined = node;
  while (current && Object.keys(current).length === 0) {
    const at = index.get(current);
    if (!at) {
      return; // the resource itself
    }
    const parent: Json = at.owner;
    removeAt(at);
    current = parent;
  }
}

/** Removes an array element, with its primitive extension sibling (`_given[i]`), and empty arrays. */
function removeAt(loc: Location): void {
  if (Array.isArray(loc.container)) {
    const i = loc.key as number;
    loc.container.splice(i, 1);
    const ext = loc.owner[`_${loc.ownerKey}`];
    if (Array.isArray(ext)) {
      ext.splice(i, 1);
      if (ext.every((e) => e === null)) {
        delete loc.owner[`_${loc.ownerKey}`];
      }
    }
    if (loc.container.length === 0) {
      delete loc.owner[loc.ownerKey];
    }
  } else {
    delete loc.container[loc.key as string];
    delete loc.container[`_${loc.key as string}`];
  }
}

/** Applies FHIRPath Patch operations, in order, to a copy of `resource`. */
export function applyFhirPatch(resource: Resource, ops: readonly FhirPatchOperation[]): Resource {
  const root = structuredClone(resource) as unknown as Json;
  if (!RESOURCE_TYPES.has(String(root.resourceType))) {
    throw badRequest(`Cannot patch a resource of unknown type '${String(root.resourceType)}'`);
  }
  for (const op of ops) {
    const index = indexObjects(root);
    const { where, path } = op;
    switch (op.type) {
      case 'add': {
        const parent = single(objectsAt(root, path, where, index), path, where, 'element to add to');
        const name = op.name as string;
        if (isDangerousKey(name) || name.startsWith('_')) {
          throw badRequest(`${where}.name: '${name}' is not an element name`, [`${where}.name`]);
        }
        const value = structuredClone(op.value); // the operation is applied again on a retry
        const shape = elementShape(parent.type, name, op.valueType);
        if (!shape) {
          throw badRequest(`${where}.name: ${parent.type} has no element '${name}'${op.valueType ? ` of type ${op.valueType}` : ''}`, [`${where}.name`]);
        }
        const existing = presentKey(parent.node, parent.type, name);
        if (shape.array) {
          const list = existing === undefined ? [] : (parent.node[existing] as unknown[]);
          parent.node[shape.key] = [...list, value];
          const ext = parent.node[`_${shape.key}`];
          if (Array.isArray(ext)) {
            ext.push(null); // keeps a primitive list's extensions aligned
          }
        } else if (existing !== undefined) {
          throw badRequest(`${where}: ${parent.type}.${name} already has a value; use replace`, [`${where}.name`]);
        } else {
          parent.node[shape.key] = value;
        }
        break;
      }
      case 'insert':
      case 'move': {
        const step = lastStep(path, where);
        if (step.at !== undefined) {
          throw badRequest(`${where}.path '${path}' must name the collection, not one of its elements`, [`${where}.path`]);
        }
        const parent = single(objectsAt(root, step.parent, where, index), step.parent, where, 'element holding the collection');
        const shape = elementShape(parent.type, step.name);
        if (!shape?.array) {
          throw badRequest(`${where}.path '${path}' is not a repeating element of ${parent.type}`, [`${where}.path`]);
        }
        const list = (parent.node[shape.key] as unknown[] | undefined) ?? [];
        const ext = parent.node[`_${shape.key}`];
        if (op.type === 'insert') {
          const at = op.index as number;
          if (at > list.length) {
            throw badRequest(`${where}.index ${at} is past the end of ${path} (${list.length} elements)`, [`${where}.index`]);
          }
          parent.node[shape.key] = [...list.slice(0, at), structuredClone(op.value), ...list.slice(at)];
          if (Array.isArray(ext)) {
            ext.splice(at, 0, null);
          }
        } else {
          const from = op.source as number;
          const to = op.destination as number;
          if (from >= list.length || to >= list.length) {
            throw badRequest(`${where}: source ${from} and destination ${to} must be within ${path} (${list.length} elements)`, [where]);
          }
          const moved = [...list];
          const [item] = moved.splice(from, 1);
          moved.splice(to, 0, item);
          parent.node[shape.key] = moved;
          if (Array.isArray(ext)) {
            const [e] = ext.splice(from, 1);
            ext.splice(to, 0, e);
          }
        }
        break;
      }
      case 'delete': {
        const found = locate(root, path, where, index);
        if (found.length > 1) {
          throw badRequest(`${where}.path '${path}' selects ${found.length} elements; a delete removes one`, [`${where}.path`]);
        }
        if (found.length === 1) {
          removeAt(found[0]);
          pruneEmpty(found[0].owner, index);
        }
        break;
      }
      case 'replace': {
        const loc = single(locate(root, path, where, index), path, where, 'element to replace');
        const value = structuredClone(op.value);
        if (Array.isArray(loc.container)) {
          const i = loc.key as number;
          loc.container[i] = value;
          // The new value comes without the old one's extensions.
          const ext = loc.owner[`_${loc.ownerKey}`];
          if (Array.isArray(ext) && i < ext.length) {
            ext[i] = null;
            if (ext.every((e) => e === null)) {
              delete loc.owner[`_${loc.ownerKey}`];
            }
          }
        } else {
          // A choice element may change type: valueString replacing valueQuantity.
          const key = loc.key as string;
          const choice = choiceOf(loc.ownerType, key);
          const shape = choice && op.valueType ? elementShape(loc.ownerType, choice.base, op.valueType) : undefined;
          if (choice && op.valueType && !shape) {
            throw badRequest(`${where}: ${loc.ownerType}.${choice.base}[x] cannot be a ${op.valueType}`, [`${where}.value`]);
          }
          delete loc.container[key];
          delete loc.container[`_${key}`];
          loc.container[shape?.key ?? key] = value;
        }
        break;
      }
    }
  }
  return root as unknown as Resource;
}
