/**
 * What one caller may do: the grants of its token, the patient in context, and the rules that turn
 * them into decisions. The FHIR core asks it three questions:
 *
 * - `allows(letter, type)`: may this interaction run at all for this type (403 if not)?
 * - `filter(type, letter)`: which stored resources of this type may it see, as a search filter the
 *   store applies in SQL (search, chains, `_has`, conditional matching);
 * - `permits(resource, letter)`: may it see or write this one resource (reads, history, includes,
 *   writes), decided in memory from the resource's own content.
 *
 * Both forms express the same rule, per grant, OR-ed over the grants that cover the type and letter:
 * - a `patient/` grant (or any grant of a user who is a Patient) covers only resources in that
 *   patient's compartment (FHIR R4 Patient CompartmentDefinition); types outside the compartment
 *   (Practitioner, Organization, Medication, ...) hold no patient's data and are covered whole;
 * - a granular grant (`?category=...`) covers only resources matching its query. Its parameters
 *   must be token parameters of the type (category, code, status, ...): other kinds are not
 *   granted, so the in-memory and SQL forms can never disagree.
 */
import { forbidden } from '../errors';
import { patientCompartmentParams } from '../fhir/compartment';
import type { SearchParamRegistry } from '../search/definitions';
import { extractSelected, type IndexRows } from '../search/extract';
import type { SearchParser } from '../search/parse';
import type { SearchFilter } from '../store/api';
import { tokenValueMatches } from '../search/match';
import { RESOURCE_TYPES } from '../validation/schema';
import { type Grant, parseScopes, type ScopeLetter } from './scopes';

/** Who is calling, as established by a verified token (or the server itself). */
export interface Principal {
  /** The OAuth client. */
  clientId: string;
  /** The signed-in user, `Patient/123` or `Practitioner/abc` (absent for backend services). */
  fhirUser?: string;
  /** The patient in context (launch, picker, or the Patient user). */
  patient?: string;
  /** The granted scopes, space-separated. */
  scope: string;
  /** The token id (revocation, audit). */
  jti?: string;
}

export interface PolicyDeps {
  registry: SearchParamRegistry;
  /** A strict search parser (for granular scope queries). */
  parser: SearchParser;
  baseUrl?: string;
}

/** A grant as it applies to one resource type: its compartment and query restrictions. */
interface Applied {
  /** Patient id whose compartment bounds the grant (undefined: no compartment bound). */
  patient?: string;
  /** Token filters from a granular scope (all must hold). */
  tokens: Extract<SearchFilter, { kind: 'token' }>[];
}

/**
 * Types outside the Patient compartment that a grant bounded to one patient still does not cover:
 * Subscriptions carry endpoints, headers and signing secrets, and their notifications are about
 * everyone's resources.
 */
const PATIENT_CLOSED_TYPES = new Set(['Subscription']);

export class AccessPolicy {
  readonly grants: Grant[];
  private readonly cache = new Map<string, Applied[]>();

  constructor(
    readonly principal: Principal,
    private readonly deps: PolicyDeps,
  ) {
    this.grants = parseScopes(principal.scope).grants;
  }

  /** The patient a grant is bounded by, or null when the grant cannot apply at all. */
  private boundPatient(g: Grant): string | undefined | null {
    const userPatient = this.principal.fhirUser?.startsWith('Patient/') ? this.principal.fhirUser.slice('Patient/'.length) : undefined;
    if (g.context === 'patient') {
      // A patient/ scope without a patient in context grants nothing.
      return this.principal.patient ?? userPatient ?? null;
    }
    if (g.context === 'user') {
      if (!this.principal.fhirUser) {
        return null;
      }
      return userPatient; // a Patient user sees only their own record; others are not bounded
    }
    return undefined; // system
  }

