/**
 * Rewriting references inside a transaction Bundle (FHIR R4 http.html#trules): `urn:uuid:` and
 * other fullUrls of entries become the `Type/id` the server assigned, and conditional references
 * (`Patient?identifier=...`) become the one resource they match.
 */

/** A conditional reference: `Type?query`. */
export const CONDITIONAL_REFERENCE = /^([A-Z][A-Za-z]+)\?(.+)$/;

/**
 * Walks `value` (iteratively; resources can be deep) and rewrites it in place, so that
 * - every `reference` element is replaced by `resolve(reference)` when that gives a value, and
 * - every other string equal to a `urn:` fullUrl in `urnMap` is replaced (uri elements such as
 *   Attachment.url may point at entries too), and such urns inside narrative are rewritten.
 */
export function rewriteReferences(
  value: unknown,
  resolve: (reference: string) => string | undefined,
  urnMap: Map<string, string>,
): unknown {
  const root: { v: unknown } = { v: value };
  const stack: [Record<string, unknown> | unknown[], string | number][] = [[root as Record<string, unknown>, 'v']];
  while (stack.length > 0) {
    const [parent, key] = stack.pop() as [Record<string, unknown> & unknown[], string | number];
    const v = parent[key as never] as unknown;
    if (typeof v === 'string') {
      if (key === 'reference') {
        const r = resolve(v);
        if (r !== undefined) {
          (parent as Record<string, unknown>)[key] = r;
        }
      } else if (key === 'div' && v.includes('urn:')) {
        (parent as Record<string, unknown>)[key] = v.replace(/urn:(uuid|oid):[A-Za-z0-9.\-]+/g, (m) => urnMap.get(m) ?? m);
      } else if (v.startsWith('urn:') && urnMap.has(v)) {
        (parent as Record<string, unknown>)[key as string] = urnMap.get(v);
      }
    } else if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        stack.push([v, i]);
      }
    } else if (typeof v === 'object' && v !== null) {
      for (const k of Object.keys(v)) {
        stack.push([v as Record<string, unknown>, k]);
      }
    }
  }
  return root.v;
}
