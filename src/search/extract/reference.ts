/**
 * reference parameters: Reference elements, canonical/uri values, and inline resources. See
 * ReferenceValue for how each form is stored.
 */
import type { TypedValue } from '../fhirpath';
import { type ExtractContext, obj, str } from './context';
import type { ReferenceValue } from './rows';

const ID = '[A-Za-z0-9\\-.]{1,64}';
/** `Type/id` or `Type/id/_history/vid`, at the end of a relative or absolute reference. */
const LITERAL = new RegExp(`^(?:(.*)/)?([A-Z][A-Za-z]+)/(${ID})(?:/_history/(${ID}))?$`);

function empty(): ReferenceValue {
  return { targetType: null, targetId: null, version: null, url: null, identifierSystem: null, identifierValue: null };
}

/**
 * Parses a literal reference string. `canonical` (canonical and uri elements): split `|version` and
 * keep the URL as written, since canonicals are matched by URL, never by id. `typeHint`:
 * Reference.type, used when the string itself does not say.
 */
export function parseReference(
  ref: string,
  ctx: Pick<ExtractContext, 'baseUrl' | 'resource'>,
  canonical = false,
  typeHint?: string,
): ReferenceValue {
  const out = empty();
  let s = ref.trim();
  if (canonical) {
    const bar = s.indexOf('|');
    if (bar >= 0) {
      out.version = s.slice(bar + 1) || null;
      s = s.slice(0, bar);
    }
    out.url = s;
    out.targetType = LITERAL.exec(s)?.[2] ?? typeHint ?? null;
    return out;
  }
  if (s.startsWith('#')) {
    // Contained: kept as written; the type comes from the contained resource when present.
    out.url = s;
    const id = s.slice(1);
    const found = ctx.resource.contained?.find((c) => str(c, 'id') === id);
    out.targetType = str(found, 'resourceType') ?? typeHint ?? null;
    return out;
  }
  const local = ctx.baseUrl && s.startsWith(ctx.baseUrl + '/') ? s.slice(ctx.baseUrl.length + 1) : s;
  const m = LITERAL.exec(local);
  if (m && m[1] === undefined) {
    // Relative, or absolute under our base URL: a local reference.
    out.targetType = m[2];
    out.targetId = m[3];
    out.version = m[4] ?? null;
    return out;
  }
  // Absolute URL elsewhere, urn:uuid:, urn:oid:, or anything else: matched by URL.
  out.url = s;
  if (m && /^[a-z][a-z0-9+.-]*:\/\//i.test(m[1])) {
    out.targetType = m[2];
    out.version = m[4] ?? null;
  } else {
    out.targetType = typeHint ?? null;
  }
  return out;
}

export function referenceValues(tv: TypedValue, ctx: ExtractContext): ReferenceValue[] {
  const v = tv.value;
  if (typeof v === 'string') {
    const canonical = tv.type === 'canonical' || tv.type === 'uri' || tv.type === 'url';
    return [parseReference(v, ctx, canonical)];
  }
  if (typeof v !== 'object' || v === null) {
    return [];
  }
  if (tv.type === 'Reference') {
    const ref = str(v, 'reference');
    const typeHint = str(v, 'type');
    const ident = obj(v, 'identifier');
    let out: ReferenceValue;
    if (ref !== undefined) {
      out = parseReference(ref, ctx, false, typeHint);
    } else if (ident !== undefined) {
      out = empty();
      out.targetType = typeHint ?? null;
    } else {
      return [];
    }
    if (ident !== undefined) {
      out.identifierSystem = str(ident, 'system') ?? null;
      out.identifierValue = str(ident, 'value') ?? null;
    }
    return [out];
  }
  // An inline resource (Bundle.entry[0].resource): a reference to it.
  const rt = str(v, 'resourceType');
  if (rt !== undefined) {
    const out = empty();
    out.targetType = rt;
    out.targetId = str(v, 'id') ?? null;
    return out.targetId === null ? [] : [out];
  }
  return [];
}
