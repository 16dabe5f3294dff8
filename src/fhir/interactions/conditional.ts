import { newResourceId } from '../ids';
import { badRequest, notFound, preconditionFailed } from '../../errors';
import { matchIds } from '../../search/conditional';
import { parseETag, requireResource, requireType } from '../common';
import type { FhirRequest, Handler } from '../types';
import { afterWrite, checkProfiles, forStore, writeResponse } from '../write';

/** The search criteria of a conditional interaction: the whole query string. */
function criteria(req: FhirRequest, what: string): string {
  const params = new URLSearchParams();
  for (const [k, values] of Object.entries(req.query)) {
    for (const v of values) {
      params.append(k, v);
    }
  }
  const qs = params.toString();
  if (qs === '') {
    throw badRequest(`${what} needs search criteria in the URL (e.g. ?identifier=system|value)`);
  }
  return qs;
}

/**
 * Conditional update: `PUT [type]?[criteria]` (FHIR R4 http.html#cond-update). No match: create
 * (with the body's id if it has one); one match: update it (a different id in the body is a 400);
 * several: 412.
 */
export const conditionalUpdate: Handler = async (req, ctx, params) => {
  const type = requireType(params.type);
  const resource = requireResource(req, type);
  const query = criteria(req, 'A conditional update');
  await checkProfiles(resource, ctx);
  return ctx.store.transaction(async (w) => {
    const ids = await matchIds(w, ctx.searchParser(false), type, query);
    if (ids.length > 1) {
      throw preconditionFailed(`Conditional update '${query}' matched ${ids.length} resources`);
    }
    if (ids.length === 1 && resource.id !== undefined && resource.id !== ids[0]) {
      throw badRequest(`The id '${resource.id}' in the body does not match the resource the criteria found (${type}/${ids[0]})`, [`${type}.id`]);
    }
    const id = ids[0] ?? resource.id ?? newResourceId();
    const { version, created } = await w.update(forStore(resource, id), { ifMatch: parseETag(req.ifMatch) });
    afterWrite(ctx, type, version.json);
    return writeResponse(req, version, created ? 201 : 200, created ? `Created ${type}/${id}` : `Updated ${type}/${id}`);
  });
};

/**
 * Conditional delete: `DELETE [type]?[criteria]` (FHIR R4 http.html#cdelete). One match is deleted;
 * several are a 412 (this server deletes one resource at a time); none is a 404.
 */
export const conditionalDelete: Handler = async (req, ctx, params) => {
  const type = requireType(params.type);
  const query = criteria(req, 'A conditional delete');
  return ctx.store.transaction(async (w) => {
    const ids = await matchIds(w, ctx.searchParser(false), type, query);
    if (ids.length > 1) {
      throw preconditionFailed(`Conditional delete '${query}' matched ${ids.length} resources; this server deletes one at a time`);
    }
    if (ids.length === 0) {
      throw notFound(`Conditional delete '${query}' matched no ${type}`);
    }
    const before = await w.read(type, ids[0]);
    const version = await w.delete(type, ids[0], { ifMatch: parseETag(req.ifMatch) });
    afterWrite(ctx, type, before?.json, true);
    return { status: 204, versionId: version?.versionId, lastModified: version?.lastUpdated };
  });
};
