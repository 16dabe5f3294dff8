import { notFound } from '../../errors';
import { requireId, requireType, versionResponse } from '../common';
import { checkParams, READ_PARAMS } from '../params';
import { applySubsetting } from '../subsetting';
import type { Handler } from '../types';

/** vread: `GET [type]/[id]/_history/[vid]` (FHIR R4 http.html#vread). */
export const vread: Handler = async (req, ctx, params) => {
  const type = requireType(params.type);
  const id = requireId(params.id);
  checkParams(req, READ_PARAMS);
  const vid = params.vid ?? '';
  const version = /^\d{1,9}$/.test(vid) ? await ctx.store.vread(type, id, vid) : undefined;
  if (!version) {
    throw notFound(`Version '${vid}' of ${type}/${id} not found`);
  }
  return applySubsetting(req, versionResponse(type, id, version));
};
