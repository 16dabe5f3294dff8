import { newResourceId } from '../ids';
import type { Bundle, BundleEntry, BundleEntryResponse, Resource } from '@medplum/fhirtypes';
import { badRequest, FhirError, operationOutcome, preconditionFailed, STATUS_BY_CATEGORY } from '../../errors';
import { matchIds } from '../../search/conditional';
import type { SearchParser } from '../../search/parse';
import type { StoreReader } from '../../store/api';
import { validateStructure } from '../../validation/schema';
import { bundle } from '../bundle';
import { isFhirPatch } from '../fhirpatch';
import { CONDITIONAL_REFERENCE, rewriteReferences } from '../references';
import type { FhirMethod, FhirRequest, FhirResponse, RequestContext } from '../types';
import { breather } from '../../util/breathe';

type Dispatch = (req: FhirRequest, ctx: RequestContext) => Promise<FhirResponse>;

interface ParsedEntry {
  index: number;
  method: FhirMethod;
  path: string;
  query: Record<string, string[]>;
  url: string;
  fullUrl?: string;
  resource?: Resource;
  ifMatch?: string;
  ifNoneExist?: string;
  ifNoneMatch?: string;
  ifModifiedSince?: string;
}

/** FHIR R4 http.html#trules: DELETE, then POST, then PUT/PATCH, then GET/HEAD. */
const ORDER: Record<FhirMethod, number> = { DELETE: 0, POST: 1, PUT: 2, PATCH: 2, GET: 3, HEAD: 3 };

/**
 * batch / transaction: `POST [base]` with a Bundle (FHIR R4 http.html#transaction).
 * A transaction is all-or-nothing in one store transaction; a batch runs each entry on its own and
 * reports each entry's status and outcome.
 */
export async function batchOrTransaction(req: FhirRequest, ctx: RequestContext, dispatch: Dispatch): Promise<FhirResponse> {
  const body = req.body as Bundle | undefined;
  if (typeof body !== 'object' || body === null || body.resourceType !== 'Bundle') {
    throw badRequest('POST to the base URL takes a Bundle of type batch or transaction', ['Bundle']);
  }
  if (body.type !== 'batch' && body.type !== 'transaction') {
    throw badRequest(`Bundle.type must be 'batch' or 'transaction', got '${String(body.type)}'`, ['Bundle.type']);
  }
  const structure = validateStructure(body, { nested: false });
  if (structure.length > 0) {
    throw new FhirError('invalid', { resourceType: 'OperationOutcome', issue: structure });
  }
  const entries = (body.entry ?? []).map((e, i) => parseEntry(e, i, ctx.baseUrl));
  if (entries.length > ctx.limits.maxBundleEntries) {
    throw new FhirError('too-large', `The Bundle has ${entries.length} entries; the limit is ${ctx.limits.maxBundleEntries}`);
  }
  return body.type === 'transaction' ? transaction(req, ctx, dispatch, entries) : batch(req, ctx, dispatch, entries);
}

function parseEntry(entry: BundleEntry, index: number, baseUrl: string): ParsedEntry {
  const where = `Bundle.entry[${index}]`;
  const request = entry.request;
  if (!request?.method || !request.url) {
    throw badRequest(`${where}: request.method and request.url are required`, [`${where}.request`]);
  }
  let url = request.url;
  if (url.startsWith(baseUrl + '/')) {
    url = url.slice(baseUrl.length + 1);
  } else if (/^[a-z]+:/i.test(url)) {
    throw badRequest(`${where}: request.url '${url}' is not on this server`, [`${where}.request.url`]);
  }
  const [rawPath, qs = ''] = url.split('?', 2);
  const query: Record<string, string[]> = {};
  for (const [k, v] of new URLSearchParams(qs)) {
    (query[k] ??= []).push(v);
  }
  const method = request.method as FhirMethod;
  let resource = entry.resource;
  if (method === 'PATCH' && resource?.resourceType === 'Binary') {
    resource = decodePatchBinary(resource, where);
  }
  return {
    index,
    method,
    path: rawPath.replace(/^\/+|\/+$/g, ''),
    query,
    url,
    fullUrl: entry.fullUrl,
    resource,
    ifMatch: request.ifMatch,
    ifNoneExist: request.ifNoneExist,
    ifNoneMatch: request.ifNoneMatch,
    ifModifiedSince: request.ifModifiedSince,
  };
}

