/**
 * Search filters (src/store/api.ts SearchFilter) -> parameterized SQL over resource_current and the
 * search_* index tables. Values only ever travel as parameters; table and column names come from
 * the fixed maps below, never from input.
 *
 * Semantics follow FHIR R4 search.html: prefixes compare the resource's range with the range the
 * search value's precision implies (#prefix, #date); `:missing` tests for any index row.
 */
import type {
  CompositeComponentMatch,
  DateMatch,
  IndexTable,
  NumberMatch,
  ReferenceMatch,
  SearchFilter,
  SortKey,
  TokenMatch,
} from '../api';

export class SqlParams {
  readonly values: unknown[] = [];
  private aliases = 0;
  /**
   * Whether EXISTS subqueries rendered now must be checked row by row (anchorSql's inner filters):
   * they end in `OFFSET 0`, which PostgreSQL never turns into a join (subselect.c,
   * simplify_EXISTS_query). Left to itself, a plan made without the values may hash every row of
   * a token lookup to check a patient's twenty observations (its estimate of a token value's
   * rows is a guess from the whole column).
   */
  perRow = false;
  /** The end of an EXISTS subquery: `OFFSET 0` when perRow. */
  get existsEnd(): string {
    return this.perRow ? ' OFFSET 0' : '';
  }
  /** A table alias unique within this statement (the same statement text for the same query shape). */
  alias(prefix: string): string {
    return `${prefix}${++this.aliases}`;
  }
  add(v: unknown, cast?: string): string {
    this.values.push(v);
    return `$${this.values.length}${cast ? '::' + cast : ''}`;
  }
}

const TABLE: Record<IndexTable, string> = {
  string: 'search_string',
  token: 'search_token',
  reference: 'search_reference',
  date: 'search_date',
  number: 'search_number',
  quantity: 'search_quantity',
  uri: 'search_uri',
  composite: 'search_composite',
};


/** Escapes LIKE wildcards so a search value is matched literally. */
function likeLiteral(v: string): string {
  return v.replace(/[\\%_]/g, (c) => '\\' + c);
}

/** Characters of a string index row's normalized value that its index holds (migrations 002). */
const STRING_INDEXED = 200;

/**
 * The least string greater than every string that starts with `prefix`, in code point order (the
 * byte order of UTF-8, which is how text_pattern_ops compares), or undefined when there is none
 * (a prefix of U+10FFFF characters only).
 */
export function prefixEnd(prefix: string): string | undefined {
  const points = Array.from(prefix);
  while (points.length > 0) {
    const last = (points.pop() as string).codePointAt(0) as number;
    if (last < 0x10ffff) {
      return points.join('') + String.fromCodePoint(last + 1 >= 0xd800 && last + 1 <= 0xdfff ? 0xe000 : last + 1);
    }
  }
  return undefined;
}

/**
 * A string index row (alias `x`) whose normalized value starts with `v` (already normalized), as
 * a range over the indexed prefix `left(normalized, 200)`: `>= v` and `< prefixEnd(v)`, in byte
 * order (the index's text_pattern_ops). Unlike `LIKE 'v%'`, a range keeps its index bounds when
 * the statement is planned without its values (a generic plan). A value longer than the indexed
 * prefix is checked on the whole value too.
 */
function startsWithCond(x: string, v: string, p: SqlParams): string {
  const points = Array.from(v);
  const head = points.length > STRING_INDEXED ? points.slice(0, STRING_INDEXED).join('') : v;
  const indexed = `left(${x}.normalized, ${STRING_INDEXED})`;
  const conds = [`${indexed} ~>=~ ${p.add(head)}`];
  const end = prefixEnd(head);
  if (end !== undefined) {
    conds.push(`${indexed} ~<~ ${p.add(end)}`);
  }
  if (head !== v || end === undefined) {
    conds.push(`${x}.normalized LIKE ${p.add(likeLiteral(v) + '%')}`);
  }
  return `(${conds.join(' AND ')})`;
}

/** EXISTS over one index table of the resource `r`, with conditions on alias `x`. */
function existsRow(table: IndexTable, r: string, code: string, p: SqlParams, cond: (x: string) => string): string {
  const x = p.alias('x');
  return `EXISTS (SELECT 1 FROM ${TABLE[table]} ${x} WHERE ${x}.resource_type = ${r}.resource_type AND ${x}.id = ${r}.id AND ${x}.code = ${p.add(code)} AND (${cond(x)})${p.existsEnd})`;
}

