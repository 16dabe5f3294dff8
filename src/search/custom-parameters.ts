/**
 * SearchParameters beyond the R4 base set: from the profiles/ folder (at start) and created through
 * the API (at start, and as they are written). They take effect for writes from then on; `$reindex`
 * (src/fhir/operations/reindex.ts) rebuilds the index of resources written before.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { OperationOutcomeIssue, Resource } from '@medplum/fhirtypes';
import type { Store } from '../store/api';
import { createRegistry, type SearchParameterResource, type SearchParamRegistry } from './definitions';

/** Adds the active SearchParameters found in `dirs` (JSON files, Bundles too). Returns problems. */
export function loadSearchParameterFiles(registry: SearchParamRegistry, dirs: string[]): string[] {
  const problems: string[] = [];
  for (const dir of dirs) {
    let files: string[];
    try {
      files = statSync(dir).isDirectory() ? readdirSync(dir).filter((f) => f.endsWith('.json')) : [];
    } catch {
      continue; // an absent folder has nothing to load
    }
    for (const f of files.sort()) {
      try {
        const json = JSON.parse(readFileSync(join(dir, f), 'utf8')) as unknown;
        problems.push(...registry.addAll(json, { origin: join(dir, f), activeOnly: true }).problems);
      } catch (err) {
        problems.push(`${join(dir, f)}: ${(err as Error).message}`);
      }
    }
  }
  return problems;
}

/** Adds the active SearchParameters stored through the API. */
export async function loadStoredSearchParameters(registry: SearchParamRegistry, store: Store): Promise<string[]> {
  const problems: string[] = [];
  let after: unknown[] | undefined;
  for (;;) {
    const page = await store.search({ resourceType: 'SearchParameter', filters: [], count: 500, sort: [{ kind: 'id', descending: false }], after });
    for (const v of page.versions) {
      problems.push(...registry.addAll(JSON.parse(v.json as string), { origin: `SearchParameter/${v.id}`, activeOnly: true }).problems);
    }
    if (!page.more) {
      return problems;
    }
    after = page.last;
  }
}

/** Why a SearchParameter could not be used, as OperationOutcome issues (empty: usable). */
export function checkSearchParameter(resource: Resource): OperationOutcomeIssue[] {
  const sp = resource as unknown as SearchParameterResource;
  if (sp.status !== 'active') {
    return []; // draft or retired: stored, not used
  }
  try {
    createRegistry().add(sp);
    return [];
  } catch (err) {
    const text = `This SearchParameter cannot be used for search: ${(err as Error).message}`;
    return [{ severity: 'error', code: 'invalid', diagnostics: text, details: { text }, expression: ['SearchParameter'] }];
  }
}

/** Applies a written or deleted SearchParameter to the registry. */
export function applySearchParameter(registry: SearchParamRegistry, resource: Resource, deleted: boolean): void {
  const sp = resource as unknown as SearchParameterResource;
  if (deleted || sp.status !== 'active') {
    registry.remove(sp.url, { keepBase: true });
  } else {
    registry.add(sp);
  }
}
