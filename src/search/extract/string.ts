/**
 * string parameters. Matching is case- and accent-insensitive starts-with by default (`:contains`
 * anywhere, `:exact` on `value`), so each value is stored with its normalized form; the query side
 * normalizes search values with the same `normalizeString`.
 *
 * HumanName and Address expand to their parts (R4 search: a string search on them matches any of
 * family, given, prefix, suffix, text / line, city, district, state, postalCode, country, text).
 */
import type { TypedValue } from '../fhirpath';
import { arr, str } from './context';
import type { StringValue } from './rows';

const ASCII = /^[\x00-\x7f]*$/;
const COMBINING = /\p{M}/gu;
const SPACES = /\s+/g;

/** Lower case, accents removed (NFD without combining marks), whitespace collapsed and trimmed. */
export function normalizeString(s: string): string {
  const base = ASCII.test(s) ? s : s.normalize('NFD').replace(COMBINING, '');
  return base.toLowerCase().replace(SPACES, ' ').trim();
}

const NAME_PARTS = ['family', 'given', 'prefix', 'suffix', 'text'];
const ADDRESS_PARTS = ['line', 'city', 'district', 'state', 'postalCode', 'country', 'text'];

function parts(value: unknown, keys: string[], out: string[]): void {
  for (const k of keys) {
    for (const v of arr(value, k)) {
      if (typeof v === 'string') {
        out.push(v);
      }
    }
  }
}

/** The strings a value contributes to a string parameter. */
export function stringsOf(tv: TypedValue): string[] {
  const v = tv.value;
  if (typeof v === 'string') {
    return [v];
  }
  if (typeof v !== 'object' || v === null) {
    return [];
  }
  const out: string[] = [];
  switch (tv.type ?? '') {
    case 'HumanName':
      parts(v, NAME_PARTS, out);
      break;
    case 'Address':
      parts(v, ADDRESS_PARTS, out);
      break;
    case 'CodeableConcept':
    case 'Annotation':
      pushStr(out, str(v, 'text'));
      break;
    case 'Coding':
      pushStr(out, str(v, 'display'));
      break;
    case 'ContactPoint':
    case 'Identifier':
      pushStr(out, str(v, 'value'));
      break;
    default:
      break;
  }
  return out;
}

function pushStr(out: string[], s: string | undefined): void {
  if (s !== undefined) {
    out.push(s);
  }
}

export function stringValues(tv: TypedValue): StringValue[] {
  const out: StringValue[] = [];
  for (const s of stringsOf(tv)) {
    const normalized = normalizeString(s);
    if (normalized !== '') {
      out.push({ value: s, normalized });
    }
  }
  return out;
}
