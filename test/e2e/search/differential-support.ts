/**
 * The independent side of the differential search test (differential.test.ts): evaluates a
 * SearchParameter's FHIRPath with fhirpath.js directly (none of src/search is used) and applies the
 * R4 matching rules of search.html per parameter type, written from the specification:
 *
 * - token (#token): Coding.system|code, CodeableConcept.coding, Identifier.system|value,
 *   ContactPoint.value (no system), code/string/uri/id/boolean values as codes. `code` matches the
 *   code in any system, `system|code` both, `|code` a code without system, `system|` any code in it.
 * - string (#string): case- and accent-insensitive starts-with (whitespace runs count as one space,
 *   leading/trailing ignored) over plain strings and the parts of HumanName (family, given, prefix,
 *   suffix, text) and Address (line, city, district, state, postalCode, country, text).
 * - reference (#reference): `Type/id` matches a literal reference to that resource (relative,
 *   `/_history/n` allowed); an absolute URL matches a reference or canonical with that URL (a
 *   canonical's `|version` ignored).
 * - date (#date, #prefix): every value is the range of instants its precision implies (Period:
 *   start..end, open ends unbounded; Timing: outer limits of event and repeat.boundsPeriod); no zone
 *   is read as UTC. eq = search range contains the value's range; ge/le as in #prefix.
 * - uri (#uri): exact match (a canonical's `|version` split off).
 * - number (#number) and quantity (#quantity): eq = the range the written search value implies
 *   ([99.5, 100.5) for `100`) contains the value (a Range: the whole range); ge/le compare with the
 *   exact value. Quantity `v|system|code` also requires that system and code, `v||u` code or unit =
 *   u. A comparator (`<5`) opens the value's range on that side. Money is `v|urn:iso:std:iso:4217|CUR`.
 *   SampledData has no single value and is left out.
 *
 * R4 expressions use `as` on collections (`(Observation.component.value as Quantity)`), which
 * FHIRPath only defines for single items; they are read as `ofType` (the evident intent).
 * `where(resolve() is T)` is evaluated with a resolve() that knows only a reference's own type
 * (`Patient/1` is a Patient; `#x` the contained resource), since nothing can be fetched.
 */
import * as fhirpath from 'fhirpath';
import * as r4 from 'fhirpath/fhir-context/r4';

export type ParamKind = 'token' | 'string' | 'reference' | 'date' | 'uri' | 'number' | 'quantity';
export const PARAM_KINDS: readonly ParamKind[] = ['token', 'string', 'reference', 'date', 'uri', 'number', 'quantity'];

/** One value an expression yields: its FHIR type (when known) and JSON value. */
export interface Item {
  type: string | undefined;
  value: unknown;
}

// ---------------------------------------------------------------- deterministic randomness

/** mulberry32: a small seeded PRNG, so the sample is the same on every run. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Up to `n` items of `xs`, chosen with `rnd` (order kept stable for a given seed). */
export function pick<T>(xs: readonly T[], n: number, rnd: () => number): T[] {
  const copy = [...xs];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [copy[i], copy[j]] = [copy[j], copy[i]];
  }
  return copy.slice(0, n);
}

// ---------------------------------------------------------------- FHIRPath evaluation

interface Node {
  data: unknown;
  fhirNodeDataType: string | null;
  parentResNode: Node | null;
  constructor: { makeResNode?: (ctx: unknown, data: unknown, p: null, a: null, b: null, c: null) => unknown };
}

const isNode = (x: unknown): x is Node => typeof x === 'object' && x !== null && 'fhirNodeDataType' in x && 'parentResNode' in x;

const LITERAL_TYPE = /(?:^|\/)([A-Z][A-Za-z]+)\/[A-Za-z0-9\-.]{1,64}(?:\/_history\/[A-Za-z0-9\-.]{1,64})?$/;

