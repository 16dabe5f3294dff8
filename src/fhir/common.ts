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
  if (!/^\d{1,9}$/.test(raw)) {
    throw badRequest(`_count must be a non-negative integer, got '${raw}'`);
  }
  return Math.min(Number(raw), maxCount);
}

const INSTANT_PARAM = /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2}))?)?)?$/;

/**
 * A date or instant parameter such as `_since` as an ISO instant (UTC). Partial dates mean their
 * start (`2026` -> 2026-01-01T00:00:00Z); a time needs a zone; impossible dates are refused.
 */
export function instantParam(name: string, raw: string): string {
  const m = INSTANT_PARAM.exec(raw);
  const fail = (): never => {
    throw badRequest(`${name} must be a date or an instant with a time zone (e.g. 2026-01-31T09:00:00Z), got '${raw}'`);
  };
  if (!m) {
    return fail();
  }
  const [, y, mo = '01', d = '01', h = '00', mi = '00', sec = '00', frac = '', zone = 'Z'] = m;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (year < 1 || month < 1 || month > 12 || day < 1 || day > daysInMonth || Number(h) > 23 || Number(mi) > 59 || Number(sec) > 59) {
    return fail();
  }
  const ms = Date.parse(`${y}-${mo}-${d}T${h}:${mi}:${sec}${frac}${zone}`);
  return Number.isNaN(ms) ? fail() : new Date(ms).toISOString();
}
