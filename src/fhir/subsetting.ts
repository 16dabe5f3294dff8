/**
 * `_summary` and `_elements` on read, vread and search results (FHIR R4 search.html#summary and
 * #elements). Summary flags come from the base StructureDefinitions (isSummary), through
 * src/validation/element-flags.json.
 */
import type { Resource } from '@medplum/fhirtypes';
import { badRequest } from '../errors';
import flagsData from '../validation/element-flags.json';
import type { FhirRequest, FhirResponse } from './types';

interface ElementFlags {
  summary: Set<string>;
  mandatory: Set<string>;
}

const cache = new Map<string, ElementFlags>();

/** Top-level summary and mandatory elements of a resource type (from the base StructureDefinitions). */
function elementFlags(resourceType: string): ElementFlags {
  let f = cache.get(resourceType);
  if (!f) {
    const all = flagsData as { summary: Record<string, string[]>; mandatory: Record<string, string[]> };
    f = { summary: new Set(all.summary[resourceType] ?? []), mandatory: new Set(all.mandatory[resourceType] ?? []) };
    cache.set(resourceType, f);
  }
  return f;
}

/** The top-level element name of a JSON key: `valueQuantity` matches `value`, `_status` matches `status`. */
function matches(names: Set<string>, key: string): boolean {
  const k = key.startsWith('_') ? key.slice(1) : key;
  if (names.has(k)) {
    return true;
  }
  for (const n of names) {
    // choice types: value[x] -> valueQuantity, valueString ...
    if (k.startsWith(n) && k.length > n.length && /[A-Z]/.test(k[n.length])) {
      return true;
    }
  }
  return false;
}

const SUBSETTED = { system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue', code: 'SUBSETTED' };
const ALWAYS = new Set(['resourceType', 'id', 'meta']);

export type SummaryMode = 'true' | 'text' | 'data' | 'count' | 'false';

export function parseSummary(req: FhirRequest): SummaryMode | undefined {
  const raw = req.query._summary?.[0];
  if (raw === undefined) {
    return undefined;
  }
  if (!['true', 'text', 'data', 'count', 'false'].includes(raw)) {
    throw badRequest(`_summary must be one of true, text, data, count, false; got '${raw}'`);
  }
  return raw as SummaryMode;
}

export function parseElements(req: FhirRequest): string[] | undefined {
  const raw = req.query._elements;
  if (!raw) {
    return undefined;
  }
  const names = raw.flatMap((v) => v.split(',')).map((s) => s.trim()).filter(Boolean);
  for (const n of names) {
    if (!/^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z][A-Za-z0-9]*)?$/.test(n)) {
      throw badRequest(`_elements: '${n}' is not an element name`);
    }
  }
  // Type-qualified names (Patient.name) keep the element part.
  return names.map((n) => (n.includes('.') ? n.split('.')[1] : n));
}

/** Reduces one resource as `_summary` / `_elements` ask. Returns the same object when nothing applies. */
export function subset(resource: Resource, summary: SummaryMode | undefined, elements: string[] | undefined): Resource {
  if ((summary === undefined || summary === 'false') && !elements) {
    return resource;
  }
  const f = elementFlags(resource.resourceType);
  const source = resource as unknown as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(source)) {
    let keep: boolean;
    if (ALWAYS.has(key)) {
      keep = true;
    } else if (elements) {
      keep = matches(new Set(elements), key) || matches(f.mandatory, key);
    } else if (summary === 'true') {
      keep = matches(f.summary, key);
    } else if (summary === 'text') {
      keep = key === 'text' || matches(f.mandatory, key);
    } else if (summary === 'data') {
      keep = key !== 'text';
    } else {
      keep = true;
    }
    if (keep) {
      out[key] = value;
    }
  }
  const meta = { ...((out.meta as Record<string, unknown>) ?? {}) };
  const tags = Array.isArray(meta.tag) ? [...(meta.tag as unknown[])] : [];
  tags.push(SUBSETTED);
  meta.tag = tags;
  out.meta = meta;
  return out as unknown as Resource;
}

/** Applies `_summary` / `_elements` to a single-resource response. */
export function applySubsetting(req: FhirRequest, res: FhirResponse): FhirResponse {
  const summary = parseSummary(req);
  const elements = parseElements(req);
  if ((summary === undefined || summary === 'false') && !elements) {
    return res;
  }
  if (summary === 'count') {
    throw badRequest('_summary=count applies to searches, not to reading one resource');
  }
  const resource = res.resource ?? (JSON.parse(res.json as string) as Resource);
  return { ...res, json: undefined, resource: subset(resource, summary, elements) };
}
