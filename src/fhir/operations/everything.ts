import type { Bundle, BundleEntry, BundleLink, Parameters } from '@medplum/fhirtypes';
import { badRequest, gone, notFound } from '../../errors';
import { parseDate, splitValues } from '../../search/parse';
import type { SearchFilter, StoredVersion } from '../../store/api';
import { RESOURCE_TYPES } from '../../validation/schema';
import { pageUrl } from '../bundle';
import { countParam, instantParam, param, requireId, requireType } from '../common';
import { patientCompartmentParams } from '../compartment';
import { checkParams } from '../params';
import type { FhirRequest, Handler, RequestContext } from '../types';

/** The parameters `$everything` understands (start/end, the care-date window, is not supported). */
const PARAMS = ['_since', '_type', '_count', '_cursor', '_format', '_pretty'];
/** How many referenced resources one page may add. */
const MAX_INCLUDES = 1000;
/** The cursor segment of the Patient resource itself (compartment types are segments by name). */
const SELF = 'Patient';

/**
 * Where the next page starts: segment `t` (the Patient itself, or a compartment type), after sort
 * position `v` within it (absent: from the segment's start).
 */
interface Cursor {
  t: string;
  v?: unknown[];
}

function encodeCursor(c: Cursor): string {
  return Buffer.from(JSON.stringify(c)).toString('base64url');
}

function decodeCursor(raw: string, segments: string[]): Cursor {
  try {
    const c = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as Cursor;
    if (c !== null && typeof c === 'object' && typeof c.t === 'string' && segments.includes(c.t) && (c.v === undefined || Array.isArray(c.v))) {
      return c;
    }
  } catch {
    // fall through
  }
  throw badRequest(`_cursor '${raw}' is not a cursor this server issued for these parameters`);
}

let compartmentTypes: string[] | undefined;

/** Every type in the Patient compartment other than Patient itself, in a fixed (alphabetical) order. */
function compartmentTypeList(): string[] {
  compartmentTypes ??= [...RESOURCE_TYPES].filter((t) => t !== 'Patient' && patientCompartmentParams(t).length > 0).sort();
  return compartmentTypes;
}

/** Whether a referenced resource of this type is added as an include (not a compartment type, so not another patient's record). */
function includable(type: string): boolean {
  return type !== 'Patient' && patientCompartmentParams(type).length === 0;
}

/**
 * The request's parameters: the query, merged for POST with a Parameters body (or a form body).
 * Parameter values of any primitive type are taken as their text.
 */
function operationParams(req: FhirRequest): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [k, v] of Object.entries(req.query)) {
    out[k] = [...v];
  }
  if (req.method !== 'POST' || req.body === undefined) {
    return out;
  }
  if (req.contentType === 'application/x-www-form-urlencoded') {
    for (const [k, v] of Object.entries(req.body as Record<string, string[]>)) {
      (out[k] ??= []).push(...v);
    }
    return out;
  }
  const body = req.body as Parameters;
  if (typeof body !== 'object' || body === null || body.resourceType !== 'Parameters') {
    throw badRequest('POST $everything takes a Parameters resource (or no body)');
  }
  for (const p of body.parameter ?? []) {
    const key = Object.keys(p).find((k) => k.startsWith('value'));
    const value = key === undefined ? undefined : (p as unknown as Record<string, unknown>)[key];
    if (typeof p.name !== 'string' || (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean')) {
      throw badRequest(`Parameter '${String(p.name)}' of $everything needs a primitive value`);
    }
    (out[p.name] ??= []).push(String(value));
  }
  return out;
}

/**
 * $everything: `GET|POST Patient/[id]/$everything` (FHIR R4 patient-operation-everything). A
 * searchset of the Patient, every resource in its compartment and (as includes) the resources
 * they reference that are outside any patient's compartment (Practitioner, Organization,
 * Medication, Location, ...). Everything is read through `ctx.store`, so a caller sees what its
 * reads and searches would show it, and nothing else.
 *
 * Paging walks the Patient, then each compartment type in turn (by id within a type, so an update
 * during the walk neither moves a resource to a later page nor makes it appear twice); the cursor
 * is (type, position within the type). A referenced resource is included on each page that holds
 * one of its referrers.
 */