function any(parts: string[]): string {
  return parts.length === 0 ? 'false' : parts.length === 1 ? parts[0] : `(${parts.join(' OR ')})`;
}

export function tokenCond(col: (name: string) => string, m: TokenMatch, p: SqlParams): string {
  const c: string[] = [];
  if (m.text !== undefined) {
    c.push(`${col('text')} LIKE ${p.add(likeLiteral(m.text) + '%')}`);
  }
  if (m.typeSystem !== undefined) {
    c.push(`${col('type_system')} = ${p.add(m.typeSystem)}`, `${col('type_code')} = ${p.add(m.typeCode)}`);
  }
  if (m.value !== undefined) {
    c.push(`${col('value')} = ${p.add(m.value)}`);
  }
  if (m.system === null) {
    c.push(`${col('system')} IS NULL`);
  } else if (m.system !== undefined) {
    c.push(`${col('system')} = ${p.add(m.system)}`);
  }
  return c.length ? c.join(' AND ') : 'true';
}

export function referenceCond(col: (name: string) => string, m: ReferenceMatch, p: SqlParams): string {
  const c: string[] = [];
  if (m.targetId !== undefined) {
    c.push(`${col('target_id')} = ${p.add(m.targetId)}`);
  }
  if (m.targetType !== undefined) {
    c.push(`${col('target_type')} = ${p.add(m.targetType)}`);
  }
  if (m.url !== undefined) {
    c.push(`${col('url')} = ${p.add(m.url)}`);
  }
  if (m.identifierSystem === null) {
    c.push(`${col('identifier_system')} IS NULL`);
  } else if (m.identifierSystem !== undefined) {
    c.push(`${col('identifier_system')} = ${p.add(m.identifierSystem)}`);
  }
  if (m.identifierValue !== undefined) {
    c.push(`${col('identifier_value')} = ${p.add(m.identifierValue)}`);
  }
  return c.length ? c.join(' AND ') : 'true';
}

/** Resource range [rs, re) against search range [ss, se) (search.html#prefix, #date). */
export function dateCond(rs: string, re: string, m: DateMatch, p: SqlParams): string {
  // Parameters are added only where used: an unused one has no type PostgreSQL can infer.
  const ss = (): string => p.add(m.start, 'timestamptz');
  const se = (): string => p.add(m.end, 'timestamptz');
  const eq = (): string => `(${rs} >= ${ss()} AND ${re} <= ${se()})`;
  switch (m.prefix) {
    case 'eq':
      return eq();
    case 'ne':
      return `NOT ${eq()}`;
    case 'gt':
      return `${re} > ${se()}`;
    case 'lt':
      return `${rs} < ${ss()}`;
    case 'ge':
      return `(${re} > ${se()} OR ${eq()})`;
    case 'le':
      return `(${rs} < ${ss()} OR ${eq()})`;
    case 'sa':
      return `${rs} >= ${se()}`;
    case 'eb':
      return `${re} <= ${ss()}`;
    case 'ap':
      return `(${rs} < ${se()} AND ${re} > ${ss()})`;
  }
}

/**
 * `_lastUpdated` is read from resource_current.last_updated (indexed with the type), not from
 * index rows: every resource would have one, written and replaced on every write
 * (src/store/postgres/index-writer.ts leaves it out).
 */
export const LAST_UPDATED = '_lastUpdated';

/**
 * dateCond for an instant `t` stored to the millisecond, whose range is [t, t + 1 ms): against
 * the millisecond-aligned search range [ss, se) each prefix reduces to a comparison of `t` alone,
 * which the index on (resource_type, last_updated) serves.
 */
function lastUpdatedCond(t: string, m: DateMatch, p: SqlParams): string {
  const ss = (): string => p.add(m.start, 'timestamptz');
  const se = (): string => p.add(m.end, 'timestamptz');
  const eq = (): string => `(${t} >= ${ss()} AND ${t} < ${se()})`;
  switch (m.prefix) {
    case 'eq':
    case 'ap':
      return eq();
    case 'ne':
      return `NOT ${eq()}`;
    case 'gt':
    case 'sa':
      return `${t} >= ${se()}`;
    case 'lt':
    case 'eb':
      return `${t} < ${ss()}`;
    case 'ge':
      return `${t} >= ${ss()}`;
    case 'le':
      return `${t} < ${se()}`;
  }
}

