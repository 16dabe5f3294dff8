import { parseETag, requireId, requireType, versionResponse } from '../common';
import { checkParams, READ_PARAMS } from '../params';
import { applySubsetting } from '../subsetting';
import type { FhirRequest, FhirResponse, Handler } from '../types';

/** read: `GET [type]/[id]` (FHIR R4 http.html#read). */
export const read: Handler = async (req, ctx, params) => {
  const type = requireType(params.type);
  const id = requireId(params.id);
  checkParams(req, READ_PARAMS);
  const version = await ctx.store.read(type, id);
  const res = versionResponse(type, id, version);
  if (notModified(req, res)) {
    return { status: 304, versionId: res.versionId, lastModified: res.lastModified };
  }
  return applySubsetting(req, res);
};

/** Conditional read (http.html#cread): If-None-Match on the version, If-Modified-Since on lastUpdated. */
function notModified(req: FhirRequest, res: FhirResponse): boolean {
  if (req.ifNoneMatch !== undefined) {
    return req.ifNoneMatch.split(',').some((tag) => tag.trim() === '*' || parseETag(tag) === res.versionId);
  }
  if (req.ifModifiedSince !== undefined && res.lastModified) {
    const since = Date.parse(req.ifModifiedSince);
    // HTTP dates have whole seconds; compare at that precision.
    return !Number.isNaN(since) && Math.floor(Date.parse(res.lastModified) / 1000) * 1000 <= since;
  }
  return false;
}
