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
