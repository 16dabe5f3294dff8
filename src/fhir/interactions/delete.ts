import { notFound } from '../../errors';
import { parseETag, requireId, requireType } from '../common';
import type { Handler } from '../types';
import { afterWrite } from '../write';

/**
 * delete: `DELETE [type]/[id]` (FHIR R4 http.html#delete). The delete is stored as a version; later
 * reads answer 410. Deleting an already deleted resource changes nothing and answers 204.
 */
export const deleteInteraction: Handler = async (req, ctx, params) => {
  const type = requireType(params.type);
  const id = requireId(params.id);
  return ctx.store.transaction(async (w) => {
    const existing = await w.read(type, id);
    if (!existing) {
      throw notFound(`${type}/${id} not found`);
    }
    const version = await w.delete(type, id, { ifMatch: parseETag(req.ifMatch) });
    if (!version) {
      return { status: 204 };
    }
    afterWrite(ctx, type, existing.json, true);
    return { status: 204, versionId: version.versionId, lastModified: version.lastUpdated };
  });
};
