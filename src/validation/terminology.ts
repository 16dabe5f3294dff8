/**
 * Just enough terminology for required bindings: which codes a ValueSet the server has contains.
 *
 * A ValueSet is usable when it has `expansion.contains`, or a `compose` whose includes list explicit
 * concepts, whole CodeSystems the server has (content `complete`), or other such ValueSets.
 * Anything else (filters, unknown or partial CodeSystems, unknown ValueSets) makes the answer
 * "unknown" for codes not found, and an unknown answer never fails validation.
 */
import type { CodeSystem, CodeSystemConcept, ValueSet, ValueSetComposeInclude, ValueSetExpansionContains } from '@medplum/fhirtypes';
import { splitCanonical } from './conformance';

export interface TerminologySource {
  valueSet(url: string): Promise<ValueSet | undefined>;
  codeSystem(url: string): Promise<CodeSystem | undefined>;
}

/** The codes of a ValueSet by system; `complete` is false when some part could not be worked out. */
export interface Expansion {
  url: string;
  codes: Map<string, Set<string>>;
  complete: boolean;
}

export type Membership = 'member' | 'not-member' | 'unknown';

/** Whether `code` (in `system`, or in any system when none is given) is in the expansion. */
export function membership(expansion: Expansion, system: string | undefined, code: string): Membership {
  if (system !== undefined) {
    if (expansion.codes.get(system)?.has(code)) {
      return 'member';
    }
  } else {
    for (const codes of expansion.codes.values()) {
      if (codes.has(code)) {
        return 'member';
      }
    }
  }
  return expansion.complete ? 'not-member' : 'unknown';
}

/** Expands ValueSets once and remembers them until `clear()`. */
export class Terminology {
  private readonly cache = new Map<string, Promise<Expansion | undefined>>();

  constructor(private readonly source: TerminologySource) {}

  /** The expansion of the ValueSet `canonical` (version ignored), or undefined when not known. */
  expand(canonical: string): Promise<Expansion | undefined> {
    const { url } = splitCanonical(canonical);
    let p = this.cache.get(url);
    if (!p) {
      p = this.compute(url, new Set());
      this.cache.set(url, p);
      p.catch(() => this.cache.delete(url));
    }
    return p;
  }

  clear(): void {
    this.cache.clear();
  }

  private async compute(url: string, seen: Set<string>): Promise<Expansion | undefined> {
    const vs = await this.source.valueSet(url);
    if (!vs) {
      return undefined;
    }
    const out: Expansion = { url, codes: new Map(), complete: true };
    if (vs.expansion?.contains) {
      addContains(out, vs.expansion.contains);
      const found = countCodes(out);
      if (vs.expansion.total !== undefined && vs.expansion.total > found) {
        out.complete = false; // a paged expansion
      }
      return out;
    }
    if (!vs.compose?.include?.length) {
      return undefined; // nothing to go by
    }
    const inner = new Set(seen).add(url);
    for (const include of vs.compose.include) {
      await this.include(out, include, inner);
    }
    for (const exclude of vs.compose.exclude ?? []) {
      // An exclusion that cannot be worked out only means some codes pass that should not.
      if (exclude.system && exclude.concept?.length && !exclude.filter?.length && !exclude.valueSet?.length) {
        const codes = out.codes.get(exclude.system);
        for (const c of exclude.concept) {
          codes?.delete(c.code);
        }
      }
    }
    return out;
  }

  private async include(out: Expansion, include: ValueSetComposeInclude, seen: Set<string>): Promise<void> {
    if (include.filter?.length) {
      out.complete = false;
      return;
    }
    // Codes from the system part (explicit concepts, or the whole CodeSystem).
    let fromSystem: Map<string, Set<string>> | undefined;
    if (include.system) {
      const codes = new Set<string>();
      if (include.concept?.length) {
        include.concept.forEach((c) => codes.add(c.code));
      } else {
        const cs = await this.source.codeSystem(include.system);
        if (!cs || (cs.content !== undefined && cs.content !== 'complete')) {
          out.complete = false;
          return;
        }
        addConcepts(codes, cs.concept ?? []);
      }
      fromSystem = new Map([[include.system, codes]]);
    }
    // Referenced ValueSets: their intersection (and with the system part, if any).
    let result = fromSystem;
    for (const ref of include.valueSet ?? []) {
      const { url } = splitCanonical(ref);
      const inner = seen.has(url) ? undefined : await this.compute(url, seen);
      if (!inner || !inner.complete) {
        out.complete = false;
        if (!inner) {
          return;
        }
      }
      result = result ? intersect(result, inner.codes) : inner.codes;
    }
    if (!result) {
      out.complete = false; // neither system nor valueSet: nothing to go by
      return;
    }
    for (const [system, codes] of result) {
      const target = out.codes.get(system) ?? new Set<string>();
      codes.forEach((c) => target.add(c));
      out.codes.set(system, target);
    }
  }
}

function addContains(out: Expansion, contains: ValueSetExpansionContains[]): void {
  for (const c of contains) {
    if (c.code !== undefined && !c.abstract) {
      const system = c.system ?? '';
      const codes = out.codes.get(system) ?? new Set<string>();
      codes.add(c.code);
      out.codes.set(system, codes);
    }
    if (c.contains) {
      addContains(out, c.contains);
    }
  }
}

function addConcepts(codes: Set<string>, concepts: CodeSystemConcept[]): void {
  for (const c of concepts) {
    codes.add(c.code);
    if (c.concept) {
      addConcepts(codes, c.concept);
    }
  }
}

function countCodes(e: Expansion): number {
  let n = 0;
  e.codes.forEach((s) => (n += s.size));
  return n;
}

function intersect(a: Map<string, Set<string>>, b: Map<string, Set<string>>): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const [system, codes] of a) {
    const other = b.get(system);
    if (other) {
      out.set(system, new Set([...codes].filter((c) => other.has(c))));
    }
  }
  return out;
}