/** A PATCH entry carries its JSON Patch as a Binary (FHIR R4 http.html#patch); a FHIRPath Patch comes as it is. */
function decodePatchBinary(binary: Resource, where: string): Resource {
  const b = binary as { data?: string; contentType?: string };
  if (b.contentType !== 'application/json-patch+json') {
    throw new FhirError(
      'unsupported-media-type',
      operationOutcome('error', 'not-supported', `${where}: a PATCH Binary must have contentType application/json-patch+json, got '${b.contentType ?? 'none'}'`, [`${where}.resource.contentType`]),
    );
  }
  try {
    return JSON.parse(Buffer.from(b.data ?? '', 'base64').toString('utf8')) as Resource;
  } catch {
    throw badRequest(`${where}: the PATCH Binary's data is not base64-encoded JSON Patch`, [`${where}.resource.data`]);
  }
}

function entryRequest(e: ParsedEntry, outer: FhirRequest): FhirRequest {
  return {
    method: e.method,
    path: e.path,
    query: e.query,
    body: e.resource,
    // A PATCH entry is a JSON Patch (from its Binary) or a FHIRPath Patch (a Parameters resource).
    contentType: e.method === 'PATCH' && !isFhirPatch(e.resource) ? 'application/json-patch+json' : 'application/fhir+json',
    ifMatch: e.ifMatch,
    ifNoneExist: e.ifNoneExist,
    ifNoneMatch: e.ifNoneMatch,
    ifModifiedSince: e.ifModifiedSince,
    preferReturn: outer.preferReturn,
    preferHandling: outer.preferHandling,
  };
}

function responseEntry(ctx: RequestContext, res: FhirResponse, withResource: boolean): BundleEntry {
  const response: BundleEntryResponse = { status: String(res.status) };
  if (res.location) {
    response.location = res.location;
  }
  if (res.versionId) {
    response.etag = `W/"${res.versionId}"`;
  }
  if (res.lastModified) {
    response.lastModified = res.lastModified;
  }
  const entry: BundleEntry = { response };
  const resource = res.resource ?? (res.json ? (JSON.parse(res.json) as Resource) : undefined);
  if (resource && resource.resourceType === 'OperationOutcome') {
    response.outcome = resource;
  } else if (resource && withResource) {
    entry.resource = resource;
  }
  if (resource?.id && res.location && resource.resourceType !== 'OperationOutcome') {
    entry.fullUrl = `${ctx.baseUrl}/${resource.resourceType}/${resource.id}`;
  }
  return entry;
}

function prefixError(err: unknown, e: ParsedEntry): FhirError {
  const fe = err instanceof FhirError ? err : new FhirError('internal', err instanceof Error ? err.message : String(err));
  const label = `Bundle.entry[${e.index}] (${e.method} ${e.url})`;
  const issues = (fe.outcome.issue ?? []).map((i) => ({
    ...i,
    diagnostics: `${label}: ${i.diagnostics ?? i.details?.text ?? ''}`,
    details: { ...(i.details ?? {}), text: `${label}: ${i.details?.text ?? i.diagnostics ?? ''}` },
    expression: i.expression ? i.expression.map((x) => entryPath(e.index, x)) : [`Bundle.entry[${e.index}]`],
  }));
  return new FhirError(fe.category, { resourceType: 'OperationOutcome', issue: issues });
}

/** `Patient.name[0]` in entry 3 -> `Bundle.entry[3].resource.name[0]`. */
function entryPath(index: number, expression: string): string {
  const dot = expression.indexOf('.');
  return `Bundle.entry[${index}].resource` + (dot >= 0 ? expression.slice(dot) : `.${expression}`);
}

