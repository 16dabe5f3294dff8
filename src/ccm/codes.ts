/**
 * Continuum's CCM vocabulary: canonical URLs and codes (profiles/CodeSystem-ccm.json and
 * ccm-domain.md section 7). Code that reads or writes CCM resources names them from here.
 */
export const CCM_BASE = 'http://continuum-ccm.org/fhir';
export const CCM_SYSTEM = `${CCM_BASE}/CodeSystem/ccm`;
export const CHRONIC_CATEGORY_EXTENSION = `${CCM_BASE}/StructureDefinition/chronic-category`;
export const REVIEW_DATE_EXTENSION = `${CCM_BASE}/StructureDefinition/care-plan-review-date`;
export const PREFIX_MATCH_EXTENSION = `${CCM_BASE}/StructureDefinition/concept-map-prefix-match`;
export const CHRONIC_CATEGORY_VALUESET = `${CCM_BASE}/ValueSet/chronic-categories`;

export const LOINC = 'http://loinc.org';

/** The care-management programs a CarePlan or Consent names in its category. */
export const PROGRAMS = ['ccm', 'complex-ccm', 'pcm'] as const;
export type Program = (typeof PROGRAMS)[number];

export interface Coding {
  system?: string;
  code?: string;
}

/** The CCM program a category list names (the first one), if any. */
export function programOf(category: { coding?: Coding[] }[] | undefined): Program | undefined {
  for (const c of category ?? []) {
    for (const coding of c.coding ?? []) {
      if (coding.system === CCM_SYSTEM && (PROGRAMS as readonly string[]).includes(coding.code ?? '')) {
        return coding.code as Program;
      }
    }
  }
  return undefined;
}

/** The search value of the program codes, for `category=` criteria. */
export const PROGRAM_TOKENS = PROGRAMS.map((p) => `${CCM_SYSTEM}|${p}`).join(',');