/**
 * A resource number (point `low = high = value`, or range [low, high]) against a search number whose
 * precision implies [slow, shigh) (search.html#number).
 */
export function numberCond(low: string, high: string, m: NumberMatch, p: SqlParams): string {
  const v = (): string => p.add(m.value, 'numeric');
  const eq = (): string => `(${low} >= ${p.add(m.low, 'numeric')} AND ${high} < ${p.add(m.high, 'numeric')})`;
  switch (m.prefix) {
    case 'eq':
      return eq();
    case 'ne':
      return `NOT ${eq()}`;
    case 'gt':
      return `${high} > ${v()}`;
    case 'lt':
      return `${low} < ${v()}`;
    case 'ge':
      return `${high} >= ${v()}`;
    case 'le':
      return `${low} <= ${v()}`;
    case 'sa':
      return `${low} > ${v()}`;
    case 'eb':
      return `${high} < ${v()}`;
    case 'ap': {
      const margin = Math.abs(m.value) * 0.1;
      return `(${high} >= ${p.add(m.value - margin, 'numeric')} AND ${low} <= ${p.add(m.value + margin, 'numeric')})`;
    }
  }
}

function unitCond(col: (name: string) => string, m: NumberMatch, p: SqlParams): string {
  const c: string[] = [];
  if (m.system !== undefined) {
    c.push(`${col('system')} = ${p.add(m.system)}`);
  }
  if (m.unitCode !== undefined) {
    const u = p.add(m.unitCode);
    c.push(m.system !== undefined ? `${col('unit_code')} = ${u}` : `(${col('unit_code')} = ${u} OR ${col('unit')} = ${u})`);
  }
  return c.join(' AND ');
}

function componentCond(x: string, i: number, m: CompositeComponentMatch, p: SqlParams): string {
  const field = (name: string): string => `(${x}.components->${i}->>'${name}')`;
  const num = (name: string): string => `(${x}.components->${i}->>'${name}')::numeric`;
  const camel: Record<string, string> = { type_system: 'typeSystem', type_code: 'typeCode', target_id: 'targetId', target_type: 'targetType', identifier_system: 'identifierSystem', identifier_value: 'identifierValue', unit_code: 'unitCode' };
  const col = (name: string): string => field(camel[name] ?? name);
  switch (m.type) {
    case 'token':
      return tokenCond(col, m.match, p);
    case 'string':
      return `${field('normalized')} LIKE ${p.add(likeLiteral(m.value) + '%')}`;
    case 'reference':
      return referenceCond(col, m.match, p);
    case 'date':
      return dateCond(`${field('start')}::timestamptz`, `${field('end')}::timestamptz`, m.match, p);
    case 'number':
    case 'quantity': {
      const units = m.type === 'quantity' ? unitCond(col, m.match, p) : '';
      // Open ends are stored as null in jsonb (JSON has no Infinity).
      const low = `COALESCE(${num('low')}, '-Infinity'::numeric)`;
      const high = `COALESCE(${num('high')}, 'Infinity'::numeric)`;
      return [numberCond(low, high, m.match, p), units].filter(Boolean).join(' AND ');
    }
    case 'uri':
      return `${field('value')} = ${p.add(m.value)}`;
  }
}

type ExistsRow = typeof existsRow;

/**
 * The ids of the resources of `resourceType` matching one value filter, read from its index table
 * alone (index rows exist only for current, non-deleted versions), or undefined when the filter is
 * not a plain value filter. Over many matches this skips joining resource_current, which PostgreSQL
 * does by scanning the whole table.
 */
export function indexIdsSql(f: SearchFilter, resourceType: string, p: SqlParams): string | undefined {
  if (!['string', 'token', 'reference', 'date', 'number', 'quantity', 'uri'].includes(f.kind) || (f.kind === 'date' && f.code === LAST_UPDATED)) {
    return undefined;
  }
  const select: ExistsRow = (table, _r, code, q, cond) => {
    const x = p.alias('x');
    return `SELECT ${x}.id FROM ${TABLE[table]} ${x} WHERE ${x}.resource_type = ${q.add(resourceType)} AND ${x}.code = ${q.add(code)} AND (${cond(x)})`;
  };
  return filterSql(f, 'r', p, select);
}

