/**
 * Bulk Data Access 2.0 kick-off parameters: `_type`, `_since`, `_typeFilter`, `_outputFormat`, and
 * the filters each level implies (system: everything; Patient: every patient's compartment; Group:
 * the compartments of the group's member patients).
 */
import { badRequest } from '../errors';
import { patientCompartmentParams } from '../fhir/compartment';
import type { SearchParser } from '../search/parse';
import type { ExportJob, ReferenceMatch, SearchFilter } from '../store/api';
import { RESOURCE_TYPES } from '../validation/schema';

export const NDJSON_FORMATS = new Set(['application/fhir+ndjson', 'application/ndjson', 'ndjson']);
const KNOWN = new Set(['_type', '_since', '_typeFilter', '_outputFormat']);
/** Search result parameters: meaningless inside a `_typeFilter`. */
const RESULT_PARAMS = new Set(['_count', '_sort', '_include', '_revinclude', '_total', '_summary', '_elements', '_contained', '_containedType', '_cursor', '_type']);

/** Types in the Patient compartment (and Patient itself), in name order. */
export function compartmentTypes(): string[] {
  return [...RESOURCE_TYPES].filter((t) => t === 'Patient' || patientCompartmentParams(t).length > 0).sort();
}

/** Reads and checks the kick-off query; throws 400 naming what is wrong. */
export function exportParams(
  query: Record<string, string[]>,
  level: ExportJob['params']['level'],
  parser: SearchParser,
  instant: (name: string, raw: string) => string,
): Omit<ExportJob['params'], 'groupId'> {
  for (const name of Object.keys(query)) {
    if (!KNOWN.has(name)) {
      throw badRequest(`$export does not support the parameter '${name}' (supported: ${[...KNOWN].join(', ')})`);
    }
  }
  for (const name of ['_outputFormat', '_since']) {
    if ((query[name]?.length ?? 0) > 1) {
      throw badRequest(`${name} may be given once`);
    }
  }
  const format = query._outputFormat?.[0];
  if (format !== undefined && !NDJSON_FORMATS.has(format)) {
    throw badRequest(`_outputFormat '${format}' is not supported; use application/fhir+ndjson`);
  }
  const allowed = level === 'system' ? [...RESOURCE_TYPES].sort() : compartmentTypes();
  let types = allowed;
  if (query._type) {
    types = [...new Set(query._type.flatMap((v) => v.split(',')).map((t) => t.trim()).filter(Boolean))];
    if (types.length === 0) {
      throw badRequest('_type is empty: name the resource types to export, or leave it out for all');
    }
    for (const t of types) {
      if (!RESOURCE_TYPES.has(t)) {
        throw badRequest(`_type: unknown resource type '${t}'`);
      }
      if (!allowed.includes(t)) {
        throw badRequest(`_type: ${t} is not in the Patient compartment, so a ${level}-level export has none`);
      }
    }
  }
  const since = query._since?.[0] === undefined ? undefined : instant('_since', query._since[0]);
  const typeFilters: Record<string, string[]> = {};
  for (const raw of (query._typeFilter ?? []).flatMap((v) => splitTypeFilters(v))) {
    const q = raw.indexOf('?');
    const type = q < 0 ? raw : raw.slice(0, q);
    if (!types.includes(type)) {
      throw badRequest(`_typeFilter '${raw}': ${type} is not one of the exported types`);
    }
    const search = q < 0 ? '' : raw.slice(q + 1);
    const resultParam = Object.keys(searchQuery(search)).find((k) => RESULT_PARAMS.has(k.split(':')[0]));
    if (resultParam) {
      throw badRequest(`_typeFilter '${raw}': ${resultParam} shapes results and is not a filter`);
    }
    // Checked now, so that a bad filter is a 400 at kick-off and not a failed job.
    parser.parse(type, searchQuery(search));
    (typeFilters[type] ??= []).push(search);
  }
  return { level, types, since, typeFilters };
}

/** `_typeFilter` values are comma-separated, but commas inside a query belong to the query. */
function splitTypeFilters(v: string): string[] {
  return v.split(/,(?=[A-Z][A-Za-z]+\?)/);
}

function searchQuery(search: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [k, v] of new URLSearchParams(search)) {
    (out[k] ??= []).push(v);
  }
  return out;
}

/** The store filters of one type of a job: its level's compartment rule and its type filters. */
export function typeFiltersOf(job: ExportJob, type: string, parser: SearchParser, patients: string[] | undefined): SearchFilter[] {
  const filters: SearchFilter[] = [];
  if (job.params.level !== 'system') {
    if (type === 'Patient') {
      if (patients) {
        filters.push({ kind: 'id', ids: patients });
      }
    } else {
      const match: ReferenceMatch[] = patients ? patients.map((id) => ({ targetType: 'Patient', targetId: id })) : [{ targetType: 'Patient' }];
      const parts: SearchFilter[] = patientCompartmentParams(type).map((code) => ({ kind: 'reference', code, values: match }));
      filters.push(parts.length === 1 ? parts[0] : { kind: 'or', filters: parts });
    }
  }
  const queries = job.params.typeFilters[type];
  if (queries && queries.length > 0) {
    const alternatives: SearchFilter[] = queries.map((q) => ({ kind: 'and', filters: parser.parse(type, searchQuery(q)).filters }));
    filters.push(alternatives.length === 1 ? alternatives[0] : { kind: 'or', filters: alternatives });
  }
  return filters;
}