async function batch(req: FhirRequest, ctx: RequestContext, dispatch: Dispatch, entries: ParsedEntry[]): Promise<FhirResponse> {
  const out: BundleEntry[] = [];
  const withResource = req.preferReturn === 'representation';
  const pause = breather();
  for (const e of entries) {
    await pause();
    try {
      out.push(responseEntry(ctx, await dispatch(entryRequest(e, req), ctx), withResource || e.method === 'GET' || e.method === 'HEAD'));
    } catch (err) {
      const fe = prefixError(err, e);
      if (fe.category === 'internal') {
        throw err;
      }
      out.push({ response: { status: String(STATUS_BY_CATEGORY[fe.category]), outcome: fe.outcome } });
    }
  }
  return { status: 200, resource: bundle('batch-response', { entry: out }) };
}

async function transaction(req: FhirRequest, ctx: RequestContext, dispatch: Dispatch, entries: ParsedEntry[]): Promise<FhirResponse> {
  const seen = new Set<string>();
  for (const e of entries) {
    if (e.fullUrl) {
      if (seen.has(e.fullUrl)) {
        throw badRequest(`Bundle.entry[${e.index}]: fullUrl '${e.fullUrl}' appears more than once`, [`Bundle.entry[${e.index}].fullUrl`]);
      }
      seen.add(e.fullUrl);
    }
  }
  // http.html#trules: one resource may not be the target of two entries.
  const targets = new Map<string, number>();
  for (const e of entries) {
    if ((e.method === 'PUT' || e.method === 'PATCH' || e.method === 'DELETE') && /^[A-Z][A-Za-z]+\/[^/?]+$/.test(e.path)) {
      const first = targets.get(e.path);
      if (first !== undefined) {
        throw badRequest(
          `Bundle.entry[${e.index}]: ${e.path} is already changed by Bundle.entry[${first}]; a transaction may change a resource once`,
          [`Bundle.entry[${e.index}].request.url`],
        );
      }
      targets.set(e.path, e.index);
    }
  }
  const withResource = req.preferReturn === 'representation';
  return ctx.store.transaction(async (w) => {
    const txCtx: RequestContext = { ...ctx, store: w.store };
    const results = new Map<number, BundleEntry>();
    const fullUrlMap = new Map<string, string>();
    const assigned = new Map<number, string>();
    const run = async (e: ParsedEntry): Promise<void> => {
      try {
        const r = entryRequest(e, req);
        r.assignedId = assigned.get(e.index);
        if (e.method === 'POST' && r.assignedId) {
          r.ifNoneExist = undefined; // resolved in step 2 below
        }
        results.set(e.index, responseEntry(txCtx, await dispatch(r, txCtx), withResource || e.method === 'GET' || e.method === 'HEAD'));
      } catch (err) {
        throw prefixError(err, e);
      }
    };

    // 1. Deletes come first (FHIR order), so conditional creates and references below see their effect.
    for (const e of entries.filter((x) => x.method === 'DELETE')) {
      await run(e);
    }

    // 2. Resolve conditional creates and assign ids to creates, so every reference can be rewritten.
    for (const e of entries) {
      if (e.method !== 'POST' || !/^[A-Z][A-Za-z]+$/.test(e.path)) {
        continue;
      }
      let id: string | undefined;
      if (e.ifNoneExist) {
        const found = await matchIds(w, ctx.searchParser(false), e.path, e.ifNoneExist).catch((err: unknown) => {
          throw prefixError(err, e);
        });
        if (found.length > 1) {
          throw prefixError(preconditionFailed(`If-None-Exist '${e.ifNoneExist}' matched ${found.length} resources`), e);
        }
        if (found.length === 1) {
          id = found[0];
          const existing = await w.read(e.path, id);
          results.set(e.index, {
            response: { status: '200', location: `${e.path}/${id}/_history/${existing?.versionId}`, etag: `W/"${existing?.versionId}"` },
          });
        }
      }
      if (!id) {
        id = newResourceId();
        assigned.set(e.index, id);
      }
      if (e.fullUrl) {
        fullUrlMap.set(e.fullUrl, `${e.path}/${id}`);
      }
    }
    for (const e of entries) {
      if ((e.method === 'PUT' || e.method === 'PATCH') && e.fullUrl && /^[A-Z][A-Za-z]+\/[^/?]+$/.test(e.path)) {
        fullUrlMap.set(e.fullUrl, e.path);
      }
    }

    // 3. Rewrite references (urn:uuid and conditional) in every entry's resource.
    const conditionalCache = new Map<string, string>();
    for (const e of entries) {
      if (!e.resource) {
        continue;
      }
      const conditionals = collectConditionalRefs(e.resource);
      for (const ref of conditionals) {
        if (!conditionalCache.has(ref)) {
          conditionalCache.set(ref, await resolveConditional(w, ctx.searchParser(false), ref, e));
        }
      }
      e.resource = rewriteReferences(
        e.resource,
        (ref) => {
          const resolved = fullUrlMap.get(ref) ?? conditionalCache.get(ref) ?? relativeToBase(ref, ctx.baseUrl);
          if (resolved === undefined && ref.startsWith('urn:')) {
            throw prefixError(badRequest(`Reference '${ref}' does not match the fullUrl of any entry in this transaction`), e);
          }
          return resolved;
        },
        fullUrlMap,
      ) as Resource;
    }

    // 4. Run the other entries in FHIR order (POST, PUT/PATCH, GET), all inside this transaction;
    //    the current versions of the resources they change are locked and read at once first.
    await w.prefetch?.(
      entries
        .filter((e) => (e.method === 'PUT' || e.method === 'PATCH') && !results.has(e.index) && /^[A-Z][A-Za-z]+\/[A-Za-z0-9\-.]{1,64}$/.test(e.path))
        .map((e) => {
          const [resourceType, id] = e.path.split('/');
          return { resourceType, id };
        }),
    );
    const ordered = entries.filter((e) => e.method !== 'DELETE').sort((a, b) => ORDER[a.method] - ORDER[b.method] || a.index - b.index);
    // Let the event loop run now and then: the answers of writes already sent (and other requests)
    // wait for it. A Synthea Bundle (~270 entries) took ~0.15 s of this thread in one piece.
    const pause = breather();
    for (const e of ordered) {
      if (!results.has(e.index)) {
        await pause();
        await run(e);
      }
    }
    return {
      status: 200,
      resource: bundle('transaction-response', { entry: entries.map((e) => results.get(e.index) as BundleEntry) }),
    };
  });
}

