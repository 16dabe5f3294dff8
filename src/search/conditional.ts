/**
 * The search used by conditional interactions (If-None-Exist, conditional update/delete, conditional
 * references in transactions): a query string -> store filters -> matching ids.
 *
 * This is the Core issue's subset (`_id`, `identifier`, `url`); the Search issue replaces the parser with the
 * full SearchParameter-driven one, and keeps this function's contract.
 */
import { badRequest } from '../errors';
import type { SearchFilter, StoreReader } from '../store/api';

/** Parameters this search understands. */
export const CONDITIONAL_PARAMS = ['_id', 'identifier', 'url'] as const;

/** Splits `a|b` on the first unescaped `|` (FHIR search escaping: `\|`). */
function splitToken(value: string): { system?: string | null; value: string } {
  const m = /^((?:[^|\\]|\\.)*)\|(.*)$/.exec(value);
  const unescape = (s: string): string => s.replace(/\\([|,$\\])/g, '$1');
  if (!m) {
    return { value: unescape(value) };
  }
  return { system: m[1] === '' ? null : unescape(m[1]), value: unescape(m[2]) };
}

/** Splits a comma-separated OR list, honouring `\,`. */
function splitOr(value: string): string[] {
  return value.split(/(?<!\\),/);
}

export function parseConditional(resourceType: string, query: string): SearchFilter[] {
  const params = new URLSearchParams(query.startsWith('?') ? query.slice(1) : query);
  const filters: SearchFilter[] = [];
  for (const [name, value] of params) {
    if (value === '') {
      throw badRequest(`Search parameter '${name}' has an empty value`);
    }
    switch (name) {
      case '_id':
        filters.push({ kind: 'id', ids: splitOr(value) });
        break;
      case 'identifier':
        filters.push({ kind: 'identifier', values: splitOr(value).map(splitToken) });
        break;
      case 'url':
        // Canonical resources (StructureDefinition, ValueSet, ...): exact match on url.
        filters.push({ kind: 'element', element: 'url', values: splitOr(value) });
        break;
      default:
        throw badRequest(
          `Search parameter '${name}' is not supported on ${resourceType} for conditional operations (supported: ${CONDITIONAL_PARAMS.join(', ')})`,
        );
    }
  }
  if (filters.length === 0) {
    throw badRequest(`A conditional operation needs search criteria, got '${query}'`);
  }
  return filters;
}

/** Ids of current resources matching the criteria (at most `limit`; enough to tell 0, 1 or many). */
export async function matchIds(store: StoreReader, resourceType: string, query: string, limit = 2): Promise<string[]> {
  const filters = parseConditional(resourceType, query);
  const found = await store.search({ resourceType, filters, count: limit });
  return found.versions.map((v) => v.id);
}