  /** The grants covering `letter` on `type`, each with its restrictions. */
  private applied(type: string, letter: ScopeLetter): Applied[] {
    const key = `${type}.${letter}`;
    let out = this.cache.get(key);
    if (out) {
      return out;
    }
    out = [];
    for (const g of this.grants) {
      if ((g.resourceType !== '*' && g.resourceType !== type) || !g.letters.has(letter)) {
        continue;
      }
      const patient = this.boundPatient(g);
      if (patient === null) {
        continue;
      }
      if (patient !== undefined && PATIENT_CLOSED_TYPES.has(type)) {
        continue; // server configuration with credentials in it: not an app's business
      }
      const tokens = g.query ? this.granularFilters(type, g.query) : [];
      if (tokens === undefined) {
        continue;
      }
      out.push({ patient: patientCompartmentParams(type).length > 0 || type === 'Patient' ? patient : undefined, tokens });
    }
    this.cache.set(key, out);
    return out;
  }

  /** A granular query as token filters, or undefined when it is not one this server can apply to `type`. */
  private granularFilters(type: string, query: [string, string][]): Extract<SearchFilter, { kind: 'token' }>[] | undefined {
    const params: Record<string, string[]> = {};
    for (const [k, v] of query) {
      (params[k] ??= []).push(v);
    }
    try {
      const parsed = this.deps.parser.parse(type, params);
      if (parsed.filters.length !== query.length || parsed.filters.some((f) => f.kind !== 'token')) {
        return undefined;
      }
      return parsed.filters as Extract<SearchFilter, { kind: 'token' }>[];
    } catch {
      return undefined; // a parameter the type does not have: the grant covers nothing of this type
    }
  }

  /** Whether some grant lets the caller `letter` resources of `type` (any type when undefined). */
  allows(letter: ScopeLetter, type?: string): boolean {
    if (type === undefined) {
      return this.grants.some((g) => g.letters.has(letter) && this.boundPatient(g) !== null);
    }
    return this.applied(type, letter).length > 0;
  }

  /** Throws 403 unless `allows(letter, type)`. */
  require(letter: ScopeLetter, type?: string): void {
    if (!this.allows(letter, type)) {
      throw forbidden(`The token's scopes (${this.principal.scope || 'none'}) do not allow ${LETTER_NAMES[letter]} ${type ?? 'resources'}`);
    }
  }

  /** Whether the caller is a backend service with full system access (administrative operations). */
  isSystemAdmin(): boolean {
    return this.grants.some((g) => g.context === 'system' && g.resourceType === '*' && ['c', 'r', 'u', 'd', 's'].every((l) => g.letters.has(l as ScopeLetter)));
  }

  /**
   * The resources of `type` the caller may `letter`, as a store filter: undefined = all of them,
   * `{ kind: 'or', filters: [] }` = none.
   */
  filter(type: string, letter: ScopeLetter): SearchFilter | undefined {
    const parts: SearchFilter[] = [];
    for (const a of this.applied(type, letter)) {
      const conds: SearchFilter[] = [...a.tokens];
      if (a.patient !== undefined) {
        conds.push(compartmentFilter(type, a.patient));
      }
      if (conds.length === 0) {
        return undefined; // one unrestricted grant covers everything
      }
      parts.push(conds.length === 1 ? conds[0] : { kind: 'and', filters: conds });
    }
    return parts.length === 1 ? parts[0] : { kind: 'or', filters: parts };
  }

  /**
   * A system-level search over `types` (undefined: every type): the types the caller may search and
   * one filter giving each its own rule (undefined when none is restricted).
   */
  perTypeFilter(types: readonly string[] | undefined): { types: string[]; filter?: SearchFilter } {
    const candidates = types ?? [...RESOURCE_TYPES];
    const open: string[] = [];
    const restricted: SearchFilter[] = [];
    const allowed: string[] = [];
    for (const t of candidates) {
      if (!this.allows('s', t)) {
        continue;
      }
      allowed.push(t);
      const f = this.filter(t, 's');
      if (f === undefined) {
        open.push(t);
      } else {
        restricted.push({ kind: 'and', filters: [{ kind: 'type', types: [t] }, f] });
      }
    }
    if (restricted.length === 0 && allowed.length === candidates.length) {
      return { types: types ? [...types] : [] };
    }
    const parts: SearchFilter[] = open.length > 0 ? [{ kind: 'type', types: open }, ...restricted] : restricted;
    // An empty type list means "every type" to the store: searching nothing needs a false filter.
    return { types: allowed, filter: { kind: 'or', filters: parts } };
  }