/** A reference filter with one value naming one Patient (see isPatientAnchor), or undefined. */
function patientReference(f: SearchFilter): string | undefined {
  if (f.kind !== 'reference' || f.values.length !== 1) {
    return undefined;
  }
  const v = f.values[0];
  const patient = v.targetType === 'Patient' || (v.targetType === undefined && f.code === 'patient');
  return patient && v.url === undefined && v.identifierSystem === undefined && v.identifierValue === undefined ? v.targetId : undefined;
}

/**
 * Whether a search filter pins the results to one Patient's resources: a reference filter with a
 * single `Patient/id` value (`subject=Patient/x`), a bare id for a `patient` parameter (every R4
 * `patient` parameter refers to Patients only: `Observation?patient=x`), or several such filters
 * on one patient joined by OR (a Patient compartment: `Patient/x/Observation`, and what a
 * patient-scoped token may see). At most one patient's data matches it, whatever the other
 * filters, so a plan that starts from it is never a bad one. (Anchoring changes the plan, never
 * the result: a wrong guess here costs speed only.)
 */
export function isPatientAnchor(f: SearchFilter): boolean {
  if (f.kind === 'or') {
    const ids = f.filters.map(patientReference);
    return ids.length > 0 && ids[0] !== undefined && ids.every((id) => id === ids[0]);
  }
  return patientReference(f) !== undefined;
}

/** The fewest characters of a string search value that anchors a search (isStringAnchor). */
export const STRING_ANCHOR_MIN = 3;

/**
 * Whether a string filter is a lookup to start the plan from: one value of at least
 * STRING_ANCHOR_MIN characters, matched as a prefix (the default; `:exact` compares the value
 * as written, which the index does not hold, and `:contains` cannot use it). `Patient?name=smi`
 * then reads the rows of names starting with "smi" and sorts their resources: the plan that fits
 * a lookup, and one that costs in proportion to the matches when a prefix is common (PostgreSQL,
 * planning with the value, could walk the resources in sort order instead; planning a one-hit
 * name search took four times as long as running it on the embedded store).
 */
export function isStringAnchor(f: SearchFilter): boolean {
  return f.kind === 'string' && f.mode === 'starts' && f.values.length === 1 && Array.from(f.values[0]).length >= STRING_ANCHOR_MIN;
}

/**
 * An anchor (isPatientAnchor, isStringAnchor) of a search over one resource type, as `r.id IN
 * (ids)` with the ids read from the filter's index table in a fenced subquery (`OFFSET 0`:
 * PostgreSQL may not merge it into the outer query). The fence fixes the plan's shape: the
 * anchor's index, then each resource by primary key, then the other filters per row. Such a
 * statement is kept prepared and planned once (QueryOptions plan 'generic'): PostgreSQL's
 * generic plan for it (chosen without the parameter values) is the same plan, where an unfenced
 * statement's generic plan may start from whichever index looks best on average.
 */
export function anchorSql(f: SearchFilter, resourceType: string, r: string, p: SqlParams, inner: SearchFilter[] = []): string {
  if (!isPatientAnchor(f) && !isStringAnchor(f)) {
    throw new Error('not an anchor');
  }
  if (inner.some((g) => !byTypeAndId(g))) {
    throw new Error('a filter checked inside the anchor may read only the type and id');
  }
  const parts = (f.kind === 'or' ? f.filters : [f]).map((g) => indexIdsSql(g, resourceType, p) as string);
  const a = p.alias('a');
  const ids = `${parts.join(' UNION ALL ')} OFFSET 0`;
  if (inner.length === 0) {
    return `${r}.id IN (SELECT ${a}.id FROM (${ids}) ${a})`;
  }
  const u = p.alias('u');
  const rows = `SELECT ${p.add(resourceType)}::text AS resource_type, ${u}.id FROM (${ids}) ${u}`;
  const perRow = p.perRow;
  p.perRow = true;
  try {
    return `${r}.id IN (SELECT ${a}.id FROM (${rows}) ${a} WHERE ${inner.map((g) => filterSql(g, a, p)).join(' AND ')})`;
  } finally {
    p.perRow = perRow;
  }
}

/**
 * Whether a filter's SQL reads nothing of its resource but the type and id (every filter but
 * `_lastUpdated`, which reads resource_current.last_updated). An anchored search checks such
 * filters on the anchor's ids before it reads any resource (anchorSql `inner`): a patient's
 * observations of one code out of twenty are then the only rows of resource_current it fetches.
 */