export const everythingOperation: Handler = async (req, ctx, params) => {
  const type = requireType(params.type);
  if (type !== 'Patient') {
    throw badRequest(`$everything is supported for Patient only, not ${type}`);
  }
  const id = requireId(params.id);
  const query = operationParams(req);
  checkParams({ ...req, query }, PARAMS);
  const first = (name: string): string | undefined => param({ ...req, query }, name);

  // _type: which types come back (the Patient itself only when listed).
  let types: Set<string> | undefined;
  const typeValues = (query._type ?? []).flatMap(splitValues).map((t) => t.trim()).filter((t) => t !== '');
  if (typeValues.length > 0) {
    for (const t of typeValues) {
      if (!RESOURCE_TYPES.has(t)) {
        throw badRequest(`_type: unknown resource type '${t}'`);
      }
    }
    types = new Set(typeValues);
  }
  const sinceRaw = first('_since') || undefined;
  const since = sinceRaw === undefined ? undefined : instantParam('_since', sinceRaw);
  const sinceFilter: SearchFilter | undefined = since === undefined ? undefined : { kind: 'date', code: '_lastUpdated', values: [parseDate('_lastUpdated', `ge${since}`)] };
  const recent = (v: StoredVersion): boolean => since === undefined || Date.parse(v.lastUpdated) >= Date.parse(since);
  const count = countParam({ ...req, query }, ctx.limits.defaultCount, ctx.limits.maxCount);

  // The Patient must exist and be visible, as for a read, whatever _type and _since leave out.
  const self = await ctx.store.read('Patient', id);
  if (!self) {
    throw notFound(`Patient/${id} not found`);
  }
  if (self.deleted) {
    throw gone(`Patient/${id} was deleted (version ${self.versionId})`);
  }

  // The walk: the Patient, then each compartment type the caller may search at all.
  const segments = [
    ...(types === undefined || types.has(SELF) ? [SELF] : []),
    ...compartmentTypeList().filter((t) => (types === undefined || types.has(t)) && (!ctx.access || ctx.access.allows('s', t))),
  ];
  const cursorRaw = first('_cursor');
  const cursor = cursorRaw === undefined ? undefined : decodeCursor(cursorRaw, segments);

  const fixed: [string, string][] = [];
  if (types !== undefined) {
    fixed.push(['_type', [...types].join(',')]);
  }
  if (sinceRaw !== undefined) {
    fixed.push(['_since', sinceRaw]);
  }
  fixed.push(['_count', String(count)]);
  const path = `Patient/${id}/$everything`;
  const link = (c?: Cursor): string => pageUrl(ctx.baseUrl, path, c ? [...fixed, ['_cursor', encodeCursor(c)]] : fixed);

  const inCompartment = (t: string): SearchFilter => {
    const parts: SearchFilter[] = patientCompartmentParams(t).map((code) => ({ kind: 'reference', code, values: [{ targetType: 'Patient', targetId: id }] }));
    return parts.length === 1 ? parts[0] : { kind: 'or', filters: parts };
  };
  const filtersOf = (t: string): SearchFilter[] => (sinceFilter ? [inCompartment(t), sinceFilter] : [inCompartment(t)]);

  if (count === 0) {
    // Nothing to list: the total is all there is to say (search.html#count).
    let total = segments.includes(SELF) && recent(self) ? 1 : 0;
    for (const t of segments.filter((s) => s !== SELF)) {
      total += (await ctx.store.search({ resourceType: t, filters: filtersOf(t), count: 0, total: true })).total ?? 0;
    }
    const bundle: Bundle = { resourceType: 'Bundle', type: 'searchset', total, link: [{ relation: 'self', url: link() }] };
    return { status: 200, resource: bundle };
  }

  const matches: StoredVersion[] = [];
  let next: Cursor | undefined;
  const start = cursor ? segments.indexOf(cursor.t) : 0;
  for (let i = start; i < segments.length; i++) {
    const segment = segments[i];
    const after = cursor && i === start ? cursor.v : undefined;
    if (matches.length === count) {
      // The page is full: is there anything further on? (So that the last page has no `next`.)
      const probe = segment === SELF ? (recent(self) ? [self] : []) : (await ctx.store.search({ resourceType: segment, filters: filtersOf(segment), count: 1, sort: [{ kind: 'id', descending: false }], after })).versions;
      if (probe.length > 0) {
        next = { t: segment, v: after };
        break;
      }
      continue;
    }
    if (segment === SELF) {
      if (recent(self)) {
        matches.push(self);
      }
      continue;
    }
    const page = await ctx.store.search({
      resourceType: segment,
      filters: filtersOf(segment),
      count: count - matches.length,
      sort: [{ kind: 'id', descending: false }],
      after,
    });
    matches.push(...page.versions);
    if (page.more && page.last) {
      next = { t: segment, v: page.last };
      break;
    }
  }

  const entries: BundleEntry[] = matches.map((v) => entry(ctx, v, 'match'));
  entries.push(...(await referenced(ctx, matches, (v) => includable(v.resourceType) && (types === undefined || types.has(v.resourceType)) && recent(v))).map((v) => entry(ctx, v, 'include')));

  const links: BundleLink[] = [{ relation: 'self', url: link(cursor) }];
  if (cursor) {
    links.push({ relation: 'first', url: link() });
  }
  if (next) {
    links.push({ relation: 'next', url: link(next) });
  }
  const bundle: Bundle = { resourceType: 'Bundle', type: 'searchset', link: links, entry: entries };
  if (!cursor && !next) {
    bundle.total = matches.length; // the whole result is this one page
  }
  return { status: 200, resource: bundle };
};

function entry(ctx: RequestContext, v: StoredVersion, mode: 'match' | 'include'): BundleEntry {
  return { fullUrl: `${ctx.baseUrl}/${v.resourceType}/${v.id}`, resource: JSON.parse(v.json as string) as BundleEntry['resource'], search: { mode } };
}

/** What the page's resources reference (every reference parameter), kept by `keep`, once each. */
async function referenced(ctx: RequestContext, matches: StoredVersion[], keep: (v: StoredVersion) => boolean): Promise<StoredVersion[]> {
  const seen = new Set(matches.map((v) => `${v.resourceType}/${v.id}`));
  const added: StoredVersion[] = [];
  for (const sourceType of [...new Set(matches.map((v) => v.resourceType))]) {
    const from = matches.filter((v) => v.resourceType === sourceType).map((v) => ({ resourceType: v.resourceType, id: v.id }));
    const found = await ctx.store.includes({ direction: 'include', from, sourceType, limit: MAX_INCLUDES });
    for (const v of found) {
      const key = `${v.resourceType}/${v.id}`;
      if (!seen.has(key) && keep(v) && added.length < MAX_INCLUDES) {
        seen.add(key);
        added.push(v);
      }
    }
  }
  return added;
}
