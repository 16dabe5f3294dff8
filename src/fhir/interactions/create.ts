import { newResourceId } from '../ids';
import { preconditionFailed } from '../../errors';
import { matchIds } from '../../search/conditional';
import { requireResource, requireType, versionResponse } from '../common';
import type { Handler } from '../types';
import { afterWrite, checkProfiles, forStore, writeResponse } from '../write';

/**
 * create: `POST [type]` (FHIR R4 http.html#create). The server assigns a UUID; any id in the body
 * is ignored as the spec says. `If-None-Exist` makes it conditional.
 */
export const create: Handler = async (req, ctx, params) => {
  const type = requireType(params.type);
  const resource = requireResource(req, type);
  await checkProfiles(resource, ctx);
  return ctx.store.transaction(async (w) => {
    if (req.ifNoneExist !== undefined) {
      const matches = await matchIds(w, ctx.searchParser(false), type, req.ifNoneExist);
      if (matches.length > 1) {
        throw preconditionFailed(`If-None-Exist '${req.ifNoneExist}' matched ${matches.length} resources`);
      }
      if (matches.length === 1) {
        // Already there: 200 with the existing resource, nothing written (http.html#ccreate).
        const existing = await w.read(type, matches[0]);
        return versionResponse(type, matches[0], existing, 200);
      }
    }
    const version = await w.create(forStore(resource, req.assignedId ?? newResourceId()));
    afterWrite(ctx, type, version.json);
    return writeResponse(req, version, 201, `Created ${type}/${version.id}`);
  });
};
