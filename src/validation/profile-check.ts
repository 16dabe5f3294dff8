/**
 * Validates one resource against one prepared profile:
 *
 * - @medplum/core's validateResource with the profile: cardinality, fixed[x]/pattern[x], slicing
 *   (discriminators value, pattern and type) and error-severity invariants;
 * - our own required-binding check against the ValueSets the server has;
 * - our own check of the profile's warning-severity invariants (Medplum only evaluates errors).
 *
 * Issues name the element by FHIRPath (`Patient.name[0].family`) and the profile by URL.
 */
import {
  OperationOutcomeError,
  evalFhirPathTyped,
  getTypedPropertyValueWithPath,
  toTypedValue,
  validateResource,
  type TypedValue,
  type TypedValueWithPath,
} from '@medplum/core';
import type { OperationOutcomeIssue, Resource } from '@medplum/fhirtypes';
import type { BaseDefinitions } from './base-definitions';
import type { BindingRule, InvariantRule, PreparedProfile } from './profile-prepare';
import { membership, type Expansion, type Terminology } from './terminology';

export async function checkProfile(
  resource: Resource,
  profile: PreparedProfile,
  terminology: Terminology,
  base: BaseDefinitions,
  location: string = resource.resourceType,
): Promise<OperationOutcomeIssue[]> {
  if (profile.type !== resource.resourceType) {
    return [
      issue('error', 'invalid', location, `This ${resource.resourceType} claims profile ${profile.url}, which is a profile on ${profile.type}`),
    ];
  }
  const issues = structural(resource, profile, location);
  const root: TypedValueWithPath = { ...toTypedValue(resource), path: location };
  for (const rule of profile.bindings) {
    issues.push(...(await checkBinding(root, rule, profile, terminology)));
  }
  for (const rule of profile.warnings) {
    if (!base.constraintKeys.has(rule.key)) {
      issues.push(...checkWarningInvariant(root, rule, profile));
    }
  }
  for (const note of profile.notes) {
    issues.push(issue('information', 'informational', location, `Profile ${profile.url}: ${note}`));
  }
  return issues;
}

/** Medplum's validator, its issues reworded. */
function structural(resource: Resource, profile: PreparedProfile, location: string): OperationOutcomeIssue[] {
  let raw: OperationOutcomeIssue[];
  try {
    raw = validateResource(resource, { profile: profile.medplum });
  } catch (err) {
    if (err instanceof OperationOutcomeError) {
      raw = err.outcome.issue ?? [];
    } else {
      return [
        issue(
          'warning',
          'exception',
          location,
          `Profile ${profile.url} could not be fully checked: ${(err as Error).message ?? String(err)}`,
        ),
      ];
    }
  }
  return raw.map((i) => reword(i, profile, resource.resourceType, location));
}

function reword(raw: OperationOutcomeIssue, profile: PreparedProfile, resourceType: string, location: string): OperationOutcomeIssue {
  // Medplum paths start with the resource type; a contained resource is somewhere else.
  const path = fhirPath(raw.expression?.[0] ?? resourceType);
  const where = path === resourceType || path.startsWith(`${resourceType}.`) ? location + path.slice(resourceType.length) : path;
  const text = raw.details?.text ?? raw.diagnostics ?? 'Invalid';
  const url = profile.url;
  const severity = raw.severity;
  let m: RegExpExecArray | null;
  if (text === 'Missing required property') {
    return issue(severity, 'required', where, `${where} is required by profile ${url} but is missing`);
  }
  if ((m = /^Invalid number of values: expected (\S+), but found (\d+)$/.exec(text))) {
    return issue(severity, 'structure', where, `${where} must have ${m[1]} value(s) under profile ${url}, but has ${m[2]}`);
  }
  if (text === 'Value did not match expected pattern') {
    const el = profile.elements.get(path.replace(/\[\d+\]/g, ''));
    const fixed = el && specified(el as unknown as Record<string, unknown>, 'fixed');
    const pattern = el && specified(el as unknown as Record<string, unknown>, 'pattern');
    const expected =
      fixed !== undefined ? `: it must be exactly ${JSON.stringify(fixed)}` : pattern !== undefined ? `: it must contain ${JSON.stringify(pattern)}` : '';
    return issue(severity, 'value', where, `${where} does not match the value required by profile ${url}${expected}`);
  }
  if ((m = /^Constraint (\S+) not met: ([\s\S]*)$/.exec(text))) {
    const fhirpath = diagnosticsField(raw.diagnostics, 'fhirpath');
    return issue(
      severity,
      'invariant',
      where,
      `${where} does not meet invariant ${m[1]} of profile ${url}: ${m[2]}`,
      fhirpath ? `expression: ${fhirpath}` : undefined,
    );
  }
  if ((m = /^Incorrect number of values provided for slice '(.*)': expected (\S+), but found (\d+)$/.exec(text))) {
    return issue(severity, 'structure', where, `${where} must have ${m[2]} value(s) in slice '${m[1]}' of profile ${url}, but has ${m[3]}`);
  }
  return issue(severity, raw.code, where, `${text} at ${where} (profile ${url})`);
}

