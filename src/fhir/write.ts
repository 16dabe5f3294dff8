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

/** Conformance resources the validator caches: a write to one must reach it. */
export function afterWrite(ctx: RequestContext, resourceType: string): void {
  if (resourceType === 'StructureDefinition') {
    ctx.conformanceChanged?.();
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