/** resolve() without I/O: a stub of the type the reference names, or the contained resource. */
function resolveByType(this: unknown, coll: unknown[]): unknown[] {
  const out: unknown[] = [];
  for (const n of coll) {
    if (!isNode(n)) {
      continue;
    }
    const d = n.data as { reference?: string; type?: string } | string | undefined;
    const ref = typeof d === 'string' ? d : d?.reference;
    let target: unknown;
    if (ref?.startsWith('#')) {
      let root: Node = n;
      while (root.parentResNode) {
        root = root.parentResNode;
      }
      target = (root.data as { contained?: { id?: string }[] }).contained?.find((c) => c.id === ref.slice(1));
    } else {
      const t = (ref !== undefined ? LITERAL_TYPE.exec(ref)?.[1] : undefined) ?? (typeof d === 'object' ? d.type : undefined);
      target = t ? { resourceType: t } : undefined;
    }
    if (target && n.constructor.makeResNode) {
      out.push(n.constructor.makeResNode(this, target, null, null, null, null));
    }
  }
  return out;
}

const OPTIONS = {
  resolveInternalTypes: false,
  userInvocationTable: { resolve: { fn: resolveByType, arity: { 0: [] }, internalStructures: true } },
};

/** `(X as T)` and `X.as(T)` -> `X.ofType(T)`; undefined when an `as` is left that this cannot read. */
export function asToOfType(expression: string): string | undefined {
  let e = expression.replace(/\(([^()]*?) as ([A-Za-z]+)\)/g, '$1.ofType($2)').replace(/\.as\(([A-Za-z]+)\)/g, '.ofType($1)');
  e = e.replace(/\s+/g, ' ');
  return / as |\bas\(/.test(e.replace(/'[^']*'/g, '')) ? undefined : e;
}

/** The top-level `|` branches of an expression (outside parentheses and string literals). */
export function unionBranches(expression: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < expression.length; i++) {
    const c = expression[i];
    if (quoted) {
      if (c === '\\') {
        i++;
      } else if (c === "'") {
        quoted = false;
      }
    } else if (c === "'") {
      quoted = true;
    } else if (c === '(') {
      depth++;
    } else if (c === ')') {
      depth--;
    } else if (c === '|' && depth === 0) {
      out.push(expression.slice(start, i));
      start = i + 1;
    }
  }
  out.push(expression.slice(start));
  return out.map((b) => b.trim()).filter((b) => b !== '');
}

type Evaluator = (resource: unknown) => Item[];
const evaluators = new Map<string, Evaluator>();

/** A function evaluating `expression` (the SearchParameter's text) to typed items. */
export function evaluator(expression: string): Evaluator {
  let hit = evaluators.get(expression);
  if (!hit) {
    const rewritten = asToOfType(expression);
    if (rewritten === undefined) {
      throw new Error(`cannot read '${expression}'`);
    }
    // Each top-level union branch on its own: `|` deduplicates by FHIRPath equality, which
    // fhirpath.js cannot apply to a Quantity with a comparator; duplicates do not change a match.
    const branches = unionBranches(rewritten).map(
      (b) => fhirpath.compile(b, r4, OPTIONS) as unknown as (r: unknown, env: Record<string, unknown>) => unknown[],
    );
    hit = (resource) =>
      branches.flatMap((f) => f(resource, { resource, rootResource: resource })).map((x): Item => {
        if (isNode(x)) {
          // fhirpath.js hands decimals and integers over as FP_Decimal objects ({ value, asStr }).
          const d = x.data as { value?: unknown; asStr?: unknown } | null;
          const v = typeof d === 'object' && d !== null && typeof d.value === 'number' && typeof d.asStr === 'string' ? d.value : x.data;
          const type = x.fhirNodeDataType ?? (typeof v === 'object' && v !== null ? (v as { resourceType?: string }).resourceType : undefined);
          return { type: type ?? undefined, value: v };
        }
        if (typeof x === 'boolean') {
          return { type: 'boolean', value: x };
        }
        if (typeof x === 'number') {
          return { type: 'decimal', value: x };
        }
        return { type: 'string', value: String(x) };
      });
    evaluators.set(expression, hit);
  }
  return hit;
}

// ---------------------------------------------------------------- value models per kind

const str = (o: unknown, k: string): string | undefined => {
  const v = typeof o === 'object' && o !== null ? (o as Record<string, unknown>)[k] : undefined;
  return typeof v === 'string' ? v : undefined;
};
const num = (o: unknown, k: string): number | undefined => {
  const v = typeof o === 'object' && o !== null ? (o as Record<string, unknown>)[k] : undefined;
  return typeof v === 'number' ? v : undefined;
};
const list = (o: unknown, k: string): unknown[] => {
  const v = typeof o === 'object' && o !== null ? (o as Record<string, unknown>)[k] : undefined;
  return Array.isArray(v) ? v : v === undefined ? [] : [v];
};

export interface TokenV {
  system?: string;
  code: string;
  /** From a Coding or Identifier (whose system, or its absence, is explicit). */
  coded: boolean;
}
export interface RefV {
  local?: { type: string; id: string };
  url?: string;
}
export interface RangeV {
  start: number;
  end: number;
}
export interface QuantityV {
  low: number;
  high: number;
  system?: string;
  code?: string;
  unit?: string;
}

export function tokens(items: Item[]): TokenV[] {
  const out: TokenV[] = [];
  const coding = (c: unknown): void => {
    const code = str(c, 'code');
    if (code !== undefined) {
      out.push({ system: str(c, 'system'), code, coded: true });
    }
  };
  for (const { type, value } of items) {
    if (typeof value === 'string') {
      out.push({ code: value, coded: false });
    } else if (typeof value === 'boolean') {
      out.push({ code: String(value), coded: false });
    } else if (type === 'Coding') {
      coding(value);
    } else if (type === 'CodeableConcept') {
      list(value, 'coding').forEach(coding);
    } else if (type === 'Identifier') {
      const v = str(value, 'value');
      if (v !== undefined) {
        out.push({ system: str(value, 'system'), code: v, coded: true });
      }
    } else if (type === 'ContactPoint') {
      const v = str(value, 'value');
      if (v !== undefined) {
        out.push({ code: v, coded: false });
      }
    }
  }
  return out;
}

/** Case, accents and whitespace runs folded (search.html#string). */
export function fold(s: string): string {
  return s.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase().replace(/\s+/g, ' ').trim();
}

const NAME = ['family', 'given', 'prefix', 'suffix', 'text'];
const ADDRESS = ['line', 'city', 'district', 'state', 'postalCode', 'country', 'text'];

/** The strings a string parameter searches, as written. */
export function strings(items: Item[]): string[] {
  const out: string[] = [];
  for (const { type, value } of items) {
    if (typeof value === 'string') {
      out.push(value);
    } else if (type === 'HumanName' || type === 'Address') {
      for (const k of type === 'HumanName' ? NAME : ADDRESS) {
        for (const v of list(value, k)) {
          if (typeof v === 'string') {
            out.push(v);
          }
        }
      }
    }
  }
  return out;
}

const CANONICAL_TYPES = new Set(['canonical', 'uri', 'url', 'oid', 'uuid']);
const ABSOLUTE = /^[a-z][a-z0-9+.-]*:/i;

/** The references a reference parameter matches on; `baseUrl` makes absolute local ones relative. */
export function references(items: Item[], baseUrl: string): RefV[] {
  const out: RefV[] = [];
  for (const { type, value } of items) {
    if (typeof value === 'string') {
      if (type !== undefined && CANONICAL_TYPES.has(type) && ABSOLUTE.test(value)) {
        out.push({ url: value.split('|')[0] });
      }
      continue;
    }
    const rt = str(value, 'resourceType');
    if (rt !== undefined) {
      const id = str(value, 'id');
      if (id !== undefined) {
        out.push({ local: { type: rt, id } });
      }
      continue;
    }
    let ref = type === 'Reference' ? str(value, 'reference') : undefined;
    if (ref === undefined || ref.startsWith('#')) {
      continue;
    }
    if (ref.startsWith(baseUrl + '/')) {
      ref = ref.slice(baseUrl.length + 1);
    }
    const m = /^([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[A-Za-z0-9\-.]{1,64})?$/.exec(ref);
    if (m) {
      out.push({ local: { type: m[1], id: m[2] } });
    } else if (ABSOLUTE.test(ref)) {
      out.push({ url: ref });
    }
  }
  return out;
}

/**
 * The instants a FHIR date/dateTime/instant covers: [start, end) in epoch ms, the end being the
 * start of the next year/month/day/minute/second/fraction at the written precision.
 */
export function dateRangeOf(text: string): RangeV | undefined {
  const m = /^(\d{4})(?:-(\d\d)(?:-(\d\d)(?:T(\d\d):(\d\d)(?::(\d\d)(?:\.(\d+))?)?(Z|[+-]\d\d:\d\d)?)?)?)?$/.exec(text);
  if (!m) {
    return undefined;
  }
  const [, ys, mos, ds, hs, mis, ss, frac, zone] = m;
  const at = (y: number, mo: number, d: number, h: number, mi: number, s: number, ms: number): number => {
    const t = new Date(Date.UTC(2000, 0, 1));
    t.setUTCFullYear(y, mo, d);
    t.setUTCHours(h, mi, s, ms);
    return t.getTime();
  };
  const y = Number(ys);
  if (mos === undefined) {
    return { start: at(y, 0, 1, 0, 0, 0, 0), end: at(y + 1, 0, 1, 0, 0, 0, 0) };
  }
  const mo = Number(mos) - 1;
  if (ds === undefined) {
    return { start: at(y, mo, 1, 0, 0, 0, 0), end: at(y, mo + 1, 1, 0, 0, 0, 0) };
  }
  const d = Number(ds);
  if (hs === undefined) {
    return { start: at(y, mo, d, 0, 0, 0, 0), end: at(y, mo, d + 1, 0, 0, 0, 0) };
  }
  let offset = 0;
  if (zone !== undefined && zone !== 'Z') {
    offset = (zone.startsWith('-') ? -1 : 1) * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6))) * 60_000;
  }
  const h = Number(hs);
  const mi = Number(mis);
  if (ss === undefined) {
    const start = at(y, mo, d, h, mi, 0, 0) - offset;
    return { start, end: start + 60_000 };
  }
  const s = Number(ss);
  if (frac === undefined) {
    const start = at(y, mo, d, h, mi, s, 0) - offset;
    return { start, end: start + 1000 };
  }
  // Precision of the fraction; below a millisecond the range is that millisecond.
  const digits = Math.min(frac.length, 3);
  const ms = Number(frac.slice(0, 3).padEnd(3, '0'));
  const start = at(y, mo, d, h, mi, s, ms) - offset;
  return { start, end: start + 10 ** (3 - digits) };
}

