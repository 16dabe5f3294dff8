/**
 * token parameters (`[system]|[code]`, `:text`, `:of-type`, `:not`). See TokenValue for what each
 * FHIR type contributes.
 */
import type { TypedValue } from '../fhirpath';
import { arr, obj, str } from './context';
import type { TokenValue } from './rows';
import { normalizeString } from './string';

function row(system: string | null, value: string | null, text: string | undefined): TokenValue {
  return { system, value, text: text === undefined ? null : normalizeString(text) || null, typeSystem: null, typeCode: null };
}

function coding(c: unknown, out: TokenValue[]): void {
  const system = str(c, 'system') ?? null;
  const code = str(c, 'code') ?? null;
  const display = str(c, 'display');
  if (code !== null || system !== null || display !== undefined) {
    out.push(row(system, code, display));
  }
}

function identifier(v: unknown, out: TokenValue[]): void {
  const system = str(v, 'system') ?? null;
  const value = str(v, 'value') ?? null;
  const type = obj(v, 'type');
  const typeText = str(type, 'text');
  if (system === null && value === null && type === undefined) {
    return;
  }
  const codings = arr(type, 'coding').filter((c) => str(c, 'code') !== undefined);
  if (codings.length === 0) {
    out.push(row(system, value, typeText));
    return;
  }
  for (const c of codings) {
    out.push({ ...row(system, value, typeText), typeSystem: str(c, 'system') ?? null, typeCode: str(c, 'code') ?? null });
  }
}

export function tokenValues(tv: TypedValue): TokenValue[] {
  const v = tv.value;
  const out: TokenValue[] = [];
  if (typeof v === 'string') {
    out.push(row(null, v, undefined));
    return out;
  }
  if (typeof v === 'boolean' || typeof v === 'number') {
    out.push(row(null, String(v), undefined));
    return out;
  }
  if (typeof v !== 'object' || v === null) {
    return out;
  }
  switch (tv.type ?? '') {
    case 'Coding':
      coding(v, out);
      break;
    case 'CodeableConcept': {
      for (const c of arr(v, 'coding')) {
        coding(c, out);
      }
      const text = str(v, 'text');
      if (text !== undefined) {
        // A coding whose display reads the same (normalized) already answers `:text` with this
        // text, and `:missing` with its row: a row of the text alone would repeat it. (Synthea
        // writes every text as its coding's display: a quarter of the token rows were these.)
        const textRow = row(null, null, text);
        if (!out.some((r) => r.text === textRow.text)) {
          out.push(textRow);
        }
      }
      break;
    }
    case 'Identifier':
      identifier(v, out);
      break;
    case 'ContactPoint': {
      const value = str(v, 'value');
      if (value !== undefined) {
        out.push(row(str(v, 'system') ?? null, value, undefined));
      }
      break;
    }
    default:
      break;
  }
  return out;
}
