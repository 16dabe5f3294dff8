import { badRequest } from '../../errors';
import { requireId } from '../common';
import type { Handler, RequestContext } from '../types';

function jobs(ctx: RequestContext): NonNullable<RequestContext['asyncJobs']> {
  if (!ctx.asyncJobs) {
    throw badRequest('Asynchronous requests are not enabled on this server');
  }
  return ctx.asyncJobs;
}

const owner = (ctx: RequestContext): string => ctx.access?.principal.clientId ?? 'server';

/** `GET $async-status/{id}`: 202 with X-Progress while running; then the batch-response Bundle. */
export const asyncStatusOperation: Handler = async (_req, ctx, params) => jobs(ctx).status(requireId(params.id), owner(ctx));

/** `DELETE $async-status/{id}`: cancels the request (202). */
export const asyncCancelOperation: Handler = async (_req, ctx, params) => jobs(ctx).cancel(requireId(params.id), owner(ctx));