/** The date ranges a date parameter matches on. */
export function dateRanges(items: Item[]): RangeV[] {
  const out: RangeV[] = [];
  const period = (p: unknown): RangeV | undefined => {
    const s = str(p, 'start');
    const e = str(p, 'end');
    const rs = s === undefined ? undefined : dateRangeOf(s);
    const re = e === undefined ? undefined : dateRangeOf(e);
    if ((s === undefined && e === undefined) || (s !== undefined && !rs) || (e !== undefined && !re)) {
      return undefined;
    }
    return { start: rs ? rs.start : -Infinity, end: re ? re.end : Infinity };
  };
  for (const { type, value } of items) {
    let r: RangeV | undefined;
    if (typeof value === 'string') {
      r = type === 'time' ? undefined : dateRangeOf(value);
    } else if (type === 'Period') {
      r = period(value);
    } else if (type === 'Timing') {
      const parts = list(value, 'event').map((e) => (typeof e === 'string' ? dateRangeOf(e) : undefined));
      const bounds = (value as { repeat?: { boundsPeriod?: unknown } }).repeat?.boundsPeriod;
      if (bounds !== undefined) {
        parts.push(period(bounds));
      }
      const ok = parts.filter((p): p is RangeV => p !== undefined);
      if (ok.length > 0) {
        r = { start: Math.min(...ok.map((p) => p.start)), end: Math.max(...ok.map((p) => p.end)) };
      }
    }
    if (r) {
      out.push(r);
    }
  }
  return out;
}

