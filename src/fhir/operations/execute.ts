import { badRequest } from '../../errors';
import { requireId } from '../common';
import type { Handler } from '../types';

/**
 * $execute: `POST Library/{id}/$execute` runs a bot now. The body (a Parameters resource or any
 * resource) reaches the bot as `event.input`; the answer is what the bot returned (a resource, or
 * Parameters with `result`). The bot acts with its own scopes, so a caller bound to one patient may
 * not run bots.
 */
export const executeOperation: Handler = async (req, ctx, params) => {
  const id = requireId(params.id);
  if (!ctx.bots) {
    throw badRequest('Bots are not enabled on this server');
  }
  return ctx.bots.execute(id, req.body, ctx);
};

/**
 * $get-ws-binding-token: `GET|POST Subscription/{id}/$get-ws-binding-token` answers a short-lived
 * token to send as `bind-with-token <token>` on the websocket (docs/bots.md), and the socket's URL.
 */
export const wsBindingTokenOperation: Handler = async (_req, ctx, params) => {
  const id = requireId(params.id);
  if (!ctx.bots) {
    throw badRequest('Subscriptions are not enabled on this server');
  }
  return { status: 200, resource: await ctx.bots.bindingToken(id, ctx) };
};
