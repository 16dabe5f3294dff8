/** uri parameters: uri, url, canonical (`|version` split off), oid, uuid. */
import type { TypedValue } from '../fhirpath';
import type { UriValue } from './rows';

export function uriValues(tv: TypedValue): UriValue[] {
  const v = tv.value;
  if (typeof v !== 'string' || v === '') {
    return [];
  }
  if (tv.type === 'canonical') {
    const bar = v.indexOf('|');
    if (bar >= 0) {
      return [{ value: v.slice(0, bar), version: v.slice(bar + 1) || null }];
    }
  }
  return [{ value: v, version: null }];
}
