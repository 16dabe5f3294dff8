/**
 * What every write (create, update, patch, transaction entries) shares: validation beyond structure,
 * and the response shaped by `Prefer: return=`.
 */
import type { Resource } from '@medplum/fhirtypes';
import { FhirError, informational, outcomeOf } from '../errors';
import type { ResourceLike, StoredVersion } from '../store/api';
import type { FhirRequest, FhirResponse, RequestContext } from './types';

/** Runs profile validation (meta.profile the server knows); throws 422 with every issue found. */
export async function checkProfiles(resource: Resource, ctx: RequestContext): Promise<void> {
  const issues = await ctx.validateProfiles(resource);
  if (resource.resourceType === 'SearchParameter' && ctx.checkSearchParameter) {
    issues.push(...ctx.checkSearchParameter(resource));
  }
  const errors = issues.filter((i) => i.severity === 'error' || i.severity === 'fatal');
  if (errors.length > 0) {
    throw new FhirError('unprocessable', outcomeOf(issues));
  }
}

/** The resource as the store should receive it: id set, server-managed meta removed. */
export function forStore(resource: Resource, id: string): ResourceLike {
  const copy = { ...(resource as unknown as ResourceLike), id };
  if (copy.meta) {
    const { versionId: _v, lastUpdated: _l, ...meta } = copy.meta;
    copy.meta = meta;
  }
  return copy;
}

/** Types whose writes change how the server validates or indexes. */
const CONFORMANCE_TYPES = new Set(['StructureDefinition', 'SearchParameter']);

/**
 * Tells the server about a written (or deleted) conformance resource, so cached profiles are
 * re-read and search parameters take effect for new writes. `json` is the version written, or the
 * last version before a delete.
 */
export function afterWrite(ctx: RequestContext, resourceType: string, json?: string, deleted = false): void {
  if (CONFORMANCE_TYPES.has(resourceType) && json) {
    ctx.conformanceChanged?.({ resource: JSON.parse(json) as Resource, deleted });
  }
}

/** 200/201 response for a write, honouring `Prefer: return=minimal | representation | OperationOutcome`. */
export function writeResponse(req: FhirRequest, version: StoredVersion, status: number, message: string): FhirResponse {
  const base: FhirResponse = {
    status,
    versionId: version.versionId,
    lastModified: version.lastUpdated,
    location: `${version.resourceType}/${version.id}/_history/${version.versionId}`,
  };
  switch (req.preferReturn) {
    case 'minimal':
      return base;
    case 'OperationOutcome':
      return { ...base, resource: informational(message) };
    case 'representation':
    case undefined:
      return { ...base, json: version.json };
  }
}
