import { badRequest } from '../../errors';
import { parseETag, requireId, requireResource, requireType } from '../common';
import type { Handler } from '../types';
import { afterWrite, checkProfiles, forStore, writeResponse } from '../write';

/**
 * update: `PUT [type]/[id]` (FHIR R4 http.html#update), creating the resource when the id is new
 * (update-as-create). `If-Match` makes it a version-aware update (412 on mismatch).
 */
export const update: Handler = async (req, ctx, params) => {
  const type = requireType(params.type);
  const id = requireId(params.id);
  const resource = requireResource(req, type);
  if (resource.id === undefined) {
    throw badRequest(`The body has no id; it must be '${id}' to update ${type}/${id}`, [`${type}.id`]);
  }
  if (resource.id !== id) {
    throw badRequest(`The id '${resource.id}' in the body does not match '${id}' in the URL`, [`${type}.id`]);
  }
  await checkProfiles(resource, ctx);
  const { version, created } = await ctx.store.transaction((w) =>
    w.update(forStore(resource, id), { ifMatch: parseETag(req.ifMatch) }),
  );
  afterWrite(ctx, type, version.json);
  return writeResponse(req, version, created ? 201 : 200, created ? `Created ${type}/${id}` : `Updated ${type}/${id}`);
};
