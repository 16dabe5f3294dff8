/**
 * quantity parameters: Quantity and its profiles (Age, Duration, Distance, Count, SimpleQuantity),
 * Money, and Range (low/high; unit from whichever end has one). SampledData is not indexed.
 *
 * UCUM quantities also get a canonical form (base units, via the UCUM library fhirpath.js ships), so
 * `100 mg/dL` and `1 g/L` can be compared; the conversion factor is cached per unit.
 */
import * as fhirpath from 'fhirpath';
import type { TypedValue } from '../fhirpath';
import { num, obj, str } from './context';
import type { QuantityValue } from './rows';

export const UCUM = 'http://unitsofmeasure.org';
const CURRENCY = 'urn:iso:std:iso:4217';

interface Ucum {
  convertToBaseUnits(unit: string, value: number): {
    status: string;
    magnitude?: number;
    unitToExp?: Record<string, number>;
    fromUnitIsSpecial?: boolean;
  };
}

/** Per unit: a linear factor and the canonical unit text, `special` for non-linear units, or null. */
type Conversion = { factor: number; unit: string } | 'special' | null;
const conversions = new Map<string, Conversion>();
const MAX_CACHED_UNITS = 10_000;

function canonicalUnitText(exps: Record<string, number>): string {
  const keys = Object.keys(exps).sort();
  return keys.length === 0 ? '1' : keys.map((k) => (exps[k] === 1 ? k : `${k}${exps[k]}`)).join('.');
}

/** Rounds away binary noise from the conversion (15 significant digits). */
function tidy(n: number): number {
  return Number(n.toPrecision(15));
}

/** The value in UCUM base units, or undefined when the unit is not valid UCUM. */
export function toCanonical(value: number, unit: string): { value: number; unit: string } | undefined {
  const ucum = fhirpath.ucumUtils as Ucum;
  let conv = conversions.get(unit);
  if (conv === undefined) {
    try {
      const r = ucum.convertToBaseUnits(unit, 1);
      if (r.status !== 'succeeded' || r.magnitude === undefined || !r.unitToExp) {
        conv = null;
      } else if (r.fromUnitIsSpecial) {
        conv = 'special';
      } else {
        conv = { factor: r.magnitude, unit: canonicalUnitText(r.unitToExp) };
      }
    } catch {
      conv = null;
    }
    if (conversions.size < MAX_CACHED_UNITS) {
      conversions.set(unit, conv);
    }
  }
  if (conv === null) {
    return undefined;
  }
  if (conv === 'special') {
    // Non-linear units (Cel, [degF], pH...): convert each value.
    const r = ucum.convertToBaseUnits(unit, value);
    return r.status === 'succeeded' && r.magnitude !== undefined && r.unitToExp
      ? { value: tidy(r.magnitude), unit: canonicalUnitText(r.unitToExp) }
      : undefined;
  }
  return { value: tidy(value * conv.factor), unit: conv.unit };
}

function fromQuantity(q: unknown, money: boolean): QuantityValue | undefined {
  const value = num(q, 'value');
  if (value === undefined) {
    return undefined;
  }
  const system = money ? CURRENCY : (str(q, 'system') ?? null);
  const unitCode = money ? (str(q, 'currency') ?? null) : (str(q, 'code') ?? null);
  const unit = money ? null : (str(q, 'unit') ?? null);
  let low = value;
  let high = value;
  switch (str(q, 'comparator') ?? '') {
    case '<':
    case '<=':
      low = -Infinity;
      break;
    case '>':
    case '>=':
      high = Infinity;
      break;
    default:
      break;
  }
  const canonical = system === UCUM && unitCode !== null ? toCanonical(value, unitCode) : undefined;
  return {
    value,
    low,
    high,
    system,
    unitCode,
    unit,
    canonicalValue: canonical?.value ?? null,
    canonicalUnit: canonical?.unit ?? null,
  };
}

function fromRange(r: unknown): QuantityValue | undefined {
  const lo = obj(r, 'low');
  const hi = obj(r, 'high');
  const l = lo ? fromQuantity(lo, false) : undefined;
  const h = hi ? fromQuantity(hi, false) : undefined;
  if (!l && !h) {
    return undefined;
  }
  const unitOf = l ?? h!;
  const canonicalOk = (!l || l.canonicalValue !== null) && (!h || h.canonicalValue !== null);
  return {
    value: null,
    low: l ? l.value! : -Infinity,
    high: h ? h.value! : Infinity,
    system: unitOf.system,
    unitCode: unitOf.unitCode,
    unit: unitOf.unit,
    // For a Range the canonical value is the low end (or high when open below).
    canonicalValue: canonicalOk ? (l ? l.canonicalValue : h!.canonicalValue) : null,
    canonicalUnit: canonicalOk ? unitOf.canonicalUnit : null,
  };
}

export function quantityValues(tv: TypedValue): QuantityValue[] {
  const v = tv.value;
  if (typeof v !== 'object' || v === null) {
    if (typeof v === 'number') {
      return [{ value: v, low: v, high: v, system: null, unitCode: null, unit: null, canonicalValue: null, canonicalUnit: null }];
    }
    return [];
  }
  let q: QuantityValue | undefined;
  switch (tv.type ?? '') {
    case 'Range':
      q = fromRange(v);
      break;
    case 'Money':
      q = fromQuantity(v, true);
      break;
    case 'SampledData':
    case 'Ratio':
      q = undefined;
      break;
    default:
      q = fromQuantity(v, false);
      break;
  }
  return q ? [q] : [];
}
