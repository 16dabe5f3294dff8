/**
 * BotFhirClient over the FHIR core in process (`handle()` with a caller's context): what the test
 * harness gives a bot run outside the sandbox. Inside the sandbox the same API is built in the bot's
 * own context (sandbox-worker.js); test/unit/bots/client-parity.test.ts keeps the two alike.
 */
import type { Bundle, OperationOutcome, Resource } from '@medplum/fhirtypes';
import { FhirError, STATUS_BY_CATEGORY } from '../errors';
import { handle } from '../fhir/router';
import type { FhirMethod, RequestContext } from '../fhir/types';
import type { BotFhirClient, BotQuery } from './types';

/** Query parameters as the core takes them. */
export function toQuery(q: BotQuery | undefined): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  if (q === undefined) {
    return out;
  }
  if (typeof q === 'string') {
    for (const [k, v] of new URLSearchParams(q.replace(/^\?/, ''))) {
      (out[k] ??= []).push(v);
    }
    return out;
  }
  for (const [k, v] of Object.entries(q)) {
    if (v !== undefined) {
      out[k] = Array.isArray(v) ? v.map(String) : [String(v)];
    }
  }
  return out;
}

/** An error answer of the server, as bots see it. */
export class FhirClientError extends Error {
  constructor(
    readonly status: number,
    readonly outcome?: OperationOutcome,
  ) {
    const issue = outcome?.issue?.[0];
    super(issue?.diagnostics ?? issue?.details?.text ?? `HTTP ${status}`);
    this.name = 'FhirClientError';
  }
}

/** A BotFhirClient acting with `ctx` (its store, scopes and audit). */
export function inProcessClient(ctx: RequestContext): BotFhirClient {
  const call = async <T>(method: FhirMethod, path: string, o: { query?: BotQuery; body?: unknown; ifMatch?: string; ifNoneExist?: string; contentType?: string } = {}): Promise<T> => {
    try {
      const res = await handle(
        {
          method,
          path,
          query: toQuery(o.query),
          body: o.body === undefined ? undefined : JSON.parse(JSON.stringify(o.body)),
          contentType: o.body === undefined ? undefined : (o.contentType ?? 'application/fhir+json'),
          ifMatch: o.ifMatch === undefined || o.ifMatch.startsWith('W/') ? o.ifMatch : `W/"${o.ifMatch}"`,
          ifNoneExist: o.ifNoneExist,
          preferReturn: 'representation',
        },
        ctx,
      );
      if (res.status >= 400) {
        throw new FhirClientError(res.status, res.resource as OperationOutcome | undefined);
      }
      return (res.json ? JSON.parse(res.json) : (res.resource ?? null)) as T;
    } catch (err) {
      if (err instanceof FhirError) {
        throw new FhirClientError(STATUS_BY_CATEGORY[err.category], err.outcome);
      }
      throw err;
    }
  };
  const ifNoneExist = (q: BotQuery): string => new URLSearchParams(Object.entries(toQuery(q)).flatMap(([k, vs]) => vs.map((v): [string, string] => [k, v]))).toString();
  return {
    readResource: (type, id) => call('GET', `${type}/${id}`),
    vreadResource: (type, id, vid) => call('GET', `${type}/${id}/_history/${vid}`),
    readHistory: (type, id) => call('GET', `${type}/${id}/_history`),
    search: (type, query) => call('GET', type, { query }),
    searchResources: async <T extends Resource>(type: T['resourceType'], query?: BotQuery) => {
      const bundle = await call<Bundle<T>>('GET', type, { query });
      return (bundle.entry ?? []).filter((e) => e.search?.mode !== 'include').map((e) => e.resource as T);
    },
    searchOne: async <T extends Resource>(type: T['resourceType'], query?: BotQuery) => {
      const bundle = await call<Bundle<T>>('GET', type, { query: { ...toQuery(query), _count: '1' } });
      return bundle.entry?.[0]?.resource;
    },
    createResource: (resource) => call('POST', resource.resourceType, { body: resource }),
    createResourceIfNoneExist: (resource, query) => call('POST', resource.resourceType, { body: resource, ifNoneExist: ifNoneExist(query) }),
    updateResource: (resource, options) => call('PUT', `${resource.resourceType}/${resource.id as string}`, { body: resource, ifMatch: options?.ifMatch }),
    patchResource: (type, id, operations) => call('PATCH', `${type}/${id}`, { body: operations, contentType: 'application/json-patch+json' }),
    deleteResource: (type, id) => call('DELETE', `${type}/${id}`),
    executeBatch: (bundle) => call('POST', '', { body: bundle }),
    get: (path, query) => call('GET', path.replace(/^\/+/, ''), { query }),
    post: (path, body, query) => call('POST', path.replace(/^\/+/, ''), { body, query }),
  };
}
