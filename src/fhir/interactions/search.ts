import type { Bundle, BundleEntry, BundleLink, Resource } from '@medplum/fhirtypes';
import { badRequest } from '../../errors';
import type { IncludeSpec, ParsedSearch } from '../../search/parse';
import type { SearchFilter, StoredVersion } from '../../store/api';
import { pageUrl } from '../bundle';
import { requireId, requireType } from '../common';
import { patientCompartmentParams } from '../compartment';
import { subset } from '../subsetting';
import type { FhirRequest, FhirResponse, Handler, RequestContext } from '../types';

/** How many resources `_include` / `_revinclude` may add to one page. */
const MAX_INCLUDES = 1000;
/** How many rounds `:iterate` follows. */
const MAX_ITERATIONS = 4;

interface Cursor {
  /** n: the page after `v`; p: the page before `v`. */
  d: 'n' | 'p';
  v: unknown[];
}

function encodeCursor(c: Cursor): string {
  return Buffer.from(JSON.stringify(c)).toString('base64url');
}

function decodeCursor(raw: string): Cursor {
  try {
    const c = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as Cursor;
    if ((c.d === 'n' || c.d === 'p') && Array.isArray(c.v)) {
      return c;
    }
  } catch {
    // fall through
  }
  throw badRequest(`_cursor '${raw}' is not a cursor this server issued`);
}

/** Query parameters of a request, merged with a form-encoded body (`POST [type]/_search`). */
function searchParams(req: FhirRequest): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [k, v] of Object.entries(req.query)) {
    out[k] = [...v];
  }
  if (req.method === 'POST') {
    if (req.contentType !== undefined && req.contentType !== 'application/x-www-form-urlencoded') {
      throw badRequest(`POST _search takes a form body (application/x-www-form-urlencoded), got '${req.contentType}'`);
    }
    for (const [k, v] of Object.entries((req.body as Record<string, string[]> | undefined) ?? {})) {
      (out[k] ??= []).push(...v);
    }
  }
  return out;
}

/**
 * search: `GET [type]?...`, `POST [type]/_search`, `GET [base]?_type=...` (system) and
 * `GET Patient/[id]/[type]` (compartment), FHIR R4 search.html. Pages are keyset cursors, so a page
 * neither skips nor repeats results while others write, and a link never expires.
 */
export const search: Handler = async (req, ctx, params) => {
  const type = params.type === undefined ? undefined : requireType(params.type);
  const parsed = ctx.searchParser(req.preferHandling === 'lenient').parse(type, searchParams(req));
  const filters = [...parsed.filters];
  let path = type ?? '';
  if (params.compartment) {
    const ctype = requireType(params.compartment.type);
    const cid = requireId(params.compartment.id);
    if (ctype !== 'Patient') {
      throw badRequest(`Compartment searches are supported for Patient, not ${ctype}`);
    }
    const codes = patientCompartmentParams(type as string);
    if (codes.length === 0) {
      throw badRequest(`${type} is not in the Patient compartment`);
    }
    const inCompartment: SearchFilter[] = codes.map((code) => ({ kind: 'reference', code, values: [{ targetType: 'Patient', targetId: cid }] }));
    filters.push(inCompartment.length === 1 ? inCompartment[0] : { kind: 'or', filters: inCompartment });
    path = `Patient/${cid}/${type}`;
  }
  return runSearch(ctx, parsed, filters, type ? [type] : parsed.types, path);
};

