/**
 * Conformance resources the server knows from files: StructureDefinitions, ValueSets, CodeSystems,
 * ConceptMaps, SearchParameters and OperationDefinitions read at start-up from folders of JSON files
 * (a resource, a Bundle of them, or a JSON array of them). Validation uses the first three; the CCM
 * module reads ConceptMaps; SearchParameters are also loaded into the search registry
 * (src/search/custom-parameters.ts); all of them are stored at start so clients can read them
 * (src/conformance-seed.ts).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { CodeSystem, ConceptMap, OperationDefinition, SearchParameter, StructureDefinition, ValueSet } from '@medplum/fhirtypes';

export type ConformanceResource = StructureDefinition | ValueSet | CodeSystem | ConceptMap | SearchParameter | OperationDefinition;
export type ConformanceType = ConformanceResource['resourceType'];

/** Canonical resources by URL (and by `url|version`), plus what went wrong while reading them. */
export class ConformanceStore {
  private readonly byKey = new Map<string, ConformanceResource>();
  /** Files or resources that could not be used, in plain words. */
  readonly problems: string[] = [];

  add(resource: ConformanceResource, origin: string): void {
    if (!resource.url) {
      this.problems.push(`${origin}: ${resource.resourceType} has no url, so it cannot be referenced; skipped`);
      return;
    }
    const key = `${resource.resourceType} ${resource.url}`;
    const existing = this.byKey.get(key);
    if (existing && existing.version === resource.version) {
      this.problems.push(`${origin}: ${resource.resourceType} ${resource.url} is defined twice; the later one is used`);
    }
    // The unversioned key keeps the last one read; a versioned key is always exact.
    this.byKey.set(key, resource);
    if (resource.version) {
      this.byKey.set(`${key}|${resource.version}`, resource);
    }
  }

  /** By canonical: `url` or `url|version` (a version that is not known gives undefined). */
  get<T extends ConformanceType>(type: T, canonical: string): Extract<ConformanceResource, { resourceType: T }> | undefined {
    return this.byKey.get(`${type} ${canonical}`) as Extract<ConformanceResource, { resourceType: T }> | undefined;
  }

  /** Every distinct resource of a type. */
  all<T extends ConformanceType>(type: T): Extract<ConformanceResource, { resourceType: T }>[] {
    const out = new Set<ConformanceResource>();
    for (const r of this.byKey.values()) {
      if (r.resourceType === type) {
        out.add(r);
      }
    }
    return [...out] as Extract<ConformanceResource, { resourceType: T }>[];
  }
}

const KNOWN_TYPES: ReadonlySet<string> = new Set(['StructureDefinition', 'ValueSet', 'CodeSystem', 'ConceptMap', 'SearchParameter', 'OperationDefinition']);

/**
 * Reads every `*.json` file directly in each folder (not sub-folders). A folder that does not
 * exist is skipped silently; unreadable files and other resource types are listed in `problems`.
 */
export function loadConformanceDirs(dirs: readonly string[]): ConformanceStore {
  const store = new ConformanceStore();
  for (const dir of dirs) {
    let names: string[];
    try {
      if (!statSync(dir).isDirectory()) {
        store.problems.push(`${dir}: not a folder; skipped`);
        continue;
      }
      names = readdirSync(dir).filter((n) => n.toLowerCase().endsWith('.json')).sort();
    } catch {
      continue; // absent folder: nothing to load
    }
    for (const name of names) {
      const file = join(dir, name);
      let json: unknown;
      try {
        json = JSON.parse(readFileSync(file, 'utf8'));
      } catch (err) {
        store.problems.push(`${file}: not readable JSON (${(err as Error).message}); skipped`);
        continue;
      }
      addJson(store, json, file);
    }
  }
  return store;
}

function addJson(store: ConformanceStore, json: unknown, origin: string): void {
  if (Array.isArray(json)) {
    json.forEach((r, i) => addJson(store, r, `${origin} [${i}]`));
    return;
  }
  const resourceType = typeof json === 'object' && json !== null ? (json as { resourceType?: unknown }).resourceType : undefined;
  if (resourceType === 'Bundle') {
    const entries = (json as { entry?: { resource?: unknown }[] }).entry ?? [];
    entries.forEach((e, i) => {
      if (e?.resource !== undefined) {
        addJson(store, e.resource, `${origin} entry[${i}]`);
      }
    });
    return;
  }
  if (typeof resourceType === 'string' && KNOWN_TYPES.has(resourceType)) {
    store.add(json as ConformanceResource, origin);
    return;
  }
  store.problems.push(
    `${origin}: ${typeof resourceType === 'string' ? resourceType : 'not a FHIR resource'}; only StructureDefinition, ValueSet, CodeSystem, ConceptMap, SearchParameter, OperationDefinition or Bundles of them are loaded; skipped`,
  );
}

/** `url|version` split in two. */
export function splitCanonical(canonical: string): { url: string; version?: string } {
  const bar = canonical.indexOf('|');
  return bar < 0 ? { url: canonical } : { url: canonical.slice(0, bar), version: canonical.slice(bar + 1) || undefined };
}
