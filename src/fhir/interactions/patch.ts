import type { Resource } from '@medplum/fhirtypes';
import { badRequest, FhirError, outcomeOf, preconditionFailed } from '../../errors';
import { validateStructure } from '../../validation/schema';
import { parseETag, parseVersion, requireId, requireType, versionResponse } from '../common';
import { applyFhirPatch, isFhirPatch, parseFhirPatch } from '../fhirpatch';
import { applyJsonPatch, parsePatch } from '../jsonpatch';
import type { Handler } from '../types';
import { afterWrite, checkProfiles, forStore, writeResponse } from '../write';

/**
 * patch: `PATCH [type]/[id]` with a JSON Patch body (`application/json-patch+json`) or a FHIRPath
 * Patch (a Parameters resource, `application/fhir+json`), FHIR R4 http.html#patch. The patched
 * resource is validated like any update; `If-Match` is honoured. Without If-Match, a concurrent
 * write between our read and our write is retried, never lost.
 */
export const patch: Handler = async (req, ctx, params) => {
  const type = requireType(params.type);
  const id = requireId(params.id);
  const fhirPatch = (req.contentType === 'application/fhir+json' || req.contentType === 'application/json') && isFhirPatch(req.body);
  if (req.contentType !== 'application/json-patch+json' && !fhirPatch) {
    throw new FhirError(
      'unsupported-media-type',
      `PATCH needs a JSON Patch body (Content-Type: application/json-patch+json) or a FHIRPath Patch Parameters resource (application/fhir+json), got '${req.contentType ?? 'none'}'${req.contentType === 'application/fhir+json' ? ' with a body that is not a Parameters resource' : ''}`,
    );
  }
  // Parsed once (a bad body is a 400 before any read); applied to the current version on each attempt.
  let apply: (resource: Resource) => Resource;
  if (fhirPatch) {
    const ops = parseFhirPatch(req.body);
    apply = (resource) => applyFhirPatch(resource, ops);
  } else {
    const ops = parsePatch(req.body);
    apply = (resource) => applyJsonPatch(resource, ops) as Resource;
  }
  const clientIfMatch = parseETag(req.ifMatch);
  for (let attempt = 0; ; attempt++) {
    try {
      return await ctx.store.transaction(async (w) => {
        const current = await w.read(type, id);
        versionResponse(type, id, current); // 404 / 410
        const ifMatch = clientIfMatch ?? current?.versionId;
        if (clientIfMatch !== undefined && clientIfMatch !== current?.versionId) {
          throw preconditionFailed(`If-Match expected version ${clientIfMatch} of ${type}/${id}, but the current version is ${current?.versionId}`);
        }
        const patched = apply(parseVersion(current as NonNullable<typeof current>));
        if (typeof patched !== 'object' || patched === null || patched.resourceType !== type || patched.id !== id) {
          throw badRequest('A patch may not change resourceType or id');
        }
        const issues = validateStructure(patched);
        if (issues.length > 0) {
          throw new FhirError('unprocessable', outcomeOf(issues));
        }
        await checkProfiles(patched, ctx);
        const { version } = await w.update(forStore(patched, id), { ifMatch, method: 'PATCH' });
        afterWrite(ctx, type, version.json);
        return writeResponse(req, version, 200, `Patched ${type}/${id}`);
      });
    } catch (err) {
      const retry = clientIfMatch === undefined && err instanceof FhirError && err.category === 'precondition-failed';
      if (!retry || attempt >= 3) {
        throw err;
      }
    }
  }
};
