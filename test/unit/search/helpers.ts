/** Shared helpers for the search extraction tests. */
import { createRegistry, type SearchParamRegistry } from '../../../src/search/definitions';
import { extractIndexValues, type ExtractOptions, type IndexRows } from '../../../src/search/extract';

let shared: SearchParamRegistry | undefined;

/** The base R4 registry, built once per test file (tests that add parameters make their own). */
export function baseRegistry(): SearchParamRegistry {
  shared ??= createRegistry();
  return shared;
}

/**
 * Extracts with the base registry and fails the test on any expression error: a base parameter
 * that throws is a bug, not data.
 */
export function extract(resource: { resourceType: string; [key: string]: unknown }, options: ExtractOptions = {}, registry = baseRegistry()): IndexRows {
  const errors: string[] = [];
  const rows = extractIndexValues(resource, registry, {
    ...options,
    onError: (def, err) => errors.push(`${def.code}: ${(err as Error).message}`),
  });
  expect(errors).toEqual([]);
  return rows;
}

/** The rows of one parameter, without their `code`. */
export function rowsOf<K extends keyof IndexRows>(rows: IndexRows, type: K, code: string): Omit<IndexRows[K][number], 'code'>[] {
  return (rows[type] as IndexRows[K][number][])
    .filter((r) => r.code === code)
    .map((r) => {
      const { code: _code, ...rest } = r;
      return rest;
    });
}
