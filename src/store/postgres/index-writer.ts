/**
 * Search index rows (one table per parameter type, migrations/002_search.sql) as the jsonb document
 * the write functions of migrations/003_write_functions.sql take: {"token": [[type, id, code,
 * system, value, ...], ...], ...}, columns in table order. One document carries the rows of any
 * number of resources, so a transaction Bundle's index is written by one function call.
 */
import type { CompositeComponent, IndexRows } from '../../search/extract/rows';
import type { ProjectionRow } from '../projections';
import type { Queryable } from './driver';
import { LAST_UPDATED } from './search-sql';

/** A resource's index rows and projection rows (written and replaced together). */
export type ExtractedRows = IndexRows & { projections?: ProjectionRow[] };

/** Computes a resource's index rows (the search layer's extractor, injected by the wiring). */
export type Indexer = (resource: { resourceType: string; [key: string]: unknown }) => ExtractedRows;

/** JSON has no infinities; numeric columns accept these strings. */
const num = (v: unknown): unknown => (v === Infinity ? 'Infinity' : v === -Infinity ? '-Infinity' : v);

/** Each type's columns after (resource_type, id, code), in table order. */
const COLUMNS: { [K in keyof IndexRows]: (row: IndexRows[K][number]) => unknown[] } = {
  string: (r) => [r.value, r.normalized],
  token: (r) => [r.system, r.value, r.text, r.typeSystem, r.typeCode],
  reference: (r) => [r.targetType, r.targetId, r.version, r.url, r.identifierSystem, r.identifierValue],
  date: (r) => [r.start, r.end],
  number: (r) => [num(r.value), num(r.low), num(r.high)],
  quantity: (r) => [num(r.value), num(r.low), num(r.high), r.system, r.unitCode, r.unit, num(r.canonicalValue), r.canonicalUnit],
  uri: (r) => [r.value, r.version],
  composite: (r) => [r.components.map(storedComponent)],
};

/**
 * A composite's component as stored in jsonb: without its type tag and its null fields, which
 * nothing reads (search-sql.ts componentCond reads fields with `->>`, which answers null for an
 * absent key as for a JSON null). Half the bytes to send, parse and store.
 */
function storedComponent(c: CompositeComponent): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(c)) {
    if (key !== 'type' && value !== null && value !== undefined) {
      out[key] = num(value);
    }
  }
  return out;
}

/** Index rows of many resources, gathered for one write. */
export class IndexBatch {
  private readonly rows: Partial<Record<keyof IndexRows | 'projection', unknown[][]>> = {};
  private count = 0;

  add(resourceType: string, id: string, index: ExtractedRows): void {
    if (index.projections && index.projections.length > 0) {
      const out = (this.rows.projection ??= []);
      for (const row of index.projections) {
        out.push([resourceType, id, row.code, row.key, row.data]);
        this.count++;
      }
    }
    for (const key of Object.keys(COLUMNS) as (keyof IndexRows)[]) {
      const list = index[key];
      if (list.length === 0) {
        continue;
      }
      const columns = COLUMNS[key] as (row: unknown) => unknown[];
      const out = (this.rows[key] ??= []);
      for (const row of list) {
        if ((key === 'token' && row.code === '_id') || (key === 'date' && row.code === LAST_UPDATED)) {
          // Searched on resource_current's id and last_updated (search-sql.ts): rows never read.
          continue;
        }
        out.push([resourceType, id, row.code, ...columns(row).map((v) => v ?? null)]);
        this.count++;
      }
    }
  }

  get empty(): boolean {
    return this.count === 0;
  }

  /** The jsonb argument of continuum_create / continuum_write_version / continuum_insert_index. */
  json(): string | null {
    return this.count === 0 ? null : JSON.stringify(this.rows);
  }
}

/** Replaces the index rows of the given resources (reindexing) in one round trip. */
export async function replaceIndexRows(q: Queryable, resources: { resourceType: string; id: string }[], batch: IndexBatch): Promise<void> {
  await q.query(
    'SELECT continuum_replace_index($1::text[], $2::text[], $3::jsonb)',
    [resources.map((r) => r.resourceType), resources.map((r) => r.id), batch.json()],
    { prepare: true },
  );
}