/** Written date values (for building search values): dates and Period ends as they appear. */
export function writtenDates(items: Item[]): string[] {
  const out: string[] = [];
  for (const { type, value } of items) {
    if (typeof value === 'string' && type !== 'time') {
      out.push(value);
    } else if (type === 'Period') {
      for (const k of ['start', 'end']) {
        const v = str(value, k);
        if (v !== undefined) {
          out.push(v);
        }
      }
    } else if (type === 'Timing') {
      out.push(...list(value, 'event').filter((e): e is string => typeof e === 'string'));
    }
  }
  return out.filter((v) => dateRangeOf(v) !== undefined);
}

export function uris(items: Item[]): string[] {
  const out: string[] = [];
  for (const { type, value } of items) {
    if (typeof value === 'string' && value !== '') {
      out.push(type === 'canonical' ? value.split('|')[0] : value);
    }
  }
  return out;
}

export function numbers(items: Item[]): QuantityV[] {
  const out: QuantityV[] = [];
  for (const { type, value } of items) {
    if (typeof value === 'number') {
      out.push({ low: value, high: value });
    } else if (type === 'Range') {
      const lo = num((value as { low?: unknown }).low, 'value');
      const hi = num((value as { high?: unknown }).high, 'value');
      if (lo !== undefined || hi !== undefined) {
        out.push({ low: lo ?? -Infinity, high: hi ?? Infinity });
      }
    }
  }
  return out;
}