async function checkBinding(
  root: TypedValueWithPath,
  rule: BindingRule,
  profile: PreparedProfile,
  terminology: Terminology,
): Promise<OperationOutcomeIssue[]> {
  const values = valuesAt(root, rule.segments);
  if (values.length === 0) {
    return [];
  }
  const expansion = await terminology.expand(rule.valueSet);
  if (!expansion) {
    return []; // a ValueSet the server does not have: not checked
  }
  const issues: OperationOutcomeIssue[] = [];
  for (const v of values) {
    const problem = bindingProblem(v, expansion);
    if (problem) {
      const where = fhirPath(v.path);
      issues.push(
        issue('error', 'code-invalid', where, `${where} ${problem}, which profile ${profile.url} requires (binding strength required)`),
      );
    }
  }
  return issues;
}

/** Why the value is not from the ValueSet, or undefined when it is (or when that cannot be told). */
function bindingProblem(v: TypedValue, expansion: Expansion): string | undefined {
  const vs = `ValueSet ${expansion.url}`;
  const value = unbox(v.value);
  switch (v.type) {
    case 'code':
    case 'string':
    case 'uri':
      if (typeof value !== 'string') {
        return undefined;
      }
      return membership(expansion, undefined, value) === 'not-member' ? `has code '${value}', which is not in ${vs}` : undefined;
    case 'Coding':
    case 'Quantity': {
      const c = value as { system?: string; code?: string };
      if (c.code === undefined) {
        return v.type === 'Coding' ? `has no code from ${vs}` : undefined;
      }
      return membership(expansion, c.system, c.code) === 'not-member' ? `has ${describe(c)}, which is not in ${vs}` : undefined;
    }
    case 'CodeableConcept': {
      const codings = ((value as { coding?: { system?: string; code?: string }[] }).coding ?? []).filter((c) => c.code !== undefined);
      if (codings.length === 0) {
        return `has no coding from ${vs}`;
      }
      const results = codings.map((c) => membership(expansion, c.system, c.code as string));
      if (results.every((r) => r === 'not-member')) {
        return codings.length === 1
          ? `has ${describe(codings[0])}, which is not in ${vs}`
          : `has ${codings.map(describe).join(', ')}, none of which is in ${vs}`;
      }
      return undefined;
    }
    default:
      return undefined; // a type bindings do not apply to in a way we check
  }
}

function checkWarningInvariant(root: TypedValueWithPath, rule: InvariantRule, profile: PreparedProfile): OperationOutcomeIssue[] {
  const issues: OperationOutcomeIssue[] = [];
  for (const v of valuesAt(root, rule.segments)) {
    const where = fhirPath(v.path);
    const variables: Record<string, TypedValue> = { '%context': v, '%resource': root, '%rootResource': root, '%ucum': toTypedValue('http://unitsofmeasure.org') };
    let ok: boolean;
    try {
      const result = evalFhirPathTyped(rule.expression, [v], variables);
      ok = result.length === 1 && result[0].value === true;
    } catch (err) {
      issues.push(
        issue('warning', 'processing', where, `Invariant ${rule.key} of profile ${profile.url} could not be evaluated at ${where}: ${(err as Error).message}`),
      );
      continue;
    }
    if (!ok) {
      issues.push(
        issue('warning', 'invariant', where, `${where} does not meet invariant ${rule.key} of profile ${profile.url}: ${rule.human}`, `expression: ${rule.expression}`),
      );
    }
  }
  return issues;
}

/** The values at a path below the root, each with its FHIRPath location. */
function valuesAt(root: TypedValueWithPath, segments: string[]): TypedValueWithPath[] {
  let current = [root];
  for (const segment of segments) {
    const next: TypedValueWithPath[] = [];
    for (const v of current) {
      if (v.value === undefined || v.value === null || typeof v.value !== 'object') {
        continue;
      }
      const found = getTypedPropertyValueWithPath(v, segment);
      for (const f of Array.isArray(found) ? found : [found]) {
        if (f && f.value !== undefined && f.value !== null && f.type !== 'undefined') {
          next.push(f);
        }
      }
    }
    current = next;
  }
  return current;
}

function unbox(value: unknown): unknown {
  return value instanceof String ? value.valueOf() : value;
}

function describe(c: { system?: string; code?: string }): string {
  return c.system ? `code '${c.code}' (system ${c.system})` : `code '${c.code}'`;
}

function specified(el: Record<string, unknown>, prefix: 'fixed' | 'pattern'): unknown {
  for (const [k, v] of Object.entries(el)) {
    if (k.startsWith(prefix) && k.length > prefix.length && /[A-Z]/.test(k[prefix.length])) {
      return v;
    }
  }
  return undefined;
}

function diagnosticsField(diagnostics: string | undefined, field: string): string | undefined {
  if (!diagnostics) {
    return undefined;
  }
  try {
    const parsed = JSON.parse(diagnostics) as Record<string, unknown>;
    return typeof parsed[field] === 'string' ? parsed[field] : undefined;
  } catch {
    return undefined;
  }
}

/** Medplum paths use the element name for choice types (`value[x]`); FHIRPath uses `value`. */
function fhirPath(path: string): string {
  return path.replace(/\[x\]/g, '');
}

function issue(
  severity: OperationOutcomeIssue['severity'],
  code: OperationOutcomeIssue['code'],
  expression: string,
  text: string,
  extra?: string,
): OperationOutcomeIssue {
  return {
    severity,
    code,
    details: { text },
    diagnostics: extra ? `${text} (${extra})` : text,
    expression: [expression],
  };
}
