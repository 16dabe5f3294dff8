/**
 * Shared helpers for the end-to-end search tests (FHIR R4 search.html).
 *
 * Each test file loads a small hand-made set of resources under short keys ('jose', 'o-weight', ...)
 * and asserts the exact set of keys a search returns. Keys are mapped to the ids the server assigned,
 * so expected results never depend on ids; `{key}` in a query is replaced by that resource's id.
 */
import { randomUUID } from 'node:crypto';
import type { Bundle, BundleEntry, BundleLink, Resource } from '@medplum/fhirtypes';
import type { Response } from 'supertest';
import { BASE_URL, FHIR_JSON, type TestServer } from '../../support/server';

const urns = new Map<string, string>();

/** A stable `urn:uuid:` for a fixture key (stable within one test file). */
export function urn(key: string): string {
  let u = urns.get(key);
  if (!u) {
    u = `urn:uuid:${randomUUID()}`;
    urns.set(key, u);
  }
  return u;
}

/** `Patient/abc/_history/1` (or an absolute URL to it) -> `Patient/abc`. */
function refOfLocation(location: string | undefined): string {
  const m = /([A-Z][A-Za-z]+\/[A-Za-z0-9\-.]{1,64})\/_history\/[^/]+$/.exec(location ?? '');
  if (!m) {
    throw new Error(`Unexpected Location '${location}'`);
  }
  return m[1];
}

/** Fixture keys <-> `Type/id` of the resources the server stored for them. */
export class Fixtures {
  private readonly refByKey = new Map<string, string>();
  private readonly keyByRef = new Map<string, string>();

  constructor(private readonly server: TestServer) {}

  private remember(key: string, ref: string): void {
    if (this.refByKey.has(key)) {
      throw new Error(`Fixture key '${key}' used twice`);
    }
    this.refByKey.set(key, ref);
    this.keyByRef.set(ref, key);
  }

  /**
   * Loads resources in one transaction Bundle POSTed to `/`: a resource with an `id` is PUT under
   * that id, any other is POSTed with fullUrl `urn(key)`, so others can reference it as `urn(key)`.
   */
  async load(resources: Record<string, Resource>): Promise<void> {
    const keys = Object.keys(resources);
    const entry: BundleEntry[] = keys.map((key) => {
      const resource = resources[key];
      return resource.id
        ? { fullUrl: `${BASE_URL}/${resource.resourceType}/${resource.id}`, resource, request: { method: 'PUT', url: `${resource.resourceType}/${resource.id}` } }
        : { fullUrl: urn(key), resource, request: { method: 'POST', url: resource.resourceType } };
    });
    const res = await this.server.request().post('/').set('Content-Type', FHIR_JSON).send({ resourceType: 'Bundle', type: 'transaction', entry });
    if (res.status !== 200) {
      throw new Error(`Loading fixtures failed: ${res.status} ${JSON.stringify(res.body)}`);
    }
    const responses = (res.body as Bundle).entry ?? [];
    keys.forEach((key, i) => this.remember(key, refOfLocation(responses[i]?.response?.location)));
  }

  /** Creates one resource with a plain POST (no transaction: references are stored exactly as given). */
  async create(key: string, resource: Resource): Promise<void> {
    const res = await this.server.request().post(`/${resource.resourceType}`).set('Content-Type', FHIR_JSON).send(resource);
    if (res.status !== 201) {
      throw new Error(`Creating '${key}' failed: ${res.status} ${JSON.stringify(res.body)}`);
    }
    this.remember(key, `${resource.resourceType}/${(res.body as Resource).id}`);
  }

  /** `Type/id` of a fixture. */
  ref(key: string): string {
    const ref = this.refByKey.get(key);
    if (!ref) {
      throw new Error(`Unknown fixture key '${key}'`);
    }
    return ref;
  }

  /** The server-assigned id of a fixture. */
  id(key: string): string {
    return this.ref(key).split('/')[1];
  }

  /** The fixture key of a returned resource, or `Type/id` for a resource that is no fixture. */
  keyOf(resource: Resource | undefined): string {
    const ref = `${resource?.resourceType}/${resource?.id}`;
    return this.keyByRef.get(ref) ?? ref;
  }

