/**
 * Parsing untrusted JSON: a nesting limit checked without recursion (400), syntax errors with their
 * position (400), and keys that could pollute prototypes (400). Used by the HTTP edge and import.
 */
import { badRequest } from '../errors';

/**
 * The deepest nesting of objects and arrays in a JSON text, found by scanning characters (no
 * recursion, so a hostile body cannot overflow the stack). Stops early once past `limit`.
 */
export function jsonDepthExceeds(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c /* \ */) {
        i++;
      } else if (c === 0x22 /* " */) {
        inString = false;
      }
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      depth++;
      if (depth > limit) {
        return true;
      }
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      depth--;
    }
  }
  return false;
}

const DANGEROUS_KEYS = ['__proto__', 'constructor', 'prototype'];

/** Whether `key` could pollute a prototype if written into an object (refused in bodies and patches). */
export function isDangerousKey(key: string): boolean {
  return DANGEROUS_KEYS.includes(key);
}

/** Finds a dangerous key anywhere in a parsed value (iteratively). Returns its path or undefined. */
export function findDangerousKey(value: unknown): string | undefined {
  const stack: [unknown, string][] = [[value, '']];
  while (stack.length > 0) {
    const [v, path] = stack.pop() as [unknown, string];
    if (Array.isArray(v)) {
      v.forEach((child, i) => stack.push([child, `${path}[${i}]`]));
    } else if (typeof v === 'object' && v !== null) {
      for (const key of Object.keys(v)) {
        if (isDangerousKey(key)) {
          return path ? `${path}.${key}` : key;
        }
        stack.push([(v as Record<string, unknown>)[key], path ? `${path}.${key}` : key]);
      }
    }
  }
  return undefined;
}

/** Parses a JSON body after the depth check; names the problem on failure. */
export function parseJsonBody(raw: Buffer, maxDepth: number): unknown {
  return parseJsonText(raw.toString('utf8'), maxDepth);
}

/** parseJsonBody for text already decoded (import files and lines). */
export function parseJsonText(text: string, maxDepth: number): unknown {
  if (text.trim() === '') {
    return undefined;
  }
  if (jsonDepthExceeds(text, maxDepth)) {
    throw badRequest(`The JSON body is nested more than ${maxDepth} levels deep`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw badRequest(`The body is not valid JSON: ${(err as Error).message}`);
  }
  // PostgreSQL text cannot hold U+0000: refuse it here rather than fail in the store.
  if ((text.includes('\\u0000') || text.includes('\u0000')) && containsNul(parsed)) {
    throw badRequest('JSON strings may not contain the NUL character (\\u0000)');
  }
  // Cheap pre-check: only walk the tree when one of the names appears in the text at all.
  if (DANGEROUS_KEYS.some((k) => text.includes(`"${k}"`))) {
    const at = findDangerousKey(parsed);
    if (at) {
      throw badRequest(`The key '${at.split('.').pop()}' is not allowed in a FHIR resource (at ${at})`, [at]);
    }
  }
  return parsed;
}

/** Whether any string (key or value) in a parsed value contains U+0000 (iteratively). */
function containsNul(value: unknown): boolean {
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v === 'string') {
      if (v.includes('\u0000')) {
        return true;
      }
    } else if (Array.isArray(v)) {
      stack.push(...v);
    } else if (typeof v === 'object' && v !== null) {
      for (const [k, child] of Object.entries(v)) {
        if (k.includes('\u0000')) {
          return true;
        }
        stack.push(child);
      }
    }
  }
  return false;
}