function quantity(q: unknown, money: boolean): QuantityV | undefined {
  const v = num(q, 'value');
  if (v === undefined) {
    return undefined;
  }
  const c = str(q, 'comparator');
  return {
    low: c === '<' || c === '<=' ? -Infinity : v,
    high: c === '>' || c === '>=' ? Infinity : v,
    system: money ? 'urn:iso:std:iso:4217' : str(q, 'system'),
    code: money ? str(q, 'currency') : str(q, 'code'),
    unit: money ? undefined : str(q, 'unit'),
  };
}

export function quantities(items: Item[]): QuantityV[] {
  const out: QuantityV[] = [];
  for (const { type, value } of items) {
    if (typeof value === 'number') {
      out.push({ low: value, high: value });
    } else if (type === 'Range') {
      const lo = quantity((value as { low?: unknown }).low, false);
      const hi = quantity((value as { high?: unknown }).high, false);
      const u = lo ?? hi;
      if (u) {
        out.push({ low: lo ? lo.low : -Infinity, high: hi ? hi.high : Infinity, system: u.system, code: u.code, unit: u.unit });
      }
    } else if (type === 'Money') {
      const q = quantity(value, true);
      if (q) {
        out.push(q);
      }
    } else if (type !== 'SampledData' && type !== 'Ratio' && typeof value === 'object' && value !== null) {
      const q = quantity(value, false);
      if (q) {
        out.push(q);
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------- search values and matching

/** search.html#escaping: `\`, `,`, `$` and `|` inside a value are escaped with `\`. */
export const escape = (s: string): string => s.replace(/[\\,$|]/g, (c) => '\\' + c);

/** A parsed search value of one kind, with the predicate it implies over a resource's values. */
export interface Probe {
  /** The search value as sent (escaped). */
  value: string;
  /** Label of its form, for the report (`system|code`, `eq`, `prefix`, ...). */
  form: string;
  matches: (items: Item[]) => boolean;
}

export function tokenProbe(form: 'code' | 'system|code' | '|code' | 'system|', t: TokenV): Probe {
  const sys = t.system ?? '';
  switch (form) {
    case 'code':
      return { value: escape(t.code), form, matches: (items) => tokens(items).some((x) => x.code === t.code) };
    case 'system|code':
      return { value: `${escape(sys)}|${escape(t.code)}`, form, matches: (items) => tokens(items).some((x) => x.system === sys && x.code === t.code) };
    case '|code':
      return { value: `|${escape(t.code)}`, form, matches: (items) => tokens(items).some((x) => x.system === undefined && x.code === t.code) };
    case 'system|':
      return { value: `${escape(sys)}|`, form, matches: (items) => tokens(items).some((x) => x.system === sys) };
  }
}

export function stringProbe(form: string, prefix: string): Probe {
  const f = fold(prefix);
  return { value: escape(prefix), form, matches: (items) => strings(items).some((s) => fold(s).startsWith(f)) };
}

export function referenceProbe(r: RefV, baseUrl: string): Probe {
  if (r.local) {
    const { type, id } = r.local;
    return {
      value: `${type}/${id}`,
      form: 'Type/id',
      matches: (items) => references(items, baseUrl).some((x) => x.local?.type === type && x.local.id === id),
    };
  }
  const url = r.url!;
  return { value: escape(url), form: 'url', matches: (items) => references(items, baseUrl).some((x) => x.url === url) };
}

export function dateProbe(prefix: 'eq' | 'ge' | 'le', written: string): Probe {
  const s = dateRangeOf(written)!;
  const eq = (r: RangeV): boolean => r.start >= s.start && r.end <= s.end;
  const test = {
    eq,
    // #prefix: the range above the search value intersects the value's, or eq.
    ge: (r: RangeV) => r.end > s.end || eq(r),
    // the range below the search value intersects the value's, or eq.
    le: (r: RangeV) => r.start < s.start || eq(r),
  }[prefix];
  return { value: `${prefix}${written}`, form: prefix, matches: (items) => dateRanges(items).some(test) };
}

export function uriProbe(uri: string): Probe {
  return { value: escape(uri), form: 'exact', matches: (items) => uris(items).includes(uri) };
}

/** [low, high) implied by a written decimal (search.html#number: 100 -> [99.5, 100.5)). */
export function impliedRange(written: string): { v: number; low: number; high: number } {
  const [mant, exp = '0'] = written.toLowerCase().split('e');
  const decimals = mant.includes('.') ? mant.length - mant.indexOf('.') - 1 : 0;
  const half = 5 * 10 ** (Number(exp) - decimals - 1);
  const v = Number(written);
  return { v, low: v - half, high: v + half };
}

function numericTest(prefix: 'eq' | 'ge' | 'le', written: string): (q: QuantityV) => boolean {
  const r = impliedRange(written);
  switch (prefix) {
    case 'eq':
      return (q) => q.low >= r.low && q.high < r.high;
    case 'ge':
      return (q) => q.high >= r.v;
    case 'le':
      return (q) => q.low <= r.v;
  }
}

export function numberProbe(prefix: 'eq' | 'ge' | 'le', written: string): Probe {
  const test = numericTest(prefix, written);
  return { value: `${prefix === 'eq' ? '' : prefix}${written}`, form: prefix, matches: (items) => numbers(items).some(test) };
}

export function quantityProbe(form: 'value' | 'value|system|code' | 'value||unit', written: string, q: QuantityV): Probe {
  const test = numericTest('eq', written);
  switch (form) {
    case 'value':
      return { value: written, form, matches: (items) => quantities(items).some(test) };
    case 'value|system|code':
      return {
        value: `${written}|${escape(q.system!)}|${escape(q.code!)}`,
        form,
        matches: (items) => quantities(items).some((x) => test(x) && x.system === q.system && x.code === q.code),
      };
    case 'value||unit': {
      const u = (q.code ?? q.unit)!;
      return { value: `${written}||${escape(u)}`, form, matches: (items) => quantities(items).some((x) => test(x) && (x.code === u || x.unit === u)) };
    }
  }
}
