import { requireId, requireType, versionResponse } from '../common';
import { checkParams, READ_PARAMS } from '../params';
import { applySubsetting } from '../subsetting';
import type { Handler } from '../types';

/** read: `GET [type]/[id]` (FHIR R4 http.html#read). */
export const read: Handler = async (req, ctx, params) => {
  const type = requireType(params.type);
  const id = requireId(params.id);
  checkParams(req, READ_PARAMS);
  const version = await ctx.store.read(type, id);
  return applySubsetting(req, versionResponse(type, id, version));
};
