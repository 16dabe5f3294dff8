/**
 * Search filters evaluated in memory against one resource's index values (the rows
 * `extractIndexValues` makes), with the same meaning the SQL in src/store/postgres/search-sql.ts
 * gives them. Used where a resource is not in the index as it is being judged: an access check on a
 * resource about to be written, or a Bulk Data snapshot's older version of a resource changed since.
 *
 * Three-valued: `undefined` means "cannot be decided in memory" (chains, `_has`, dates, numbers,
 * quantities and composites, which need ranges or other resources); the caller decides what that
 * means for it.
 */
import type { IndexRows } from './extract';
import type { ReferenceMatch, SearchFilter, TokenMatch } from '../store/api';

export function tokenValueMatches(row: IndexRows['token'][number], m: TokenMatch): boolean {
  if (m.value !== undefined && row.value !== m.value) {
    return false;
  }
  if (m.system === null && row.system !== null) {
    return false;
  }
  if (typeof m.system === 'string' && row.system !== m.system) {
    return false;
  }
  if (m.text !== undefined && !(row.text ?? '').startsWith(m.text)) {
    return false;
  }
  if (m.typeSystem !== undefined && (row.typeSystem !== m.typeSystem || row.typeCode !== m.typeCode)) {
    return false;
  }
  return true;
}

function referenceMatches(row: IndexRows['reference'][number], m: ReferenceMatch): boolean {
  if (m.targetId !== undefined && row.targetId !== m.targetId) {
    return false;
  }
  if (m.targetType !== undefined && row.targetType !== m.targetType) {
    return false;
  }
  if (m.url !== undefined && row.url !== m.url) {
    return false;
  }
  if (m.identifierSystem === null ? row.identifierSystem !== null : m.identifierSystem !== undefined && row.identifierSystem !== m.identifierSystem) {
    return false;
  }
  if (m.identifierValue !== undefined && row.identifierValue !== m.identifierValue) {
    return false;
  }
  return true;
}

/** `:exact` compares the value as written; the others its normalized form (the parser normalizes the search value alike). */
function stringMatches(row: IndexRows['string'][number], mode: 'starts' | 'exact' | 'contains', v: string): boolean {
  switch (mode) {
    case 'exact':
      return row.value === v;
    case 'contains':
      return row.normalized.includes(v);
    case 'starts':
      return row.normalized.startsWith(v);
  }
}

/** Whether `resource` (with its index values `rows`) matches `f`; undefined when that needs the database. */
export function matchFilter(f: SearchFilter, resource: { resourceType: string; id?: string }, rows: IndexRows): boolean | undefined {
  switch (f.kind) {
    case 'id':
      return resource.id !== undefined && f.ids.includes(resource.id);
    case 'type':
      return f.types.includes(resource.resourceType);
    case 'token':
      return rows.token.some((r) => r.code === f.code && f.values.some((m) => tokenValueMatches(r, m)));
    case 'reference':
      return rows.reference.some((r) => r.code === f.code && f.values.some((m) => referenceMatches(r, m)));
    case 'string':
      return rows.string.some((r) => r.code === f.code && f.values.some((v) => stringMatches(r, f.mode, v)));
    case 'uri':
      return rows.uri.some(
        (r) =>
          r.code === f.code &&
          f.values.some((v) => (f.mode === 'exact' ? r.value === v : f.mode === 'below' ? r.value.startsWith(v) : v.startsWith(r.value))),
      );
    case 'missing': {
      const present = (rows[f.table] as { code: string }[]).some((r) => r.code === f.code);
      return f.missing ? !present : present;
    }
    case 'not': {
      const inner = matchFilter(f.filter, resource, rows);
      return inner === undefined ? undefined : !inner;
    }
    case 'and':
      return combine(f.filters, resource, rows, false);
    case 'or':
      return combine(f.filters, resource, rows, true);
    case 'date':
    case 'number':
    case 'quantity':
    case 'composite':
    case 'chain':
    case 'has':
      return undefined;
  }
}

/**
 * AND (`decisive` false) or OR (`decisive` true) in three-valued logic: the first operand equal to
 * `decisive` decides; otherwise any undecidable operand makes the result undecidable.
 */
function combine(filters: SearchFilter[], resource: { resourceType: string; id?: string }, rows: IndexRows, decisive: boolean): boolean | undefined {
  let unknown = false;
  for (const g of filters) {
    const m = matchFilter(g, resource, rows);
    if (m === decisive) {
      return decisive;
    }
    unknown ||= m === undefined;
  }
  return unknown ? undefined : !decisive;
}

/** All of `filters` (an implicit AND), three-valued like matchFilter. */
export function matchAll(filters: SearchFilter[], resource: { resourceType: string; id?: string }, rows: IndexRows): boolean | undefined {
  return matchFilter({ kind: 'and', filters }, resource, rows);
}
