/**
 * number parameters: decimals and integers (value = low = high), and Range (value null, open ends
 * infinite). Search precision (`100` matches [99.5, 100.5)) is applied on the query side.
 */
import type { TypedValue } from '../fhirpath';
import { num, obj } from './context';
import type { NumberValue } from './rows';

export function numberValues(tv: TypedValue): NumberValue[] {
  const v = tv.value;
  if (typeof v === 'number') {
    return Number.isFinite(v) ? [{ value: v, low: v, high: v }] : [];
  }
  if (typeof v === 'string' && tv.type !== 'string' && /^-?\d+(\.\d+)?([eE][+-]?\d+)?$/.test(v)) {
    const n = Number(v);
    return [{ value: n, low: n, high: n }];
  }
  if (typeof v !== 'object' || v === null) {
    return [];
  }
  if (tv.type === 'Range') {
    const low = num(obj(v, 'low'), 'value');
    const high = num(obj(v, 'high'), 'value');
    if (low === undefined && high === undefined) {
      return [];
    }
    return [{ value: null, low: low ?? -Infinity, high: high ?? Infinity }];
  }
  // A Quantity-like value used as a number.
  const value = num(v, 'value');
  return value === undefined ? [] : [{ value, low: value, high: value }];
}