  /**
   * Whether the caller may write (`c`, `u`, `d`) this content. Beyond `permits`: a caller bounded
   * to one patient may not write a resource that also sits in another patient's compartment (a
   * write into someone else's record, or a shared resource such as a Group of several patients).
   */
  permitsWrite(resource: { resourceType: string; id?: string }, letter: ScopeLetter): boolean {
    if (!this.permits(resource, letter)) {
      return false;
    }
    const applied = this.applied(resource.resourceType, letter);
    if (applied.some((a) => a.patient === undefined)) {
      return true; // an unbounded grant (system, practitioner) covers it
    }
    if (resource.resourceType === 'Patient') {
      return true; // permits() already required it to be the patient's own record
    }
    const codes = new Set(patientCompartmentParams(resource.resourceType));
    const rows = extractSelected(resource, this.deps.registry, codes, { baseUrl: this.deps.baseUrl });
    const patients = new Set(applied.map((a) => a.patient));
    return rows.reference.every((r) => !codes.has(r.code) || r.targetType !== 'Patient' || patients.has(r.targetId ?? undefined));
  }

  /** Whether the caller may `letter` this resource (parsed JSON). */
  permits(resource: { resourceType: string; id?: string }, letter: ScopeLetter): boolean {
    const applied = this.applied(resource.resourceType, letter);
    if (applied.length === 0) {
      return false;
    }
    if (applied.some((a) => a.patient === undefined && a.tokens.length === 0)) {
      return true;
    }
    const codes = new Set<string>();
    for (const a of applied) {
      a.tokens.forEach((t) => codes.add(t.code));
      if (a.patient !== undefined) {
        patientCompartmentParams(resource.resourceType).forEach((c) => codes.add(c));
      }
    }
    const rows = extractSelected(resource, this.deps.registry, codes, { baseUrl: this.deps.baseUrl });
    return applied.some(
      (a) => (a.patient === undefined || inCompartment(resource, rows, a.patient)) && a.tokens.every((t) => tokenMatches(rows, t)),
    );
  }
}

const LETTER_NAMES: Record<ScopeLetter, string> = { c: 'creating', r: 'reading', u: 'updating', d: 'deleting', s: 'searching' };

/** The resources of `type` in Patient `patient`'s compartment, as a store filter. */
export function compartmentFilter(type: string, patient: string): SearchFilter {
  if (type === 'Patient') {
    return { kind: 'id', ids: [patient] };
  }
  const parts: SearchFilter[] = patientCompartmentParams(type).map((code) => ({ kind: 'reference', code, values: [{ targetType: 'Patient', targetId: patient }] }));
  return parts.length === 1 ? parts[0] : { kind: 'or', filters: parts };
}

function inCompartment(resource: { resourceType: string; id?: string }, rows: IndexRows, patient: string): boolean {
  if (resource.resourceType === 'Patient') {
    return resource.id === patient;
  }
  const codes = new Set(patientCompartmentParams(resource.resourceType));
  return rows.reference.some((r) => codes.has(r.code) && r.targetType === 'Patient' && r.targetId === patient);
}

function tokenMatches(rows: IndexRows, f: Extract<SearchFilter, { kind: 'token' }>): boolean {
  return rows.token.some((row) => row.code === f.code && f.values.some((m) => tokenValueMatches(row, m)));
}
