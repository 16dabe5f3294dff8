/**
 * Which chronic-condition category (ccm-domain.md section 2) a Condition falls in.
 *
 * The table is data: every ConceptMap whose target is the chronic-categories ValueSet (shipped as
 * profiles/ConceptMap-chronic-category.json; a deployment adds its own ConceptMap files to extend it).
 * SNOMED CT groups map exact codes; a group marked with the concept-map-prefix-match extension maps
 * code prefixes (ICD-10-CM): a code matches when it starts with the prefix, dots ignored, and the
 * longest matching prefix wins. A Condition's chronic-category extension (a clinician's explicit
 * assertion) wins over its codes.
 */
import type { CodeableConcept, ConceptMap, Condition } from '@medplum/fhirtypes';
import { CCM_SYSTEM, CHRONIC_CATEGORY_EXTENSION, CHRONIC_CATEGORY_VALUESET, PREFIX_MATCH_EXTENSION } from './codes';

export interface Classification {
  category: string;
  /** How it was decided: the extension, or the coding that matched (`system|code`). */
  basis: string;
}

export class ChronicCategories {
  /** system -> code -> category (exact groups). */
  private readonly exact = new Map<string, Map<string, string>>();
  /** system -> [prefix (no dots, upper case), category], longest first. */
  private readonly prefixes = new Map<string, [string, string][]>();
  /** Every category code the maps name, plus those of the CodeSystem. */
  readonly categories = new Set<string>();

  constructor(maps: readonly ConceptMap[]) {
    for (const map of maps) {
      if (map.targetUri !== CHRONIC_CATEGORY_VALUESET && map.targetCanonical !== CHRONIC_CATEGORY_VALUESET) {
        continue;
      }
      for (const group of map.group ?? []) {
        if (!group.source || (group.target && group.target !== CCM_SYSTEM)) {
          continue;
        }
        const prefix = group.extension?.some((e) => e.url === PREFIX_MATCH_EXTENSION && e.valueBoolean === true) ?? false;
        for (const element of group.element ?? []) {
          const target = element.target?.find((t) => t.code && t.equivalence !== 'unmatched' && t.equivalence !== 'disjoint');
          if (!element.code || !target?.code) {
            continue;
          }
          this.categories.add(target.code);
          if (prefix) {
            const list = this.prefixes.get(group.source) ?? [];
            list.push([normalizePrefix(element.code), target.code]);
            this.prefixes.set(group.source, list);
          } else {
            const codes = this.exact.get(group.source) ?? new Map<string, string>();
            codes.set(element.code, target.code);
            this.exact.set(group.source, codes);
          }
        }
      }
    }
    for (const list of this.prefixes.values()) {
      list.sort((a, b) => b[0].length - a[0].length);
    }
  }

  /** Whether any map was loaded (a server without the CCM profiles has none). */
  get empty(): boolean {
    return this.exact.size === 0 && this.prefixes.size === 0;
  }

  /** The category of one code, if the table has it. */
  ofCoding(system: string | undefined, code: string | undefined): string | undefined {
    if (!system || !code) {
      return undefined;
    }
    const exact = this.exact.get(system)?.get(code);
    if (exact) {
      return exact;
    }
    const list = this.prefixes.get(system);
    if (list) {
      const normal = normalizePrefix(code);
      return list.find(([p]) => normal.startsWith(p))?.[1];
    }
    return undefined;
  }

  /** The category of a CodeableConcept: the first coding that matches. */
  ofConcept(concept: CodeableConcept | undefined): Classification | undefined {
    for (const coding of concept?.coding ?? []) {
      const category = this.ofCoding(coding.system, coding.code);
      if (category) {
        return { category, basis: `${coding.system}|${coding.code}` };
      }
    }
    return undefined;
  }

  /** A Condition's category: its chronic-category extension, else its code. */
  ofCondition(condition: Condition): Classification | undefined {
    const asserted = condition.extension?.find((e) => e.url === CHRONIC_CATEGORY_EXTENSION)?.valueCode;
    // Only a category the table knows: the extension's own binding is not enforced on writes.
    if (asserted && this.categories.has(asserted)) {
      return { category: asserted, basis: 'chronic-category extension' };
    }
    return this.ofConcept(condition.code);
  }
}

function normalizePrefix(code: string): string {
  return code.replace(/\./g, '').toUpperCase();
}
