/**
 * Extensions checked against their own definitions, wherever they appear in any resource (not only
 * in resources that claim a profile): for every simple extension the server has a
 * StructureDefinition of (from profiles/), the value must be one of the types its `value[x]` allows,
 * and a code, Coding or CodeableConcept value must come from the ValueSet of a required binding.
 * Extensions the server does not know are left alone, as FHIR allows.
 */
import type { CodeableConcept, Coding, OperationOutcomeIssue, StructureDefinition } from '@medplum/fhirtypes';
import { membership, type Terminology } from './terminology';

export interface ExtensionRule {
  url: string;
  /** Allowed value types as FHIR names them (`code`, `date`, `Coding`, ...); empty: no value allowed. */
  types: string[];
  /** The ValueSet of a required binding on the value. */
  valueSet?: string;
}

/** The rules of the simple extensions among `definitions`. */
export function extensionRules(definitions: readonly StructureDefinition[]): Map<string, ExtensionRule> {
  const rules = new Map<string, ExtensionRule>();
  for (const sd of definitions) {
    if (sd.type !== 'Extension' || sd.derivation !== 'constraint' || !sd.url) {
      continue;
    }
    const value = sd.snapshot?.element?.find((e) => e.path === 'Extension.value[x]' && !e.sliceName);
    if (!value) {
      continue;
    }
    const types = value.max === '0' ? [] : (value.type ?? []).map((t) => t.code ?? '').filter(Boolean);
    const valueSet = value.binding?.strength === 'required' ? value.binding.valueSet?.split('|')[0] : undefined;
    rules.set(sd.url, { url: sd.url, types, ...(valueSet ? { valueSet } : {}) });
  }
  return rules;
}

const typeOfKey = (key: string): string => {
  const t = key.slice('value'.length);
  // Primitive types are lower-case in FHIR (`code`, `dateTime`); complex types keep their case.
  return /^[A-Z][a-z]/.test(t) && t !== 'Coding' && !/^(CodeableConcept|Quantity|Period|Range|Ratio|Reference|Identifier|Attachment|HumanName|Address|ContactPoint|Timing|Signature|Annotation|Money|SampledData|Age|Count|Distance|Duration|Meta|Expression|ParameterDefinition|DataRequirement|RelatedArtifact|ContactDetail|Contributor|TriggerDefinition|UsageContext|Dosage)$/.test(t)
    ? t[0].toLowerCase() + t.slice(1)
    : t;
};

interface Found {
  path: string;
  ext: Record<string, unknown>;
  rule: ExtensionRule;
}

function collect(node: unknown, path: string, rules: Map<string, ExtensionRule>, out: Found[], depth = 0): void {
  if (depth > 64 || node === null || typeof node !== 'object') {
    return;
  }
  if (Array.isArray(node)) {
    node.forEach((item, i) => collect(item, `${path}[${i}]`, rules, out, depth + 1));
    return;
  }
  for (const [key, value] of Object.entries(node as Record<string, unknown>)) {
    if ((key === 'extension' || key === 'modifierExtension') && Array.isArray(value)) {
      value.forEach((ext, i) => {
        const url = (ext as { url?: unknown } | null)?.url;
        const rule = typeof url === 'string' ? rules.get(url) : undefined;
        if (rule) {
          out.push({ path: `${path}.${key}[${i}]`, ext: ext as Record<string, unknown>, rule });
        }
      });
    }
    if (key !== 'contained') {
      collect(value, `${path}.${key}`, rules, out, depth + 1);
    }
  }
}

function issue(where: string, text: string, code: OperationOutcomeIssue['code'] = 'invalid'): OperationOutcomeIssue {
  return { severity: 'error', code, details: { text }, diagnostics: text, expression: [where] };
}

/** Problems with the known extensions in `resource` (empty when there are none). */
export async function checkExtensions(resource: object, location: string, rules: Map<string, ExtensionRule>, terminology: Terminology): Promise<OperationOutcomeIssue[]> {
  if (rules.size === 0) {
    return [];
  }
  const found: Found[] = [];
  collect(resource, location, rules, found);
  const issues: OperationOutcomeIssue[] = [];
  for (const { path, ext, rule } of found) {
    const keys = Object.keys(ext).filter((k) => k.startsWith('value'));
    if (rule.types.length === 0) {
      if (keys.length > 0) {
        issues.push(issue(`${path}.${keys[0]}`, `Extension ${rule.url} takes no value (it is made of nested extensions)`));
      }
      continue;
    }
    if (keys.length !== 1) {
      issues.push(issue(path, `Extension ${rule.url} needs exactly one value (${rule.types.map((t) => `value${t[0].toUpperCase()}${t.slice(1)}`).join(' or ')})`, 'required'));
      continue;
    }
    const key = keys[0];
    const type = typeOfKey(key);
    if (!rule.types.includes(type)) {
      issues.push(issue(`${path}.${key}`, `Extension ${rule.url} takes ${rule.types.map((t) => `value${t[0].toUpperCase()}${t.slice(1)}`).join(' or ')}, not ${key}`));
      continue;
    }
    if (!rule.valueSet) {
      continue;
    }
    const expansion = await terminology.expand(rule.valueSet);
    if (!expansion) {
      continue;
    }
    const value = ext[key];
    const codings: { system?: string; code?: string }[] =
      type === 'code' ? [{ code: typeof value === 'string' ? value : undefined }] : type === 'Coding' ? [value as Coding] : type === 'CodeableConcept' ? ((value as CodeableConcept).coding ?? []) : [];
    if (codings.length === 0 || codings.every((c) => typeof c?.code !== 'string')) {
      continue;
    }
    const verdicts = codings.map((c) => (typeof c?.code === 'string' ? membership(expansion, c.system, c.code) : 'unknown'));
    if (!verdicts.includes('member') && verdicts.includes('not-member')) {
      const shown = codings.map((c) => (c.system ? `${c.system}|${c.code ?? ''}` : `'${c.code ?? ''}'`)).join(', ');
      issues.push(issue(`${path}.${key}`, `${shown} is not in ValueSet ${rule.valueSet}, which extension ${rule.url} requires (binding strength required)`, 'code-invalid'));
    }
  }
  return issues;
}
