/**
 * Writing many independent resources (the lines of an NDJSON import): each as `PUT [type]/[id]`
 * (ids kept, so references between them hold) or `POST [type]` without an id, through the FHIR core
 * with the caller's scopes, validation, hooks and audit.
 *
 * A group is first tried as one transaction Bundle: one commit and one lookup for the whole group
 * instead of one of each per resource (src/store prefetch). When the group fails (a bad resource,
 * two lines with one id, ...), nothing of it was written and it is written again one resource at
 * a time, so each failure is reported on its own and the others still land, as before grouping.
 */
import type { Bundle, Resource } from '@medplum/fhirtypes';
import type { FhirRequest, FhirResponse, RequestContext } from './types';

type Dispatch = (req: FhirRequest, ctx: RequestContext) => Promise<FhirResponse>;

/** Resources per transaction: large enough that the commit is a small share of the group. */
export const WRITE_GROUP = 250;

export type WriteOutcome = { ok: true } | { ok: false; error: unknown };

/** The request that writes one resource: PUT when it has an id (kept as is), POST otherwise. */
export function writeRequest(resource: Resource): FhirRequest {
  return resource.id
    ? { method: 'PUT', path: `${resource.resourceType}/${resource.id}`, query: {}, body: resource, preferReturn: 'minimal' }
    : { method: 'POST', path: resource.resourceType, query: {}, body: resource, preferReturn: 'minimal' };
}

/** One thing to write: a resource, or why a line could not be read as one (reported in its place). */
export type WriteItem = { resource: Resource } | { error: unknown };

/** Writes `items` (at most a few hundred: see WRITE_GROUP); one outcome per item, in order. */
export async function writeMany(items: WriteItem[], ctx: RequestContext, dispatch: Dispatch): Promise<WriteOutcome[]> {
  const resources = items.flatMap((item) => ('resource' in item ? [item.resource] : []));
  let grouped = false;
  if (resources.length > 1) {
    const bundle: Bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: resources.map((resource) => {
        const r = writeRequest(resource);
        return { resource, request: { method: r.method as 'PUT' | 'POST', url: r.path } };
      }),
    };
    try {
      await dispatch({ method: 'POST', path: '', query: {}, body: bundle, preferReturn: 'minimal' }, ctx);
      grouped = true;
    } catch {
      // Nothing of the group was written: find which resources fail, one at a time.
    }
  }
  const out: WriteOutcome[] = [];
  for (const item of items) {
    if (!('resource' in item)) {
      out.push({ ok: false, error: item.error });
    } else if (grouped) {
      out.push({ ok: true });
    } else {
      try {
        await dispatch(writeRequest(item.resource), ctx);
        out.push({ ok: true });
      } catch (error) {
        out.push({ ok: false, error });
      }
    }
  }
  return out;
}
