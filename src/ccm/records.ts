/**
 * Reading what the CCM operations need through the caller's store (so the caller's scopes and
 * patient compartment apply): every match of a search, and one resource by reference.
 */
import type { Resource } from '@medplum/fhirtypes';
import { FhirError } from '../errors';
import type { RequestContext } from '../fhir/types';

/** Rows per store query: large pages, because a month close reads every time entry of a month. */
const PAGE = 5000;

/** Every current resource of `type` matching `query` (FHIR search parameters), in id order, up to `limit`. */
export async function searchAll<T extends Resource>(ctx: RequestContext, type: T['resourceType'], query: Record<string, string | string[]>, limit = 20_000): Promise<T[]> {
  const q: Record<string, string[]> = {};
  for (const [k, v] of Object.entries(query)) {
    q[k] = Array.isArray(v) ? v : [v];
  }
  const parsed = ctx.searchParser(false).parse(type, q);
  const out: T[] = [];
  let after: unknown[] | undefined;
  for (;;) {
    const page = await ctx.store.search({ resourceType: type, filters: parsed.filters, count: PAGE, sort: [{ kind: 'id', descending: false }], after });
    for (const v of page.versions) {
      if (v.json) {
        out.push(JSON.parse(v.json) as T);
      }
    }
    if (!page.more || out.length >= limit || !page.last) {
      return out;
    }
    after = page.last;
  }
}

/** The current version of `Type/id`, or undefined when it does not exist (or is deleted). */
export async function readReference<T extends Resource>(ctx: RequestContext, reference: string | undefined): Promise<T | undefined> {
  const m = /^([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})$/.exec(reference ?? '');
  if (!m) {
    return undefined;
  }
  const v = await ctx.store.read(m[1], m[2]);
  return v?.json && !v.deleted ? (JSON.parse(v.json) as T) : undefined;
}

/** Like readReference, but a missing resource is a 404 naming it. */
export async function readOrNotFound<T extends Resource>(ctx: RequestContext, type: string, id: string): Promise<T> {
  const found = await readReference<T>(ctx, `${type}/${id}`);
  if (!found) {
    throw new FhirError('not-found', `${type}/${id} is not known`);
  }
  return found;
}

/** YYYY-MM-DD of the server's clock (UTC). */
export function today(ctx: RequestContext): string {
  return ctx.now().toISOString().slice(0, 10);
}
