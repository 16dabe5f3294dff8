/** What every extractor may need besides the value itself. */
export interface ExtractContext {
  /** The resource being indexed (contained resources, `%resource`). */
  resource: { resourceType: string; contained?: unknown[]; [key: string]: unknown };
  /**
   * The server's base URL (`https://host/fhir`), without a trailing slash: absolute references under
   * it are stored as local ones. Optional.
   */
  baseUrl?: string;
  /** The resource's element names as hasElement sees them, computed on first use (resourceHas). */
  elements?: Set<string>;
}

/** Typed property access on a JSON object. */
export function str(obj: unknown, key: string): string | undefined {
  const v = (obj as Record<string, unknown> | undefined)?.[key];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

export function num(obj: unknown, key: string): number | undefined {
  const v = (obj as Record<string, unknown> | undefined)?.[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

export function arr(obj: unknown, key: string): unknown[] {
  const v = (obj as Record<string, unknown> | undefined)?.[key];
  return Array.isArray(v) ? v : v === undefined || v === null ? [] : [v];
}

export function obj(o: unknown, key: string): Record<string, unknown> | undefined {
  const v = (o as Record<string, unknown> | undefined)?.[key];
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

/**
 * Whether `element` is present on a JSON object: as itself, as `_element` (a primitive with only
 * an id or extensions), or as a choice variant (`valueQuantity`, `_valueString`). Over-inclusive by
 * design (`birthDate` counts as a variant of `birth`): it only decides whether to evaluate.
 */
export function hasElement(o: unknown, element: string): boolean {
  if (typeof o !== 'object' || o === null) {
    return false;
  }
  const rec = o as Record<string, unknown>;
  if (rec[element] !== undefined || rec['_' + element] !== undefined) {
    return true;
  }
  const n = element.length;
  for (const key of Object.keys(rec)) {
    const start = key.startsWith(element) ? 0 : key.startsWith('_' + element) ? 1 : -1;
    if (start >= 0) {
      const c = key.charCodeAt(start + n);
      if (c >= 65 && c <= 90) {
        return true;
      }
    }
  }
  return false;
}

/**
 * hasElement on the resource being indexed, answered from the set of its element names (computed
 * once per extraction: a resource is asked about each of its type's 30-100 search parameters, and
 * most of them are absent, which hasElement finds only by trying every key).
 */
export function resourceHas(ctx: ExtractContext, element: string): boolean {
  const rec = ctx.resource as Record<string, unknown>;
  if (rec[element] !== undefined) {
    return true;
  }
  ctx.elements ??= elementNames(rec);
  return ctx.elements.has(element);
}

/** Each key without its leading `_`, and each prefix of it that ends before a capital letter. */
function elementNames(o: Record<string, unknown>): Set<string> {
  const names = new Set<string>();
  for (const key of Object.keys(o)) {
    const name = key.charCodeAt(0) === 95 /* _ */ ? key.slice(1) : key;
    if (o[key] !== undefined) {
      names.add(name);
    }
    for (let i = 1; i < name.length; i++) {
      const c = name.charCodeAt(i);
      if (c >= 65 && c <= 90) {
        names.add(name.slice(0, i));
      }
    }
  }
  return names;
}
