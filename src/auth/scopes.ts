/**
 * SMART on FHIR scopes (App Launch 2.x, "Scopes and Launch Context"), parsed into grants.
 *
 * Resource scopes look like `context/Type.permissions[?query]`:
 * - context: `patient` (one patient's compartment), `user` (what the user may see), `system`
 *   (backend services, no user);
 * - Type: a resource type or `*`;
 * - permissions: SMART v1 `read` (= rs), `write` (= cud), `*` (= cruds), or SMART v2 letters, a
 *   non-empty subset of `cruds` written in that order (`rs`, `cud`, `cruds`);
 * - query (v2 only): search parameters that a resource must match to be covered (granular scopes,
 *   e.g. `patient/Observation.rs?category=vital-signs`).
 *
 * Anything else (`openid`, `fhirUser`, `launch`, `launch/patient`, `offline_access`, ...) is kept
 * as a plain scope. Scopes this parser does not understand are reported, never widened.
 */

export type ScopeLetter = 'c' | 'r' | 'u' | 'd' | 's';
export type ScopeContext = 'patient' | 'user' | 'system';

export const LETTERS: readonly ScopeLetter[] = ['c', 'r', 'u', 'd', 's'];

/** One resource scope. */
export interface Grant {
  /** The scope as written. */
  scope: string;
  context: ScopeContext;
  /** A resource type, or `*` for all. */
  resourceType: string;
  letters: ReadonlySet<ScopeLetter>;
  /** Granular restriction: search parameters (name -> values) a resource must match. */
  query?: [string, string][];
  /** SMART v1 (`read`/`write`/`*`) or v2 (letters). */
  version: 1 | 2;
}

export interface ParsedScopes {
  grants: Grant[];
  /** Non-resource scopes: openid, fhirUser, launch, launch/patient, offline_access, ... */
  other: Set<string>;
  /** Tokens that are neither (reported back, never granted). */
  unknown: string[];
}

const KNOWN_OTHER = new Set([
  'openid',
  'fhirUser',
  'profile',
  'launch',
  'launch/patient',
  'launch/encounter',
  'offline_access',
  'online_access',
]);

const RESOURCE_SCOPE = /^(patient|user|system)\/(\*|[A-Z][A-Za-z]+)\.([a-z*]+)(\?.*)?$/;

const V1: Record<string, ScopeLetter[]> = {
  read: ['r', 's'],
  write: ['c', 'u', 'd'],
  '*': ['c', 'r', 'u', 'd', 's'],
};

/** Letters of a v2 permission string, or undefined when it is not `cruds` in order without repeats. */
function v2Letters(perm: string): ScopeLetter[] | undefined {
  if (!/^c?r?u?d?s?$/.test(perm) || perm === '') {
    return undefined;
  }
  return [...perm] as ScopeLetter[];
}

/** Parses one resource scope; undefined when `token` is not one. */
export function parseResourceScope(token: string): Grant | undefined {
  const m = RESOURCE_SCOPE.exec(token);
  if (!m) {
    return undefined;
  }
  const [, context, resourceType, perm, rawQuery] = m;
  const v1 = V1[perm];
  const letters = v1 ?? v2Letters(perm);
  if (!letters) {
    return undefined;
  }
  const grant: Grant = { scope: token, context: context as ScopeContext, resourceType, letters: new Set(letters), version: v1 ? 1 : 2 };
  if (rawQuery !== undefined) {
    // Granular scopes are a v2 feature; a query on a v1 scope is not a scope we know.
    if (v1) {
      return undefined;
    }
    const query = [...new URLSearchParams(rawQuery.slice(1))];
    if (query.length === 0) {
      return undefined;
    }
    grant.query = query;
  }
  return grant;
}

/** Parses a space-separated scope string. */
export function parseScopes(scope: string | undefined): ParsedScopes {
  const out: ParsedScopes = { grants: [], other: new Set(), unknown: [] };
  for (const token of (scope ?? '').split(/\s+/).filter(Boolean)) {
    const grant = parseResourceScope(token);
    if (grant) {
      out.grants.push(grant);
    } else if (KNOWN_OTHER.has(token)) {
      out.other.add(token);
    } else {
      out.unknown.push(token);
    }
  }
  return out;
}

/** Whether `inner` asks for nothing that `outer` does not cover (for narrowing on refresh or by client policy). */
export function grantCovers(outer: Grant, inner: Grant): boolean {
  if (outer.context !== inner.context) {
    return false;
  }
  if (outer.resourceType !== '*' && outer.resourceType !== inner.resourceType) {
    return false;
  }
  for (const l of inner.letters) {
    if (!outer.letters.has(l)) {
      return false;
    }
  }
  if (outer.query) {
    // A restricted grant covers only a scope with the same restriction (or a narrower one: more parameters).
    const have = new Set((inner.query ?? []).map(([k, v]) => `${k}=${v}`));
    return outer.query.every(([k, v]) => have.has(`${k}=${v}`));
  }
  return true;
}

/**
 * The scopes of `requested` that `allowed` covers: a client asks, its registration (or the
 * original grant, on refresh) limits. Resource scopes must be covered by some allowed scope;
 * other scopes must appear in `allowed` as written.
 */
export function narrowScopes(requested: string, allowed: string): string {
  const allow = parseScopes(allowed);
  const kept: string[] = [];
  for (const token of requested.split(/\s+/).filter(Boolean)) {
    const grant = parseResourceScope(token);
    if (grant) {
      if (allow.grants.some((a) => grantCovers(a, grant))) {
        kept.push(token);
      }
    } else if (allow.other.has(token)) {
      kept.push(token);
    }
  }
  return [...new Set(kept)].join(' ');
}
