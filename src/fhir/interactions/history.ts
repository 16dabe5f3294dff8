import { badRequest, notFound } from '../../errors';
import { countParam, instantParam, param, requireId, requireType } from '../common';
import { bundle, historyEntry, links, pageUrl } from '../bundle';
import { checkParams } from '../params';
import type { Handler } from '../types';

/**
 * history: `GET [type]/[id]/_history`, `GET [type]/_history`, `GET _history` (FHIR R4
 * http.html#history). Newest first; `_since` and `_count`; `next` links carry an opaque cursor so
 * pages neither skip nor repeat versions while others write.
 */
export const history: Handler = async (req, ctx, params) => {
  const type = params.type === undefined ? undefined : requireType(params.type);
  const id = params.id === undefined ? undefined : requireId(params.id);
  checkParams(req, ['_since', '_count', '_cursor', '_format', '_pretty']);
  const sinceRaw = param(req, '_since');
  const since = sinceRaw === undefined ? undefined : instantParam('_since', sinceRaw);
  const cursor = param(req, '_cursor');
  if (cursor !== undefined && !/^\d{1,18}$/.test(cursor)) {
    throw badRequest(`_cursor '${cursor}' is not a cursor this server issued`);
  }
  const count = countParam(req, ctx.limits.defaultCount, ctx.limits.maxCount);
  if (type !== undefined && id !== undefined && !(await ctx.store.read(type, id))) {
    throw notFound(`${type}/${id} is not known`);
  }
  const page = await ctx.store.history({ resourceType: type, id, since, count, cursor });
  const path = [type, id, '_history'].filter(Boolean).join('/');
  const fixed: [string, string][] = [];
  if (sinceRaw) {
    fixed.push(['_since', sinceRaw]);
  }
  fixed.push(['_count', String(count)]);
  const self = pageUrl(ctx.baseUrl, path, cursor ? [...fixed, ['_cursor', cursor]] : fixed);
  const next = page.next ? pageUrl(ctx.baseUrl, path, [...fixed, ['_cursor', page.next]]) : undefined;
  const first = pageUrl(ctx.baseUrl, path, fixed);
  return {
    status: 200,
    resource: bundle('history', {
      total: page.total,
      link: links([
        ['self', self],
        ['first', first],
        ['next', next],
      ]),
      entry: page.versions.map((v) => historyEntry(ctx.baseUrl, v)),
    }),
  };
};
