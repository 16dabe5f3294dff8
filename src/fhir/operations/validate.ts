import type { OperationOutcome, Parameters, Resource } from '@medplum/fhirtypes';
import { badRequest, outcomeOf } from '../../errors';
import { validateStructure } from '../../validation/schema';
import { requireId, requireType } from '../common';
import type { Handler } from '../types';

const MODES = ['create', 'update', 'delete', 'profile'];

/**
 * $validate: `POST [type]/$validate` and `POST [type]/[id]/$validate` (FHIR R4
 * resource-operation-validate). Runs every check a write would run and returns the
 * OperationOutcome; nothing is stored. The body is the resource or a Parameters with `resource`,
 * `mode` and `profile`.
 */
export const validateOperation: Handler = async (req, ctx, params) => {
  const type = requireType(params.type);
  const id = params.id === undefined ? undefined : requireId(params.id);
  let resource: unknown = req.body;
  let mode = req.query.mode?.[0];
  let profile = req.query.profile?.[0];
  const body = req.body as Parameters | undefined;
  if (body?.resourceType === 'Parameters' && type !== 'Parameters') {
    resource = body.parameter?.find((p) => p.name === 'resource')?.resource;
    mode = body.parameter?.find((p) => p.name === 'mode')?.valueCode ?? mode;
    profile = body.parameter?.find((p) => p.name === 'profile')?.valueUri ?? profile;
  }
  if (mode !== undefined && !MODES.includes(mode)) {
    throw badRequest(`mode must be one of ${MODES.join(', ')}, got '${mode}'`);
  }
  if (mode === 'delete') {
    // Nothing in this server forbids deletes yet; the resource only has to exist.
    if (!id) {
      throw badRequest('mode=delete needs an instance: POST [type]/[id]/$validate');
    }
    const current = await ctx.store.read(type, id);
    return { status: 200, resource: outcomeFor(current && !current.deleted ? [] : [`${type}/${id} does not exist`]) };
  }
  if (typeof resource !== 'object' || resource === null) {
    throw badRequest('$validate needs a resource in the body or a Parameters with a resource parameter');
  }
  const r = resource as Resource;
  if (r.resourceType !== type) {
    const issues = [`resourceType '${String(r.resourceType)}' does not match '${type}' in the URL`];
    return { status: 200, resource: outcomeFor(issues, ['resourceType']) };
  }
  if (mode === 'update' && id && r.id !== id) {
    return { status: 200, resource: outcomeFor([`id '${String(r.id)}' does not match '${id}' in the URL`], [`${type}.id`]) };
  }
  const issues = validateStructure(r);
  if (issues.length === 0) {
    const withProfile = profile ? ({ ...r, meta: { ...(r.meta ?? {}), profile: [...(r.meta?.profile ?? []), profile] } } as Resource) : r;
    issues.push(...(await ctx.validateProfiles(withProfile)));
  }
  const outcome: OperationOutcome =
    issues.length > 0 ? outcomeOf(issues) : outcomeFor([]);
  return { status: 200, resource: outcome };
};

function outcomeFor(errors: string[], expression?: string[]): OperationOutcome {
  if (errors.length === 0) {
    return outcomeOf([{ severity: 'information', code: 'informational', diagnostics: 'Validation successful: no issues found', details: { text: 'Validation successful: no issues found' } }]);
  }
  return outcomeOf(errors.map((text) => ({ severity: 'error', code: 'invalid', diagnostics: text, details: { text }, expression })));
}
