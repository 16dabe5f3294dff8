/**
 * The search behind conditional interactions (If-None-Exist, conditional update and delete,
 * conditional references in transactions): criteria -> matching ids, through the same parser and
 * index as any search.
 */
import { badRequest } from '../errors';
import type { StoreReader } from '../store/api';
import type { SearchParser } from './parse';

/**
 * Ids of current resources of `resourceType` matching `criteria` (a query string, with or without
 * `?`), at most `limit` of them: enough to tell none, one or several.
 */
export async function matchIds(store: StoreReader, parser: SearchParser, resourceType: string, criteria: string, limit = 2): Promise<string[]> {
  const query: Record<string, string[]> = {};
  for (const [k, v] of new URLSearchParams(criteria.startsWith('?') ? criteria.slice(1) : criteria)) {
    (query[k] ??= []).push(v);
  }
  const parsed = parser.parse(resourceType, query);
  if (parsed.filters.length === 0) {
    throw badRequest(`A conditional operation needs search criteria, got '${criteria}'`);
  }
  const page = await store.search({ resourceType, filters: parsed.filters, count: limit, sort: [{ kind: 'id', descending: false }] });
  return page.versions.map((v) => v.id);
}