  /** Replaces every `{key}` in a query with the id of that fixture. */
  expand(query: string): string {
    return query.replace(/\{([A-Za-z0-9-]+)\}/g, (_m, key: string) => this.id(key));
  }
}

export interface SearchResult {
  /** The first page's response. */
  res: Response;
  /** Every page, following `next` links to the end. */
  pages: Bundle[];
  /** Keys of the `match` entries over all pages, in the order returned. */
  matches: string[];
  /** Keys of the `include` entries over all pages, in the order returned. */
  includes: string[];
}

export function link(bundle: Bundle, relation: string): string | undefined {
  return (bundle.link ?? []).find((l: BundleLink) => l.relation === relation)?.url;
}

/** A link URL on this server -> the path supertest requests. */
export function pathOf(url: string): string {
  expect(url.startsWith(BASE_URL + '/')).toBe(true);
  return url.slice(BASE_URL.length);
}

/** The entries of a searchset page split by search.mode; fails on an entry without a mode. */
export function entriesByMode(bundle: Bundle): { match: BundleEntry[]; include: BundleEntry[]; outcome: BundleEntry[] } {
  const out = { match: [] as BundleEntry[], include: [] as BundleEntry[], outcome: [] as BundleEntry[] };
  for (const e of bundle.entry ?? []) {
    const mode = e.search?.mode;
    expect(['match', 'include', 'outcome']).toContain(mode);
    out[mode as 'match' | 'include' | 'outcome'].push(e);
  }
  return out;
}

/**
 * Percent-encodes (as UTF-8) what cannot go raw into a request line: spaces, non-ASCII and a few
 * unsafe characters. FHIR's own separators (`|`, `,`, `$`, `:`) and any `%xx` already written are
 * left alone; write `+` as `%2B` (a raw `+` is a space in a query).
 */
export function encodeQuery(query: string): string {
  return query.replace(/[^\x21-\x7e]|[\\"<>`^{}]/gu, (c) => encodeURIComponent(c));
}

/**
 * GET `/<query>` (with `{key}` expanded), expects a 200 searchset, and follows `next` links to the
 * end, collecting the keys of matches and includes.
 */
export async function searchAll(server: TestServer, fx: Fixtures, query: string, headers: Record<string, string> = {}): Promise<SearchResult> {
  let path = '/' + encodeQuery(fx.expand(query));
  let first: Response | undefined;
  const pages: Bundle[] = [];
  const matches: string[] = [];
  const includes: string[] = [];
  for (let n = 0; n < 100; n++) {
    const req = server.request().get(path);
    for (const [k, v] of Object.entries(headers)) {
      req.set(k, v);
    }
    const res = await req;
    if (res.status !== 200) {
      throw new Error(`GET ${path} answered ${res.status}: ${JSON.stringify(res.body)}`);
    }
    first ??= res;
    const bundle = res.body as Bundle;
    expect(bundle.resourceType).toBe('Bundle');
    expect(bundle.type).toBe('searchset');
    pages.push(bundle);
    const { match, include } = entriesByMode(bundle);
    matches.push(...match.map((e) => fx.keyOf(e.resource)));
    includes.push(...include.map((e) => fx.keyOf(e.resource)));
    const next = link(bundle, 'next');
    if (!next) {
      if (/[?&]_total=accurate(&|$)/.test(query)) {
        // search.html#total: "accurate: [...] an exact total of the number of matching resources".
        expect(pages[0].total).toBe(matches.length);
      }
      return { res: first, pages, matches, includes };
    }
    path = pathOf(next);
  }
  throw new Error(`More than 100 pages for ${query}`);
}

/** The matches of a search, as a sorted list of keys (duplicates kept, so they show). */
export async function matchKeys(server: TestServer, fx: Fixtures, query: string, headers: Record<string, string> = {}): Promise<string[]> {
  return (await searchAll(server, fx, query, headers)).matches.sort();
}

export const sorted = (keys: readonly string[]): string[] => [...keys].sort();
