/**
 * Small helpers shared by the interaction modules: checking path parts, reading bodies as resources,
 * turning stored versions into responses.
 */
import type { Resource } from '@medplum/fhirtypes';
import { badRequest, FhirError, gone, notFound, operationOutcome, outcomeOf } from '../errors';
import type { StoredVersion } from '../store/api';
import { isResourceType, validateStructure } from '../validation/schema';
import type { FhirRequest, FhirResponse } from './types';

/** The FHIR id pattern (R4 datatypes: id). */
export const ID_PATTERN = /^[A-Za-z0-9\-.]{1,64}$/;

export function requireType(type: string | undefined): string {
  if (!type || !isResourceType(type)) {
    throw new FhirError('not-found', operationOutcome('error', 'not-supported', `Unknown resource type '${type ?? ''}'`));
  }
  return type;
}

export function requireId(id: string | undefined): string {
  if (!id || !ID_PATTERN.test(id)) {
    throw badRequest(`Invalid id '${id ?? ''}': ids are 1-64 letters, digits, '-' or '.'`);
  }
  return id;
}

/**
 * Checks that the body is a resource of the type named in the URL and structurally valid R4.
 * Throws a 400 naming every problem found.
 */
export function requireResource(req: FhirRequest, type: string, options: { nested?: boolean } = {}): Resource {
  const body = req.body;
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw badRequest('The request body must be a FHIR resource (a JSON object)');
  }
  const rt = (body as { resourceType?: unknown }).resourceType;
  if (rt !== type) {
    throw badRequest(
      typeof rt === 'string'
        ? `resourceType '${rt}' in the body does not match '${type}' in the URL`
        : `The body has no resourceType; expected '${type}'`,
      ['resourceType'],
    );
  }
  const issues = validateStructure(body, options);
  if (issues.length > 0) {
    throw new FhirError('invalid', outcomeOf(issues));
  }
  return body as Resource;
}

/** `W/"3"`, `"3"` or `3` -> `3`. */
export function parseETag(value: string | undefined): string | undefined {
  if (value === undefined) {
    return undefined;
  }
  const m = /^\s*(?:W\/)?"?([^"]*)"?\s*$/.exec(value);
  return m ? m[1] : value;
}

/** A stored version as a 200 response; deleted -> 410, missing -> 404. */
export function versionResponse(type: string, id: string, version: StoredVersion | undefined, status = 200): FhirResponse {
  if (!version) {
    throw notFound(`${type}/${id} not found`);
  }
  if (version.deleted) {
    const err = gone(`${type}/${id} was deleted (version ${version.versionId})`);
    throw err;
  }
  return {
    status,
    json: version.json,
    versionId: version.versionId,
    lastModified: version.lastUpdated,
    location: `${type}/${id}/_history/${version.versionId}`,
  };
}

/** Parses a stored version's JSON. */
export function parseVersion(version: StoredVersion): Resource {
  return JSON.parse(version.json as string) as Resource;
}

/** The first value of a query parameter. */
export function param(req: FhirRequest, name: string): string | undefined {
  return req.query[name]?.[0];
}

/** `_count` within limits. */
export function countParam(req: FhirRequest, defaultCount: number, maxCount: number): number {
  const raw = param(req, '_count');
  if (raw === undefined) {
    return defaultCount;
  }
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) {
    throw badRequest(`_count must be a non-negative integer, got '${raw}'`);
  }
  return Math.min(n, maxCount);
}