export function byTypeAndId(f: SearchFilter): boolean {
  switch (f.kind) {
    case 'date':
      return f.code !== LAST_UPDATED;
    case 'not':
      return byTypeAndId(f.filter);
    case 'or':
    case 'and':
      return f.filters.every(byTypeAndId);
    case 'id':
    case 'type':
    case 'string':
    case 'token':
    case 'reference':
    case 'number':
    case 'quantity':
    case 'uri':
    case 'composite':
    case 'missing':
    case 'chain':
    case 'has':
      return true;
  }
}

/**
 * SQL for one filter over resource alias `r`. `rowOf` renders a value filter's condition on its
 * index table (by default as EXISTS correlated with `r`; indexIdsSql renders it as a SELECT).
 */
export function filterSql(f: SearchFilter, r: string, p: SqlParams, rowOf: ExistsRow = existsRow): string {
  switch (f.kind) {
    case 'id':
      return `${r}.id = ANY(${p.add(f.ids, 'text[]')})`;
    case 'string':
      return rowOf('string', r, f.code, p, (x) =>
        any(
          f.values.map((v) => {
            switch (f.mode) {
              case 'exact':
                return `${x}.value = ${p.add(v)}`;
              case 'contains':
                return `${x}.normalized LIKE ${p.add('%' + likeLiteral(v) + '%')}`;
              case 'starts':
                return startsWithCond(x, v, p);
            }
          }),
        ),
      );
    case 'token':
      return rowOf('token', r, f.code, p, (x) => any(f.values.map((m) => tokenCond((c) => `${x}.${c}`, m, p))));
    case 'reference':
      return rowOf('reference', r, f.code, p, (x) => any(f.values.map((m) => referenceCond((c) => `${x}.${c}`, m, p))));
    case 'date':
      if (f.code === LAST_UPDATED) {
        return any(f.values.map((m) => lastUpdatedCond(`${r}.last_updated`, m, p)));
      }
      return rowOf('date', r, f.code, p, (x) => any(f.values.map((m) => dateCond(`${x}.start_at`, `${x}.end_at`, m, p))));
    case 'number':
    case 'quantity':
      return rowOf(f.kind, r, f.code, p, (x) =>
        any(
          f.values.map((m) => {
            const units = f.kind === 'quantity' ? unitCond((c) => `${x}.${c}`, m, p) : '';
            return [numberCond(`${x}.low`, `${x}.high`, m, p), units].filter(Boolean).join(' AND ');
          }),
        ),
      );
    case 'uri':
      return rowOf('uri', r, f.code, p, (x) =>
        any(
          f.values.map((v) => {
            switch (f.mode) {
              case 'exact':
                return `${x}.value = ${p.add(v)}`;
              case 'below':
                return `${x}.value LIKE ${p.add(likeLiteral(v) + '%')}`;
              case 'above':
                return `${p.add(v)} LIKE (replace(replace(replace(${x}.value, '\\', '\\\\'), '%', '\\%'), '_', '\\_') || '%')`;
            }
          }),
        ),
      );
    case 'composite':
      return rowOf('composite', r, f.code, p, (x) =>
        any(f.values.map((components) => components.map((m, i) => `(${componentCond(x, i, m, p)})`).join(' AND '))),
      );
    case 'missing': {
      if (f.table === 'date' && f.code === LAST_UPDATED) {
        return f.missing ? 'false' : 'true'; // every resource has one
      }
      const x = p.alias('m');
      const exists = `EXISTS (SELECT 1 FROM ${TABLE[f.table]} ${x} WHERE ${x}.resource_type = ${r}.resource_type AND ${x}.id = ${r}.id AND ${x}.code = ${p.add(f.code)}${p.existsEnd})`;
      return f.missing ? `NOT ${exists}` : exists;
    }
    case 'not':
      return `NOT (${filterSql(f.filter, r, p)})`;
    case 'or':
      return any(f.filters.map((g) => filterSql(g, r, p)));
    case 'and':
      return f.filters.length === 0 ? 'true' : `(${f.filters.map((g) => filterSql(g, r, p)).join(' AND ')})`;
    case 'type':
      return `${r}.resource_type = ANY(${p.add(f.types, 'text[]')})`;
    case 'chain': {
      const x = p.alias('c');
      const t = p.alias('t');
      const inner = f.filters.map((g) => filterSql(g, t, p));
      return `EXISTS (SELECT 1 FROM search_reference ${x} JOIN resource_current ${t} ON ${t}.resource_type = ${x}.target_type AND ${t}.id = ${x}.target_id
        WHERE ${x}.resource_type = ${r}.resource_type AND ${x}.id = ${r}.id AND ${x}.code = ${p.add(f.code)}
        AND ${x}.target_type = ${p.add(f.targetType)} AND NOT ${t}.deleted${inner.map((c) => ' AND ' + c).join('')}${p.existsEnd})`;
    }
    case 'has': {
      const x = p.alias('h');
      const s = p.alias('s');
      const inner = f.filters.map((g) => filterSql(g, s, p));
      return `EXISTS (SELECT 1 FROM search_reference ${x} JOIN resource_current ${s} ON ${s}.resource_type = ${x}.resource_type AND ${s}.id = ${x}.id
        WHERE ${x}.resource_type = ${p.add(f.sourceType)} AND ${x}.code = ${p.add(f.code)}
        AND ${x}.target_type = ${r}.resource_type AND ${x}.target_id = ${r}.id AND NOT ${s}.deleted${inner.map((c) => ' AND ' + c).join('')}${p.existsEnd})`;
    }
  }
}

