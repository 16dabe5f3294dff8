/**
 * Stores the conformance resources of the profile folders (StructureDefinitions, ValueSets,
 * CodeSystems, ConceptMaps, SearchParameters, OperationDefinitions) at start, so clients find them
 * at their canonical URLs (`StructureDefinition?url=...`) and read them like any resource. A
 * resource is written only when it is new or its content changed since the stored version, so
 * restarts add no versions; each goes through the FHIR core as an update with the file's id.
 */
import type { Resource } from '@medplum/fhirtypes';
import type { FhirRequest, FhirResponse, RequestContext } from '../fhir/types';
import type { ConformanceResource } from './conformance';

type Handle = (req: FhirRequest, ctx: RequestContext) => Promise<FhirResponse>;

function content(r: Resource): string {
  const { meta: _meta, ...rest } = r as Resource & { meta?: unknown };
  void _meta;
  return JSON.stringify(rest);
}

export interface SeedReport {
  written: string[];
  unchanged: number;
  problems: string[];
}

export async function seedConformance(resources: readonly ConformanceResource[], ctx: RequestContext, handle: Handle): Promise<SeedReport> {
  const report: SeedReport = { written: [], unchanged: 0, problems: [] };
  for (const r of resources) {
    const key = `${r.resourceType}/${r.id ?? ''}`;
    if (!r.id) {
      report.problems.push(`${r.resourceType} ${r.url ?? ''} has no id, so it is not stored`);
      continue;
    }
    try {
      const stored = await ctx.store.read(r.resourceType, r.id);
      if (stored?.json && !stored.deleted && content(JSON.parse(stored.json) as Resource) === content(r)) {
        report.unchanged++;
        continue;
      }
      const res = await handle({ method: 'PUT', path: key, query: {}, body: r, contentType: 'application/fhir+json', preferReturn: 'minimal' }, ctx);
      if (res.status < 300) {
        report.written.push(key);
      }
    } catch (err) {
      // Another process may be seeding the same resource at the same moment: its write is as good.
      report.problems.push(`${key}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return report;
}