async function runSearch(ctx: RequestContext, parsed: ParsedSearch, filters: SearchFilter[], types: string[], path: string): Promise<FhirResponse> {
  const cursor = parsed.cursor ? decodeCursor(parsed.cursor) : undefined;
  const sort = parsed.sort ?? [{ kind: 'lastUpdated' as const, descending: false }];
  const wantTotal = parsed.total === 'accurate' || parsed.total === 'estimate' || parsed.summary === 'count' || parsed.count === 0;
  const reversed = cursor?.d === 'p';
  const page = await ctx.store.search({
    resourceType: types,
    filters,
    count: parsed.summary === 'count' ? 0 : parsed.count,
    // With nothing to list, the total is all there is to say.
    sort,
    after: cursor?.v,
    reverse: reversed,
    total: wantTotal,
  });
  // Walking backwards the store returns nearest-first: put the page back in order.
  const versions = reversed ? [...page.versions].reverse() : page.versions;
  const moreAfter = reversed ? true : page.more;
  const moreBefore = reversed ? page.more : cursor !== undefined;
  const firstPos = reversed ? page.last : page.first;
  const lastPos = reversed ? page.first : page.last;

  const included = await includes(ctx, parsed, versions);

  let total = page.total;
  if (total === undefined && parsed.total !== 'none' && !cursor && !page.more) {
    total = versions.length; // the whole result fits on this first page
  }
  const link = (c?: Cursor): string => pageUrl(ctx.baseUrl, path, c ? [...parsed.applied, ['_cursor', encodeCursor(c)]] : parsed.applied);
  const links: BundleLink[] = [{ relation: 'self', url: link(cursor) }, { relation: 'first', url: link() }];
  if (moreAfter && lastPos) {
    links.push({ relation: 'next', url: link({ d: 'n', v: lastPos }) });
  }
  if (moreBefore && firstPos) {
    links.push({ relation: 'previous', url: link({ d: 'p', v: firstPos }) });
  }
  const bundle: Bundle = { resourceType: 'Bundle', type: 'searchset', ...(total === undefined ? {} : { total }), link: links };
  if (parsed.summary === 'count') {
    return { status: 200, resource: bundle };
  }
  if ((parsed.summary === undefined || parsed.summary === 'false') && parsed.elements === undefined) {
    // Nothing to shape: each resource's stored text goes into the Bundle as it is (as a read serves
    // it), instead of parsing every entry only to serialise it again.
    const texts = [...versions.map((v) => entryJson(ctx, v, 'match')), ...included.map((v) => entryJson(ctx, v, 'include'))];
    const head = JSON.stringify(bundle);
    return { status: 200, json: texts.length === 0 ? head : `${head.slice(0, -1)},"entry":[${texts.join(',')}]}` };
  }
  const entries: BundleEntry[] = [...versions.map((v) => entry(ctx, v, 'match', parsed)), ...included.map((v) => entry(ctx, v, 'include', parsed))];
  // FHIR JSON has no empty arrays: no matches, no entry element.
  return { status: 200, resource: entries.length === 0 ? bundle : { ...bundle, entry: entries } };
}

/** A search entry as JSON text around the resource's stored text. */
function entryJson(ctx: RequestContext, v: StoredVersion, mode: 'match' | 'include'): string {
  return `{"fullUrl":${JSON.stringify(`${ctx.baseUrl}/${v.resourceType}/${v.id}`)},"resource":${v.json as string},"search":{"mode":"${mode}"}}`;
}

function entry(ctx: RequestContext, v: StoredVersion, mode: 'match' | 'include', parsed: ParsedSearch): BundleEntry {
  // _elements shapes the matches only; included resources come whole (search.html#elements).
  const resource = subset(JSON.parse(v.json as string) as Resource, parsed.summary, mode === 'match' ? parsed.elements : undefined);
  return { fullUrl: `${ctx.baseUrl}/${v.resourceType}/${v.id}`, resource, search: { mode } };
}

/** `_include` and `_revinclude` (with `:iterate`), de-duplicated against the matches. */
async function includes(ctx: RequestContext, parsed: ParsedSearch, matches: StoredVersion[]): Promise<StoredVersion[]> {
  if (parsed.include.length === 0 && parsed.revinclude.length === 0) {
    return [];
  }
  const seen = new Set(matches.map((v) => `${v.resourceType}/${v.id}`));
  const added: StoredVersion[] = [];
  let frontier = matches;
  for (let round = 0; round < MAX_ITERATIONS && frontier.length > 0 && added.length < MAX_INCLUDES; round++) {
    const next: StoredVersion[] = [];
    const specs = (specsOf: IncludeSpec[]): IncludeSpec[] => specsOf.filter((s) => round === 0 || s.iterate);
    const from = (sourceType: string): { resourceType: string; id: string }[] =>
      frontier.filter((v) => sourceType === '*' || v.resourceType === sourceType).map((v) => ({ resourceType: v.resourceType, id: v.id }));
    for (const spec of specs(parsed.include)) {
      const sources = spec.sourceType === '*' ? [...new Set(frontier.map((v) => v.resourceType))] : [spec.sourceType];
      for (const sourceType of sources) {
        next.push(...(await ctx.store.includes({ direction: 'include', from: from(sourceType), sourceType, code: spec.code, targetType: spec.targetType, limit: MAX_INCLUDES })));
      }
    }
    for (const spec of specs(parsed.revinclude)) {
      next.push(...(await ctx.store.includes({ direction: 'revinclude', from: frontier.map((v) => ({ resourceType: v.resourceType, id: v.id })), sourceType: spec.sourceType, code: spec.code, targetType: spec.targetType, limit: MAX_INCLUDES })));
    }
    frontier = [];
    for (const v of next) {
      const key = `${v.resourceType}/${v.id}`;
      if (!seen.has(key) && added.length < MAX_INCLUDES) {
        seen.add(key);
        added.push(v);
        frontier.push(v);
      }
    }
  }
  return added;
}
