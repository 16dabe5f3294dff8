/** Dispatch from a parameter type to its extractor module. */
import type { SearchParamType } from '../definitions';
import type { TypedValue } from '../fhirpath';
import type { ExtractContext } from './context';
import { dateValues } from './date';
import { numberValues } from './number';
import { quantityValues } from './quantity';
import { referenceValues } from './reference';
import type { CompositeComponent } from './rows';
import { stringValues } from './string';
import { tokenValues } from './token';
import { uriValues } from './uri';

/** The component values (type-tagged) one typed value contributes to a parameter of `type`. */
export function valuesOf(type: SearchParamType, tv: TypedValue, ctx: ExtractContext): CompositeComponent[] {
  switch (type) {
    case 'string':
      return stringValues(tv).map((v) => ({ type, ...v }));
    case 'token':
      return tokenValues(tv).map((v) => ({ type, ...v }));
    case 'reference':
      return referenceValues(tv, ctx).map((v) => ({ type, ...v }));
    case 'date':
      return dateValues(tv).map((v) => ({ type, ...v }));
    case 'number':
      return numberValues(tv).map((v) => ({ type, ...v }));
    case 'quantity':
      return quantityValues(tv).map((v) => ({ type, ...v }));
    case 'uri':
      return uriValues(tv).map((v) => ({ type, ...v }));
    case 'composite':
    case 'special':
      return [];
  }
}

/** A key identifying a value's content, for removing duplicates. */
export function valueKey(v: object): string {
  let key = '';
  for (const x of Object.values(v)) {
    key += (x === null ? '\u0000' : String(x)) + '\u001f';
  }
  return key;
}
