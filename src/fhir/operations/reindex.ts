import type { Parameters } from '@medplum/fhirtypes';
import type { Handler } from '../types';
import { requireType } from '../common';

/**
 * $reindex: `POST [base]/$reindex` or `POST [type]/$reindex`. Rebuilds the search index of current
 * resources, e.g. after a SearchParameter was added, and answers how many were reindexed. Runs to
 * completion before answering; `continuum reindex` shows progress for large stores.
 */
export const reindexOperation: Handler = async (_req, ctx, params) => {
  const resourceType = params.type === undefined ? undefined : requireType(params.type);
  const count = await ctx.store.reindex({ resourceType });
  const result: Parameters = {
    resourceType: 'Parameters',
    parameter: [
      { name: 'reindexed', valueInteger: count },
      ...(resourceType ? [{ name: 'type', valueCode: resourceType }] : []),
    ],
  };
  return { status: 200, resource: result };
};