/** One ORDER BY column: an SQL expression, its type for casting cursor values, and direction. */
export interface SortColumn {
  expr: string;
  cast: string;
  descending: boolean;
}

const SORT_COLUMN: Record<Exclude<IndexTable, 'composite' | 'reference'>, { col: string; cast: string; empty: string }> = {
  string: { col: 'normalized', cast: 'text', empty: "''" },
  token: { col: 'value', cast: 'text', empty: "''" },
  date: { col: 'start_at', cast: 'timestamptz', empty: "'-infinity'::timestamptz" },
  number: { col: 'value', cast: 'numeric', empty: '0' },
  quantity: { col: 'value', cast: 'numeric', empty: '0' },
  uri: { col: 'value', cast: 'text', empty: "''" },
};

/**
 * The ORDER BY columns for the sort keys, always ending with the id so the order is total (keyset
 * paging needs that). A parameter sorts by its smallest value ascending, largest descending;
 * resources without a value come last either way (a leading "is missing" column).
 */
export function sortColumns(keys: SortKey[], r: string, p: SqlParams): SortColumn[] {
  const cols: SortColumn[] = [];
  for (const k of keys) {
    switch (k.kind) {
      case 'id':
        cols.push({ expr: `${r}.id`, cast: 'text', descending: k.descending });
        break;
      case 'lastUpdated':
        cols.push({ expr: `${r}.last_updated`, cast: 'timestamptz', descending: k.descending });
        break;
      case 'param': {
        const spec = SORT_COLUMN[k.table];
        const x = p.alias('o');
        const agg = k.descending ? 'max' : 'min';
        const sub = `(SELECT ${agg}(${x}.${spec.col}) FROM ${TABLE[k.table]} ${x} WHERE ${x}.resource_type = ${r}.resource_type AND ${x}.id = ${r}.id AND ${x}.code = ${k.codes ? `ANY(${p.add(k.codes, 'text[]')})` : p.add(k.code)})`;
        cols.push({ expr: `(${sub} IS NULL)`, cast: 'boolean', descending: false });
        cols.push({ expr: `COALESCE(${sub}, ${spec.empty})`, cast: spec.cast, descending: k.descending });
        break;
      }
    }
  }
  if (!keys.some((k) => k.kind === 'id')) {
    cols.push({ expr: `${r}.id`, cast: 'text', descending: false });
  }
  return cols;
}

/** Rows strictly after `after` in the order of `cols` (keyset paging). */
export function keysetSql(cols: SortColumn[], after: unknown[], p: SqlParams): string {
  if (cols.every((c) => c.descending === cols[0].descending)) {
    // One direction: a row comparison, which an index on the same columns can seek to directly.
    const left = cols.map((c) => c.expr).join(', ');
    const right = cols.map((c, i) => p.add(after[i], c.cast)).join(', ');
    return `((${left}) ${cols[0].descending ? '<' : '>'} (${right}))`;
  }
  const ors: string[] = [];
  for (let i = 0; i < cols.length; i++) {
    const ands: string[] = [];
    for (let j = 0; j < i; j++) {
      ands.push(`${cols[j].expr} = ${p.add(after[j], cols[j].cast)}`);
    }
    ands.push(`${cols[i].expr} ${cols[i].descending ? '<' : '>'} ${p.add(after[i], cols[i].cast)}`);
    ors.push(`(${ands.join(' AND ')})`);
  }
  return `(${ors.join(' OR ')})`;
}
