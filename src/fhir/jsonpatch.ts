/**
 * JSON Patch (RFC 6902) applied to a copy of a document. Errors name the failing operation.
 */
import { isDangerousKey } from '../util/json';
import { badRequest, unprocessable } from '../errors';

export interface PatchOperation {
  op: 'add' | 'remove' | 'replace' | 'move' | 'copy' | 'test';
  path: string;
  from?: string;
  value?: unknown;
}

type Container = Record<string, unknown> | unknown[];


function parsePointer(pointer: string, where: string): string[] {
  if (pointer === '') {
    return [];
  }
  if (!pointer.startsWith('/')) {
    throw badRequest(`${where}: '${pointer}' is not a JSON pointer (must start with '/')`);
  }
  const parts = pointer
    .slice(1)
    .split('/')
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  for (const p of parts) {
    if (isDangerousKey(p)) {
      throw badRequest(`${where}: '${p}' is not allowed in a path`);
    }
  }
  return parts;
}

function isContainer(v: unknown): v is Container {
  return typeof v === 'object' && v !== null;
}

/** Walks to the parent of the last segment. */
function parentOf(doc: unknown, parts: string[], where: string): { parent: Container; key: string } {
  let cur: unknown = doc;
  for (const p of parts.slice(0, -1)) {
    if (Array.isArray(cur)) {
      cur = cur[arrayIndex(cur, p, where, false)];
    } else if (isContainer(cur) && Object.prototype.hasOwnProperty.call(cur, p)) {
      cur = (cur as Record<string, unknown>)[p];
    } else {
      throw unprocessable(`${where}: path segment '${p}' does not exist`);
    }
  }
  if (!isContainer(cur)) {
    throw unprocessable(`${where}: the target's parent is not an object or array`);
  }
  return { parent: cur, key: parts[parts.length - 1] };
}

function arrayIndex(arr: unknown[], key: string, where: string, forAdd: boolean): number {
  if (forAdd && key === '-') {
    return arr.length;
  }
  if (!/^(0|[1-9]\d*)$/.test(key)) {
    throw unprocessable(`${where}: '${key}' is not an array index`);
  }
  const i = Number(key);
  if (i > arr.length || (!forAdd && i >= arr.length)) {
    throw unprocessable(`${where}: index ${i} is out of bounds`);
  }
  return i;
}

function get(doc: unknown, parts: string[], where: string): unknown {
  if (parts.length === 0) {
    return doc;
  }
  const { parent, key } = parentOf(doc, parts, where);
  if (Array.isArray(parent)) {
    return parent[arrayIndex(parent, key, where, false)];
  }
  if (!Object.prototype.hasOwnProperty.call(parent, key)) {
    throw unprocessable(`${where}: '${key}' does not exist`);
  }
  return parent[key];
}

function add(doc: unknown, parts: string[], value: unknown, where: string): unknown {
  if (parts.length === 0) {
    return value;
  }
  const { parent, key } = parentOf(doc, parts, where);
  if (Array.isArray(parent)) {
    parent.splice(arrayIndex(parent, key, where, true), 0, value);
  } else {
    parent[key] = value;
  }
  return doc;
}

function remove(doc: unknown, parts: string[], where: string): unknown {
  if (parts.length === 0) {
    throw unprocessable(`${where}: cannot remove the whole resource`);
  }
  const { parent, key } = parentOf(doc, parts, where);
  if (Array.isArray(parent)) {
    parent.splice(arrayIndex(parent, key, where, false), 1);
  } else {
    if (!Object.prototype.hasOwnProperty.call(parent, key)) {
      throw unprocessable(`${where}: '${key}' does not exist`);
    }
    delete parent[key];
  }
  return doc;
}

function deepEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

function canonical(v: unknown): unknown {
  if (Array.isArray(v)) {
    return v.map(canonical);
  }
  if (isContainer(v)) {
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, canonical((v as Record<string, unknown>)[k])]),
    );
  }
  return v;
}

/** Checks the shape of a patch document: an array of operations with known `op`s. */
export function parsePatch(body: unknown): PatchOperation[] {
  if (!Array.isArray(body)) {
    throw badRequest('A JSON Patch body must be an array of operations');
  }
  body.forEach((op, i) => {
    const o = op as Partial<PatchOperation> | null;
    if (typeof o !== 'object' || o === null || typeof o.path !== 'string') {
      throw badRequest(`Patch operation ${i} must be an object with a string 'path'`);
    }
    if (!['add', 'remove', 'replace', 'move', 'copy', 'test'].includes(String(o.op))) {
      throw badRequest(`Patch operation ${i} has unknown op '${String(o.op)}'`);
    }
    if ((o.op === 'move' || o.op === 'copy') && typeof o.from !== 'string') {
      throw badRequest(`Patch operation ${i} (${o.op}) needs a string 'from'`);
    }
    if ((o.op === 'add' || o.op === 'replace' || o.op === 'test') && !('value' in o)) {
      throw badRequest(`Patch operation ${i} (${o.op}) needs a 'value'`);
    }
  });
  return body as PatchOperation[];
}

/** Applies the operations in order to a deep copy of `document`; the input is never modified. */
export function applyJsonPatch(document: unknown, ops: PatchOperation[]): unknown {
  let doc: unknown = structuredClone(document);
  ops.forEach((op, i) => {
    const where = `Patch operation ${i} (${op.op} ${op.path})`;
    const parts = parsePointer(op.path, where);
    switch (op.op) {
      case 'add':
        doc = add(doc, parts, structuredClone(op.value), where);
        break;
      case 'remove':
        doc = remove(doc, parts, where);
        break;
      case 'replace':
        get(doc, parts, where);
        doc = add(remove(doc, parts, where), parts, structuredClone(op.value), where);
        break;
      case 'move': {
        const from = parsePointer(op.from as string, where);
        const value = get(doc, from, where);
        doc = add(remove(doc, from, where), parts, value, where);
        break;
      }
      case 'copy': {
        const value = get(doc, parsePointer(op.from as string, where), where);
        doc = add(doc, parts, structuredClone(value), where);
        break;
      }
      case 'test':
        if (!deepEqual(get(doc, parts, where), op.value)) {
          throw unprocessable(`${where}: test failed`);
        }
        break;
    }
  });
  return doc;
}
