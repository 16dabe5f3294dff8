/**
 * The typed index rows extracted from a resource at write time: one array per search parameter type.
 * Every row carries `code`, the search parameter's code (`name`, `identifier`, `_lastUpdated`); the
 * store adds (resource_type, id). One row per value: a parameter with several values (several
 * codings, names, identifiers) has several rows, and a resource without a value has none (which is
 * what `:missing=true` tests).
 *
 * Each `XxxValue` is the row without `code`; composites reuse them as components.
 */

/** string: `value` as written; `normalized` is what matching uses (see normalizeString). */
export interface StringValue {
  value: string;
  /** Lower-cased, accents stripped (NFD minus combining marks), whitespace collapsed. */
  normalized: string;
}

/**
 * token: `system|value`. One row per coding / identifier / contact point / code / boolean.
 * - Coding: system, value = code, text = display.
 * - CodeableConcept: one row per coding (text = the coding's display), plus a row with only
 *   `text` = CodeableConcept.text when present (value and system null) for `:text`.
 * - Identifier: system, value, text = type.text, typeSystem/typeCode = a type coding (`:of-type`;
 *   one row per type coding).
 * - ContactPoint: system = ContactPoint.system (`phone`, `email`), value = ContactPoint.value.
 * - code / string / id / uri: system null (the bound code system is not looked up), value as written.
 * - boolean: value `true` / `false`.
 */
export interface TokenValue {
  system: string | null;
  value: string | null;
  /** For `:text`: display / CodeableConcept.text / Identifier.type.text, normalized like strings. */
  text: string | null;
  /** Identifier.type coding (for `:of-type`); null for everything else. */
  typeSystem: string | null;
  typeCode: string | null;
}

/**
 * reference. Literal references are parsed:
 * - `Patient/123`, `Patient/123/_history/2`, and absolute URLs under the server's base URL: local;
 *   targetType + targetId (+ version), url null.
 * - other absolute URLs (`http://other/fhir/Patient/1`), `urn:uuid:`, `urn:oid:`, contained `#id`:
 *   url = the reference as written; targetType when it can be read from the URL (or Reference.type,
 *   or the contained resource), targetId null.
 * - canonical (`http://x/Questionnaire/q|1.0`): url = the part before `|`, version = after.
 * - Reference.identifier (logical reference): identifierSystem / identifierValue (`:identifier`),
 *   with url/targetId null when there is no literal reference.
 * - inline resources (Bundle.entry[0].resource): local reference to its type and id.
 */
export interface ReferenceValue {
  targetType: string | null;
  targetId: string | null;
  version: string | null;
  url: string | null;
  identifierSystem: string | null;
  identifierValue: string | null;
}

/**
 * date: the range of instants the value covers, [start, end): ISO 8601 UTC with milliseconds
 * (`2020-03-01T00:00:00.000Z`), or `-infinity` / `infinity` for an open Period end. These literals are
 * what PostgreSQL's timestamptz accepts.
 * - date / dateTime / instant: precision-aware (`2020` is the whole year); no zone given = UTC.
 * - Period: [start of period.start, end of period.end), missing ends open.
 * - Timing: one row from the earliest event / bounds start to the latest event / bounds end.
 */
export interface DateValue {
  start: string;
  end: string;
}

/**
 * number: `value` is the number; [low, high] is the interval matched (equal to value for a plain
 * number, the Range for a Range; open ends are -Infinity / Infinity). Stored precision is not kept.
 */
export interface NumberValue {
  value: number | null;
  low: number;
  high: number;
}

/**
 * quantity: value + system + unit code. [low, high] as for numbers, widened by a comparator (`<5` is
 * (-Infinity, 5]) or from a Range (value null). `canonicalValue`/`canonicalUnit`: the value in UCUM
 * base units (`mg/dL` 100 -> `g.m-3` 1000) when system is UCUM and the unit converts, else null.
 * Money: system `urn:iso:std:iso:4217`, unitCode = currency.
 */
export interface QuantityValue {
  value: number | null;
  low: number;
  high: number;
  system: string | null;
  /** Quantity.code (the coded unit). */
  unitCode: string | null;
  /** Quantity.unit (the human-readable unit). */
  unit: string | null;
  canonicalValue: number | null;
  canonicalUnit: string | null;
}

/** uri: `value` without a canonical `|version`; `version` is that suffix (null when none). */
export interface UriValue {
  value: string;
  version: string | null;
}

/** One component of a composite tuple, tagged with its type. */
export type CompositeComponent =
  | ({ type: 'string' } & StringValue)
  | ({ type: 'token' } & TokenValue)
  | ({ type: 'reference' } & ReferenceValue)
  | ({ type: 'date' } & DateValue)
  | ({ type: 'number' } & NumberValue)
  | ({ type: 'quantity' } & QuantityValue)
  | ({ type: 'uri' } & UriValue);

/**
 * composite: one row per combination of component values WITHIN one repetition (one
 * Observation.component, one useContext), so `code-value-quantity=loinc|8480-6$gt100` can only match
 * a code and a value of the same repetition. `components[i]` answers the parameter's i-th component.
 */
export interface CompositeValue {
  components: CompositeComponent[];
}

export type StringRow = { code: string } & StringValue;
export type TokenRow = { code: string } & TokenValue;
export type ReferenceRow = { code: string } & ReferenceValue;
export type DateRow = { code: string } & DateValue;
export type NumberRow = { code: string } & NumberValue;
export type QuantityRow = { code: string } & QuantityValue;
export type UriRow = { code: string } & UriValue;
export type CompositeRow = { code: string } & CompositeValue;

/** Everything indexed for one resource. */
export interface IndexRows {
  string: StringRow[];
  token: TokenRow[];
  reference: ReferenceRow[];
  date: DateRow[];
  number: NumberRow[];
  quantity: QuantityRow[];
  uri: UriRow[];
  composite: CompositeRow[];
}

/** Parameter types that produce rows (everything but `special`). */
export type IndexedType = keyof IndexRows;

export function emptyRows(): IndexRows {
  return { string: [], token: [], reference: [], date: [], number: [], quantity: [], uri: [], composite: [] };
}
