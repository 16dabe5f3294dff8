/**
 * Turns a StructureDefinition into what profile validation needs, once per profile:
 *
 * - a copy of the StructureDefinition adjusted for @medplum/core's validator (see `forMedplum`);
 * - the required bindings and the profile's own warning invariants, which that validator does not
 *   check (it checks no bindings and only error invariants);
 * - the snapshot elements by path, to explain fixed/pattern mismatches in plain words.
 *
 * A profile that cannot be used (no snapshot, a snapshot @medplum/core cannot parse) gives a problem
 * instead, in plain words.
 */
import { getElementDefinitionTypeName, parseStructureDefinition } from '@medplum/core';
import type { ElementDefinition, StructureDefinition } from '@medplum/fhirtypes';

export interface BindingRule {
  /** Element path in the snapshot, e.g. `Patient.contact.relationship`. */
  path: string;
  /** Property names from the root, choice suffix removed: `['contact', 'relationship']`. */
  segments: string[];
  valueSet: string;
}

export interface InvariantRule {
  path: string;
  segments: string[];
  key: string;
  human: string;
  expression: string;
}

export interface PreparedProfile {
  url: string;
  version?: string;
  /** The resource type the profile constrains. */
  type: string;
  /** The StructureDefinition as given to @medplum/core's validateResource. */
  medplum: StructureDefinition;
  bindings: BindingRule[];
  warnings: InvariantRule[];
  /** Snapshot elements outside slices, by path. */
  elements: Map<string, ElementDefinition>;
  /** Parts of the profile that are not checked, in plain words (e.g. an unsupported slicing). */
  notes: string[];
}

export type Prepared = { ok: true; profile: PreparedProfile } | { ok: false; problem: string };

const SUPPORTED_DISCRIMINATORS: ReadonlySet<string> = new Set(['value', 'pattern', 'type']);

export function prepareProfile(sd: StructureDefinition): Prepared {
  const name = sd.url ?? sd.id ?? sd.name ?? '(no url)';
  if (sd.resourceType !== 'StructureDefinition') {
    return { ok: false, problem: `${name} is not a StructureDefinition` };
  }
  if (!sd.url) {
    return { ok: false, problem: `StructureDefinition ${name} has no url` };
  }
  if (!sd.type) {
    return { ok: false, problem: `Profile ${sd.url} has no type` };
  }
  if (!sd.snapshot?.element?.length) {
    return {
      ok: false,
      problem:
        `Profile ${sd.url} has no snapshot${sd.differential?.element?.length ? ' (only a differential)' : ''}; ` +
        'this server cannot generate snapshots, so publish the profile with its snapshot (e.g. from the IG Publisher or SUSHI)',
    };
  }
  const notes: string[] = [];
  const medplum = forMedplum(sd, notes);
  try {
    parseStructureDefinition(medplum);
  } catch (err) {
    return { ok: false, problem: `Profile ${sd.url} cannot be used: ${(err as Error).message}` };
  }

  const root = sd.snapshot.element[0].path ?? sd.type;
  const bindings: BindingRule[] = [];
  const warnings: InvariantRule[] = [];
  const elements = new Map<string, ElementDefinition>();
  for (const el of sd.snapshot.element) {
    if (!el.path || isInSlice(el) || el.contentReference) {
      continue;
    }
    elements.set(el.path, el);
    const segments = el.path === root ? [] : relative(el.path, root);
    if (!segments) {
      continue;
    }
    if (el.binding?.strength === 'required' && el.binding.valueSet) {
      bindings.push({ path: el.path, segments, valueSet: el.binding.valueSet });
    }
    for (const c of el.constraint ?? []) {
      if (c.severity === 'warning' && c.key && c.expression) {
        warnings.push({ path: el.path, segments, key: c.key, human: c.human ?? c.key, expression: c.expression });
      }
    }
  }
  return {
    ok: true,
    profile: { url: sd.url, version: sd.version, type: sd.type, medplum, bindings, warnings, elements, notes },
  };
}

/**
 * A copy of the StructureDefinition that @medplum/core 4.5 validates fully:
 *
 * 1. Backbone elements lose their inner-type status. Medplum validates the children of a backbone
 *    element against the *base* definition of that inner type, so a profile's rules there (e.g.
 *    `Patient.contact.name` 1..1) would be ignored; as plain dotted paths on the root they are checked.
 * 2. Extension slices that only name their extension by `type.profile` get the `url` child with that
 *    fixed value, which Medplum's `value:url` discriminator needs to recognise them.
 * 3. Slicings whose discriminator Medplum does not support (`exists`, `profile`, paths with
 *    functions) are removed with their slices, and noted, instead of failing the whole profile.
 */
function forMedplum(sd: StructureDefinition, notes: string[]): StructureDefinition {
  let elements = (sd.snapshot?.element ?? []).map((e) => ({ ...e }));

  // 3. Unsupported slicings.
  const dropped: string[] = [];
  for (const el of elements) {
    const unsupported = el.slicing?.discriminator?.some(
      (d) => !SUPPORTED_DISCRIMINATORS.has(d.type) || !d.path || /[()]/.test(d.path),
    );
    if (unsupported && el.id) {
      const kinds = (el.slicing?.discriminator ?? []).map((d) => `${d.type}:${d.path}`).join(', ');
      notes.push(`slicing of ${el.id} (discriminator ${kinds}) is not checked`);
      delete el.slicing;
      dropped.push(el.id);
    }
  }
  if (dropped.length > 0) {
    elements = elements.filter((e) => !dropped.some((id) => e.id?.startsWith(`${id}:`)));
  }

  // 2. Extension slices without a `url` child.
  const out: ElementDefinition[] = [];
  const ids = new Set(elements.map((e) => e.id));
  for (const el of elements) {
    out.push(el);
    const profile = el.type?.find((t) => t.code === 'Extension')?.profile?.[0];
    if (el.sliceName && el.id && profile && /\.(modifierE|e)xtension$/.test(el.path ?? '') && !ids.has(`${el.id}.url`)) {
      out.push({
        id: `${el.id}.url`,
        path: `${el.path}.url`,
        min: 1,
        max: '1',
        base: { path: 'Extension.url', min: 1, max: '1' },
        type: [{ code: 'uri' }],
        fixedUri: profile.split('|')[0],
      });
    }
  }

  // 1. Backbone elements: give them their type name instead of BackboneElement/Element.
  for (let i = 0; i < out.length; i++) {
    const el = out[i];
    const next = out[i + 1];
    const isBackbone = el.type?.some((t) => t.code === 'BackboneElement' || t.code === 'Element');
    if (i > 0 && isBackbone && next?.path?.startsWith(`${el.path}.`)) {
      out[i] = { ...el, type: [{ code: getElementDefinitionTypeName(el) }] };
    }
  }

  return { ...sd, snapshot: { ...sd.snapshot, element: out } };
}

function isInSlice(el: ElementDefinition): boolean {
  return !!el.sliceName || !!el.id?.includes(':');
}

function relative(path: string, root: string): string[] | undefined {
  if (!path.startsWith(`${root}.`)) {
    return undefined;
  }
  return path
    .slice(root.length + 1)
    .split('.')
    .map((s) => s.replace('[x]', ''));
}
