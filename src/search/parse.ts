/**
 * Query parameters -> a search the store can run (filters, sort, paging, includes), from the
 * SearchParameter definitions in the registry (FHIR R4 search.html). Every problem is a 400 that
 * names the parameter, unless the client asked for lenient handling, in which case unknown
 * parameters are dropped (and left out of the self link).
 */
import { badRequest } from '../errors';
import type {
  CompositeComponentMatch,
  DateMatch,
  IndexTable,
  NumberMatch,
  Prefix,
  ReferenceMatch,
  SearchFilter,
  SortKey,
  TokenMatch,
} from '../store/api';
import type { SearchParamDef, SearchParamRegistry, SearchParamType } from './definitions';
import { componentTypes, dateRange, formatInstant, normalizeString } from './extract';
import { unionSources } from './unions';

export interface IncludeSpec {
  sourceType: string;
  /** undefined for `*`. */
  code?: string;
  targetType?: string;
  iterate: boolean;
}

export interface ParsedSearch {
  filters: SearchFilter[];
  sort?: SortKey[];
  count: number;
  total?: 'none' | 'estimate' | 'accurate';
  summary?: 'true' | 'text' | 'data' | 'count' | 'false';
  elements?: string[];
  include: IncludeSpec[];
  revinclude: IncludeSpec[];
  /** For a system search: the `_type` list (empty = every type). */
  types: string[];
  /** Continue from this opaque cursor. */
  cursor?: string;
  /** The parameters as applied, in order, for the self link. */
  applied: [string, string][];
}

export interface ParseOptions {
  lenient: boolean;
  baseUrl: string;
  defaultCount: number;
  maxCount: number;
  /** Types that exist (resource type names), for `_type`, chains and `:Type`. */
  isResourceType: (t: string) => boolean;
}

const PREFIXES: Prefix[] = ['eq', 'ne', 'gt', 'lt', 'ge', 'le', 'sa', 'eb', 'ap'];
const RESULT_PARAMS = new Set([
  '_count',
  '_sort',
  '_total',
  '_summary',
  '_elements',
  '_include',
  '_revinclude',
  '_include:iterate',
  '_revinclude:iterate',
  '_type',
  '_cursor',
]);
const TABLE_OF: Partial<Record<SearchParamType, IndexTable>> = {
  string: 'string',
  token: 'token',
  reference: 'reference',
  date: 'date',
  number: 'number',
  quantity: 'quantity',
  uri: 'uri',
  composite: 'composite',
};

class Unknown extends Error {}

/** Splits on commas not escaped with a backslash (search.html#escaping). */
export function splitValues(raw: string): string[] {
  return raw.split(/(?<!\\),/).map((v) => v.replace(/\\([,$|\\])/g, '$1'));
}

/** Splits on an unescaped separator (`|` or `$`), keeping escapes for the parts' own parsing. */
function splitOn(raw: string, sep: '|' | '$'): string[] {
  const re = sep === '|' ? /(?<!\\)\|/ : /(?<!\\)\$/;
  return raw.split(re);
}

const unescape = (s: string): string => s.replace(/\\([,$|\\])/g, '$1');

function prefixed(raw: string): { prefix: Prefix; rest: string } {
  const p = raw.slice(0, 2) as Prefix;
  if (PREFIXES.includes(p) && raw.length > 2 && !/^[a-z]/.test(raw.slice(2))) {
    return { prefix: p, rest: raw.slice(2) };
  }
  return { prefix: 'eq', rest: raw };
}

export function parseDate(name: string, raw: string): DateMatch {
  const { prefix, rest } = prefixed(raw);
  const range = dateRange(rest);
  if (!range) {
    throw badRequest(`Search parameter '${name}': '${raw}' is not a date (expected e.g. 2026-01-31, ge2026-01, lt2026-01-31T09:00:00Z)`);
  }
  return { prefix, start: formatInstant(range.start), end: formatInstant(range.end) };
}

/** A number with the range its written precision implies (search.html#number: 100 is [99.5, 100.5)). */
export function parseNumber(name: string, raw: string): NumberMatch {
  const { prefix, rest } = prefixed(raw);
  if (!/^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/.test(rest)) {
    throw badRequest(`Search parameter '${name}': '${raw}' is not a number`);
  }
  const value = Number(rest);
  const [mantissa, exp = '0'] = rest.toLowerCase().split('e');
  const decimals = mantissa.includes('.') ? mantissa.split('.')[1].length : 0;
  const half = 0.5 * Math.pow(10, -decimals + Number(exp));
  return { prefix, value, low: value - half, high: value + half };
}

