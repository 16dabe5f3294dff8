/**
 * Writing search index rows (one table per parameter type, migrations/002_search.sql). Rows for many
 * resources are gathered and written with one statement: one `unnest` insert per non-empty table,
 * joined as data-modifying CTEs, so a write costs one round trip however many parameters it has.
 */
import type { IndexRows } from '../../search/extract/rows';
import type { Queryable } from './driver';

/** Computes a resource's index rows (the search layer's extractor, injected by the wiring). */
export type Indexer = (resource: { resourceType: string; [key: string]: unknown }) => IndexRows;

interface TableSpec {
  table: string;
  /** Columns after (resource_type, id, code), with their SQL array types. */
  columns: [name: string, sqlType: string][];
  values: (row: Record<string, unknown>) => unknown[];
}

const num = (v: unknown): unknown => (v === Infinity ? 'Infinity' : v === -Infinity ? '-Infinity' : v);

const TABLES: Record<keyof IndexRows, TableSpec> = {
  string: { table: 'search_string', columns: [['value', 'text'], ['normalized', 'text']], values: (r) => [r.value, r.normalized] },
  token: {
    table: 'search_token',
    columns: [['system', 'text'], ['value', 'text'], ['text', 'text'], ['type_system', 'text'], ['type_code', 'text']],
    values: (r) => [r.system, r.value, r.text, r.typeSystem, r.typeCode],
  },
  reference: {
    table: 'search_reference',
    columns: [['target_type', 'text'], ['target_id', 'text'], ['version', 'text'], ['url', 'text'], ['identifier_system', 'text'], ['identifier_value', 'text']],
    values: (r) => [r.targetType, r.targetId, r.version, r.url, r.identifierSystem, r.identifierValue],
  },
  date: { table: 'search_date', columns: [['start_at', 'timestamptz'], ['end_at', 'timestamptz']], values: (r) => [r.start, r.end] },
  number: {
    table: 'search_number',
    columns: [['value', 'numeric'], ['low', 'numeric'], ['high', 'numeric']],
    values: (r) => [num(r.value), num(r.low), num(r.high)],
  },
  quantity: {
    table: 'search_quantity',
    columns: [['value', 'numeric'], ['low', 'numeric'], ['high', 'numeric'], ['system', 'text'], ['unit_code', 'text'], ['unit', 'text'], ['canonical_value', 'numeric'], ['canonical_unit', 'text']],
    values: (r) => [num(r.value), num(r.low), num(r.high), r.system, r.unitCode, r.unit, num(r.canonicalValue), r.canonicalUnit],
  },
  uri: { table: 'search_uri', columns: [['value', 'text'], ['version', 'text']], values: (r) => [r.value, r.version] },
  composite: { table: 'search_composite', columns: [['components', 'jsonb']], values: (r) => [JSON.stringify(r.components, (_k, v: unknown) => num(v))] },
};

export const INDEX_TABLES: readonly string[] = Object.values(TABLES).map((t) => t.table);

/** Index rows of many resources, column by column, ready for one `unnest` insert per table. */
export class IndexBatch {
  private readonly columns = new Map<keyof IndexRows, unknown[][]>();

  add(resourceType: string, id: string, rows: IndexRows): void {
    for (const key of Object.keys(TABLES) as (keyof IndexRows)[]) {
      const list = rows[key] as unknown as Record<string, unknown>[];
      if (list.length === 0) {
        continue;
      }
      const spec = TABLES[key];
      let cols = this.columns.get(key);
      if (!cols) {
        cols = Array.from({ length: 3 + spec.columns.length }, () => []);
        this.columns.set(key, cols);
      }
      for (const row of list) {
        cols[0].push(resourceType);
        cols[1].push(id);
        cols[2].push(row.code);
        spec.values(row).forEach((v, i) => cols[3 + i].push(v ?? null));
      }
    }
  }

  get empty(): boolean {
    return this.columns.size === 0;
  }

  /**
   * Inserts everything gathered (one statement) and empties the batch. `replacing` names resources
   * whose existing rows are deleted in the same statement.
   */
  async write(q: Queryable, replacing: { resourceType: string; id: string }[] = []): Promise<void> {
    const params: unknown[] = [];
    const ctes = this.ctes(params, replacing);
    if (ctes.length > 0) {
      // Replacing one resource's rows (an update) has few shapes: worth preparing.
      await q.query(`WITH ${ctes.join(',\n')} SELECT 1`, params, { prepare: replacing.length === 1 });
    }
  }

  /**
   * The batch as data-modifying CTEs (appending their values to `params`), for a caller that joins
   * them to a statement of its own. Empties the batch.
   */
  ctes(params: unknown[], replacing: { resourceType: string; id: string }[] = []): string[] {
    const ctes: string[] = [];
    if (replacing.length > 0) {
      params.push(replacing.map((r) => r.resourceType), replacing.map((r) => r.id));
      const [t, i] = [params.length - 1, params.length];
      INDEX_TABLES.forEach((table, n) =>
        ctes.push(`d${n} AS (DELETE FROM ${table} WHERE (resource_type, id) IN (SELECT * FROM unnest($${t}::text[], $${i}::text[])))`),
      );
    }
    for (const [key, cols] of this.columns) {
      const spec = TABLES[key];
      const types = ['text', 'text', 'text', ...spec.columns.map((c) => c[1])];
      const args = cols.map((values, i) => {
        params.push(values);
        return `$${params.length}::${types[i]}[]`;
      });
      const names = ['resource_type', 'id', 'code', ...spec.columns.map((c) => c[0])].join(', ');
      ctes.push(`i_${key} AS (INSERT INTO ${spec.table} (${names}) SELECT * FROM unnest(${args.join(', ')}))`);
    }
    this.columns.clear();
    return ctes;
  }
}

/** Removes a resource's index rows (on delete). */
export async function deleteIndexRows(q: Queryable, resourceType: string, id: string): Promise<void> {
  const ctes = INDEX_TABLES.map((t, i) => `d${i} AS (DELETE FROM ${t} WHERE resource_type = $1 AND id = $2)`);
  await q.query(`WITH ${ctes.join(', ')} SELECT 1`, [resourceType, id]);
}