/** An absolute reference to this server's base becomes relative (`http://base/Patient/1` -> `Patient/1`). */
function relativeToBase(ref: string, baseUrl: string): string | undefined {
  return ref.startsWith(baseUrl + '/') ? ref.slice(baseUrl.length + 1) : undefined;
}

function collectConditionalRefs(resource: Resource): string[] {
  const found: string[] = [];
  const stack: unknown[] = [resource];
  while (stack.length > 0) {
    const v = stack.pop();
    if (Array.isArray(v)) {
      stack.push(...v);
    } else if (typeof v === 'object' && v !== null) {
      for (const [k, child] of Object.entries(v)) {
        if (k === 'reference' && typeof child === 'string' && CONDITIONAL_REFERENCE.test(child)) {
          found.push(child);
        } else if (typeof child === 'object') {
          stack.push(child);
        }
      }
    }
  }
  return found;
}

async function resolveConditional(store: StoreReader, parser: SearchParser, ref: string, e: ParsedEntry): Promise<string> {
  const m = CONDITIONAL_REFERENCE.exec(ref) as RegExpExecArray;
  try {
    const ids = await matchIds(store, parser, m[1], m[2]);
    if (ids.length !== 1) {
      throw new FhirError(
        ids.length === 0 ? 'not-found' : 'precondition-failed',
        operationOutcome('error', ids.length === 0 ? 'not-found' : 'multiple-matches', `Conditional reference '${ref}' matched ${ids.length} resources; it must match exactly one`),
      );
    }
    return `${m[1]}/${ids[0]}`;
  } catch (err) {
    throw prefixError(err, e);
  }
}