function parseQuantity(name: string, raw: string): NumberMatch {
  const [num, system, code] = splitOn(raw, '|');
  const m = parseNumber(name, num);
  if (system !== undefined && unescape(system) !== '') {
    m.system = unescape(system);
  }
  if (code !== undefined && unescape(code) !== '') {
    m.unitCode = unescape(code);
  }
  return m;
}

function parseToken(raw: string): TokenMatch {
  const parts = splitOn(raw, '|');
  if (parts.length === 1) {
    return { value: unescape(parts[0]) };
  }
  const system = unescape(parts[0]);
  const value = unescape(parts.slice(1).join('|'));
  const m: TokenMatch = { system: system === '' ? null : system };
  if (value !== '') {
    m.value = value;
  }
  return m;
}

function parseReference(def: SearchParamDef, raw: string, modifier: string | undefined, baseUrl: string): ReferenceMatch {
  let v = raw;
  if (v.startsWith(baseUrl + '/')) {
    v = v.slice(baseUrl.length + 1);
  }
  if (modifier && modifier !== 'identifier') {
    return { targetType: modifier, targetId: v };
  }
  if (/^[a-z][a-z0-9+.-]*:/i.test(v)) {
    // An absolute URL elsewhere, a urn, or a canonical with |version.
    return { url: v.split('|')[0] };
  }
  const m = /^([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(\/_history\/.*)?$/.exec(v);
  if (m) {
    return { targetType: m[1], targetId: m[2] };
  }
  if (!/^[A-Za-z0-9\-.]{1,64}$/.test(v)) {
    throw badRequest(`Search parameter '${def.code}': '${raw}' is not a reference (Type/id, id or an absolute URL)`);
  }
  return { targetId: v };
}

export class SearchParser {
  constructor(
    private readonly registry: SearchParamRegistry,
    private readonly options: ParseOptions,
  ) {}

  /** The searchable parameters of a type, for the CapabilityStatement. */
  describe(resourceType: string): { name: string; type: SearchParamType; definition: string }[] {
    return this.registry
      .forType(resourceType)
      .filter((d) => d.indexed)
      .map((d) => ({ name: d.code, type: d.type, definition: d.url }));
  }

  /** Parses a type-level (or, with `resourceType` undefined, system-level) search. */
  parse(resourceType: string | undefined, query: Record<string, string[]>): ParsedSearch {
    const out: ParsedSearch = { filters: [], count: this.options.defaultCount, include: [], revinclude: [], types: [], applied: [] };
    // _type first: it decides which parameters exist in a system search.
    if (query._type) {
      for (const t of query._type.flatMap(splitValues)) {
        if (!this.options.isResourceType(t)) {
          throw badRequest(`_type: unknown resource type '${t}'`);
        }
        out.types.push(t);
      }
      out.applied.push(['_type', out.types.join(',')]);
    }
    for (const [name, values] of Object.entries(query)) {
      for (const value of values) {
        if (value === '' && name !== '_cursor') {
          continue; // search.html: empty parameters are ignored
        }
        if (value.includes('\u0000') || name.includes('\u0000')) {
          throw badRequest(`Search parameter '${name.replace(/\u0000/g, '\\0')}' contains the NUL character, which no value can hold`);
        }
        try {
          if (RESULT_PARAMS.has(name)) {
            this.resultParam(resourceType, name, value, out);
          } else {
            const types = resourceType ? [resourceType] : out.types;
            out.filters.push(this.filterFor(types, name, value));
            out.applied.push([name, value]);
          }
        } catch (err) {
          if (err instanceof Unknown) {
            if (!this.options.lenient) {
              throw badRequest(`${err.message} (send Prefer: handling=lenient to ignore unknown parameters)`);
            }
          } else {
            throw err;
          }
        }
      }
    }
    return out;
  }

  private resultParam(resourceType: string | undefined, name: string, value: string, out: ParsedSearch): void {
    switch (name) {
      case '_count': {
        if (!/^\d{1,9}$/.test(value)) {
          throw badRequest(`_count must be a non-negative integer, got '${value}'`);
        }
        out.count = Math.min(Number(value), this.options.maxCount);
        out.applied.push(['_count', String(out.count)]);
        return;
      }
      case '_total':
        if (value !== 'none' && value !== 'estimate' && value !== 'accurate') {
          throw badRequest(`_total must be none, estimate or accurate, got '${value}'`);
        }
        out.total = value;
        break;
      case '_summary':
        if (!['true', 'text', 'data', 'count', 'false'].includes(value)) {
          throw badRequest(`_summary must be one of true, text, data, count, false; got '${value}'`);
        }
        out.summary = value as ParsedSearch['summary'];
        break;
      case '_elements':
        out.elements = [...(out.elements ?? []), ...value.split(',').map((s) => s.trim()).filter(Boolean)];
        break;
      case '_sort':
        out.sort = value.split(',').map((k) => this.sortKey(resourceType ?? out.types[0], k.trim()));
        break;
      case '_include':
      case '_revinclude':
      case '_include:iterate':
      case '_revinclude:iterate': {
        const iterate = name.endsWith(':iterate');
        const specs = this.includeSpecs(name, iterate ? value + ':iterate' : value, resourceType);
        (name.startsWith('_include') ? out.include : out.revinclude).push(...specs);
        break;
      }
      case '_cursor':
        out.cursor = value;
        return; // not part of the self link's criteria
      case '_type':
        return; // handled first
    }
    out.applied.push([name, value]);
  }

  private sortKey(resourceType: string | undefined, raw: string): SortKey {
    const descending = raw.startsWith('-');
    const code = descending ? raw.slice(1) : raw;
    if (code === '_id') {
      return { kind: 'id', descending };
    }
    if (code === '_lastUpdated') {
      return { kind: 'lastUpdated', descending };
    }
    const def = resourceType ? this.registry.get(resourceType, code) : undefined;
    if (!def) {
      throw badRequest(`_sort: unknown search parameter '${code}'${resourceType ? ` for ${resourceType}` : ''}`);
    }
    const table = TABLE_OF[def.type];
    if (!table || table === 'reference' || table === 'composite') {
      throw badRequest(`_sort: cannot sort by '${code}' (a ${def.type} parameter)`);
    }
    const codes = resourceType ? this.unionCodes(resourceType, def) : undefined;
    return codes ? { kind: 'param', table, code, codes, descending } : { kind: 'param', table, code, descending };
  }

  /** One include; a union parameter's (unions.ts) is one per source, whose rows hold its references. */
  private includeSpecs(name: string, value: string, resourceType: string | undefined): IncludeSpec[] {
    const spec = this.includeSpec(name, value, resourceType);
    const def = spec.code === undefined ? undefined : this.registry.get(spec.sourceType, spec.code);
    const codes = def ? this.unionCodes(spec.sourceType, def) : undefined;
    return codes ? codes.map((code) => ({ ...spec, code })) : [spec];
  }

  private includeSpec(name: string, value: string, resourceType: string | undefined): IncludeSpec {
    const [head, iterate] = value.endsWith(':iterate') ? [value.slice(0, -8), true] : [value, false];
    if (head === '*') {
      return { sourceType: resourceType ?? '*', iterate };
    }
    const [sourceType, code, targetType] = head.split(':');
    if (!sourceType || !this.options.isResourceType(sourceType) || !code) {
      throw badRequest(`${name} must be Type:parameter[:TargetType] or *, got '${value}'`);
    }
    if (code !== '*') {
      const def = this.registry.get(sourceType, code);
      if (!def || def.type !== 'reference') {
        throw badRequest(`${name}: '${code}' is not a reference search parameter of ${sourceType}`);
      }
    }
    if (targetType !== undefined && !this.options.isResourceType(targetType)) {
      throw badRequest(`${name}: unknown target type '${targetType}'`);
    }
    return { sourceType, code: code === '*' ? undefined : code, targetType, iterate };
  }

  /** One `name=value` as a filter over `types` (one for type searches; any number for system searches). */
  filterFor(types: string[], name: string, value: string): SearchFilter {
    if (name.startsWith('_has:')) {
      return this.hasFilter(types, name, value);
    }
    const dot = name.indexOf('.');
    const [codePart, modifier] = (dot >= 0 ? name.slice(0, dot) : name).split(':', 2);
    if (codePart === '_id') {
      if (modifier) {
        throw badRequest(`_id does not take the modifier ':${modifier}'`);
      }
      return { kind: 'id', ids: splitValues(value) };
    }
    if (types.length !== 1) {
      // System search over several types: the parameter must mean the same thing for each.
      const filters = (types.length ? types : []).map((t) => this.filterFor([t], name, value));
      if (types.length === 0) {
        const common = this.registry.get('Resource', codePart) ?? this.registry.get('DomainResource', codePart);
        if (!common) {
          throw new Unknown(`Unknown search parameter '${codePart}' for a search across all types (use _type)`);
        }
        return this.paramFilter(common, '', modifier, value, dot >= 0 ? name.slice(dot + 1) : undefined);
      }
      return filters.length === 1 ? filters[0] : { kind: 'or', filters };
    }
    const type = types[0];
    const def = this.registry.get(type, codePart);
    if (!def) {
      throw new Unknown(`Unknown search parameter '${codePart}' for ${type}`);
    }
    return this.paramFilter(def, type, modifier, value, dot >= 0 ? name.slice(dot + 1) : undefined);
  }

  private paramFilter(def: SearchParamDef, type: string, modifier: string | undefined, value: string, chain: string | undefined): SearchFilter {
    const code = def.code;
    if (chain !== undefined) {
      if (def.type !== 'reference') {
        throw badRequest(`Search parameter '${code}' is not a reference, so it cannot be chained ('${code}.${chain}')`);
      }
      const targets = modifier ? [modifier] : [...(def.target ?? [])];
      if (modifier && !this.options.isResourceType(modifier)) {
        throw badRequest(`Search parameter '${code}': unknown type '${modifier}'`);
      }
      const nextCode = chain.split(/[.:]/)[0];
      const usable = targets.filter((t) => this.registry.get(t, nextCode) || nextCode === '_id');
      if (usable.length === 0) {
        throw badRequest(`Chained parameter '${code}.${chain}': none of ${targets.join(', ') || 'the targets'} has a search parameter '${nextCode}'`);
      }
      const codes = type ? this.rowCodes(type, def) : [code];
      const filters: SearchFilter[] = usable.flatMap((t) => {
        const inner = [this.filterFor([t], chain, value)];
        return codes.map((c): SearchFilter => ({ kind: 'chain', code: c, targetType: t, filters: inner }));
      });
      return filters.length === 1 ? filters[0] : { kind: 'or', filters };
    }
    const filter = this.valueFilter(def, type, modifier, value);
    const codes = this.unionCodes(type, def);
    return codes ? unionFilter(filter, codes) : filter;
  }

  /** The filter of one parameter (not chained) and its value, named by the parameter's own code. */
  private valueFilter(def: SearchParamDef, type: string, modifier: string | undefined, value: string): SearchFilter {
    const code = def.code;
    const table = TABLE_OF[def.type];
    if (!def.indexed || !table) {
      throw badRequest(`Search parameter '${code}' (${def.type}) is not supported by this server`);
    }
    if (modifier === 'missing') {
      if (value !== 'true' && value !== 'false') {
        throw badRequest(`Search parameter '${code}:missing' takes true or false, got '${value}'`);
      }
      return { kind: 'missing', table, code, missing: value === 'true' };
    }
    if (value === '') {
      throw badRequest(`Search parameter '${code}' has an empty value`);
    }
    // Commas separate alternatives; escapes stay for the per-type parsers (search.html#escaping).
    const values = value.split(/(?<!\\),/);
    const bad = (): never => {
      throw badRequest(`Search parameter '${code}' (${def.type}) does not support the modifier ':${modifier}'`);
    };
    switch (def.type) {
      case 'string': {
        if (modifier && modifier !== 'exact' && modifier !== 'contains') {
          return bad();
        }
        const mode = modifier === 'exact' ? 'exact' : modifier === 'contains' ? 'contains' : 'starts';
        return { kind: 'string', code, mode, values: values.map((v) => (mode === 'exact' ? unescape(v) : normalizeString(unescape(v)))) };
      }
      case 'token': {
        if (modifier === 'text') {
          return { kind: 'token', code, values: values.map((v) => ({ text: normalizeString(unescape(v)) })) };
        }
        if (modifier === 'of-type') {
          return {
            kind: 'token',
            code,
            values: values.map((v) => {
              const [ts, tc, val] = splitOn(v, '|').map(unescape);
              if (!ts || !tc || val === undefined || val === '') {
                throw badRequest(`Search parameter '${code}:of-type' needs type-system|type-code|value, got '${v}'`);
              }
              return { typeSystem: ts, typeCode: tc, value: val };
            }),
          };
        }
        const filter: SearchFilter = { kind: 'token', code, values: values.map(parseToken) };
        if (modifier === 'not') {
          return { kind: 'not', filter };
        }
        return modifier ? bad() : filter;
      }
      case 'reference': {
        if (modifier === 'identifier') {
          return {
            kind: 'reference',
            code,
            values: values.map((v) => {
              const t = parseToken(v);
              return { identifierSystem: t.system, identifierValue: t.value };
            }),
          };
        }
        if (modifier && !this.options.isResourceType(modifier)) {
          return bad();
        }
        return { kind: 'reference', code, values: values.map((v) => parseReference(def, unescape(v), modifier, this.options.baseUrl)) };
      }
      case 'date':
        return modifier ? bad() : { kind: 'date', code, values: values.map((v) => parseDate(code, v)) };
      case 'number':
        return modifier ? bad() : { kind: 'number', code, values: values.map((v) => parseNumber(code, v)) };
      case 'quantity':
        return modifier ? bad() : { kind: 'quantity', code, values: values.map((v) => parseQuantity(code, v)) };
      case 'uri':
        if (modifier && modifier !== 'below' && modifier !== 'above') {
          return bad();
        }
        return { kind: 'uri', code, mode: (modifier as 'below' | 'above' | undefined) ?? 'exact', values: values.map(unescape) };
      case 'composite':
        return modifier ? bad() : { kind: 'composite', code, values: values.map((v) => this.compositeValue(def, type, v)) };
      case 'special':
        return bad();
    }
  }

  private compositeValue(def: SearchParamDef, type: string, raw: string): CompositeComponentMatch[] {
    const types = componentTypes(def, this.registry);
    const parts = splitOn(raw, '$');
    if (!types || parts.length !== types.length) {
      throw badRequest(`Search parameter '${def.code}' takes ${types?.length ?? '?'} values joined by '$', got '${raw}'`);
    }
    return parts.map((part, i): CompositeComponentMatch => {
      const v = unescape(part);
      switch (types[i]) {
        case 'token':
          return { type: 'token', match: parseToken(part) };
        case 'string':
          return { type: 'string', value: normalizeString(v) };
        case 'reference':
          return { type: 'reference', match: parseReference(def, v, undefined, this.options.baseUrl) };
        case 'date':
          return { type: 'date', match: parseDate(def.code, v) };
        case 'number':
          return { type: 'number', match: parseNumber(def.code, v) };
        case 'quantity':
          return { type: 'quantity', match: parseQuantity(def.code, part) };
        case 'uri':
          return { type: 'uri', value: v };
        case 'composite':
        case 'special':
          throw badRequest(`Search parameter '${def.code}' has a component this server cannot search (${types[i]} in ${type})`);
      }
    });
  }

  private hasFilter(types: string[], name: string, value: string): SearchFilter {
    // _has:Observation:subject:code=x, possibly nested: _has:Observation:subject:_has:...
    const m = /^_has:([A-Za-z]+):([A-Za-z0-9\-_]+):(.+)$/.exec(name);
    if (!m || !this.options.isResourceType(m[1])) {
      throw badRequest(`'${name}' must be _has:Type:reference-parameter:parameter`);
    }
    const [, sourceType, code, rest] = m;
    const ref = this.registry.get(sourceType, code);
    if (!ref || ref.type !== 'reference') {
      throw badRequest(`'${name}': '${code}' is not a reference search parameter of ${sourceType}`);
    }
    if (types.length !== 1) {
      throw badRequest(`'${name}' needs a resource type to search`);
    }
    const inner = [this.filterFor([sourceType], rest, value)];
    const codes = this.rowCodes(sourceType, ref);
    const filters = codes.map((c): SearchFilter => ({ kind: 'has', sourceType, code: c, filters: inner }));
    return filters.length === 1 ? filters[0] : { kind: 'or', filters };
  }

  /** The codes whose index rows hold a parameter's values: its own, or those of a union's sources. */
  private rowCodes(resourceType: string, def: SearchParamDef): string[] {
    return this.unionCodes(resourceType, def) ?? [def.code];
  }

  /** For a parameter that is a union of others (unions.ts): their codes; otherwise undefined. */
  private unionCodes(resourceType: string, def: SearchParamDef): string[] | undefined {
    return unionSources(this.registry, resourceType, def)?.map((s) => s.code);
  }
}

/**
 * The filter of a parameter that is the union of others (unions.ts), which has no index rows of
 * its own: the same filter on each source, any of them matching (`:missing=true`: none having a
 * value; `:not`: none matching).
 */
function unionFilter(filter: SearchFilter, codes: string[]): SearchFilter {
  if (filter.kind === 'not') {
    return { kind: 'not', filter: unionFilter(filter.filter, codes) };
  }
  if (!('code' in filter)) {
    return filter;
  }
  const each = codes.map((code) => ({ ...filter, code }) as SearchFilter);
  return filter.kind === 'missing' && filter.missing ? { kind: 'and', filters: each } : { kind: 'or', filters: each };
}
