/**
 * date parameters. Every value is a range of instants [start, end) given by its precision
 * (R4 search, "date"): `2020` covers the year, `2020-03` the month, `2020-03-04T10:00:00+02:00` one
 * second, `...T10:00:00.5Z` a tenth of a second. Values without a zone are taken as UTC.
 *
 * `dateRange` is exported for the query side: a search value is turned into a range the same way.
 */
import type { TypedValue } from '../fhirpath';
import { arr, obj, str } from './context';
import type { DateValue } from './rows';

/** A range of instants in epoch milliseconds, [start, end); ends may be -Infinity / Infinity. */
export interface MsRange {
  start: number;
  end: number;
}

const DATE_RE =
  /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/;

/** Epoch ms of a UTC calendar time; works for years 0-99 too (Date.UTC maps them to 19xx). */
function utcMs(y: number, mo: number, d: number, h = 0, mi = 0, s = 0, ms = 0): number {
  if (y >= 100) {
    return Date.UTC(y, mo, d, h, mi, s, ms); // no Date object: this runs for every date indexed
  }
  const dt = new Date(0);
  dt.setUTCFullYear(y, mo, d);
  dt.setUTCHours(h, mi, s, ms);
  return dt.getTime();
}

/**
 * The range of instants a FHIR date, dateTime or instant covers, or undefined when the text is not
 * one. Precision-aware; no zone = UTC; sub-millisecond digits are truncated (the range then covers
 * the whole millisecond).
 */
export function dateRange(text: string): MsRange | undefined {
  const m = DATE_RE.exec(text.trim());
  if (!m) {
    return undefined;
  }
  const y = Number(m[1]);
  if (m[2] === undefined) {
    return { start: utcMs(y, 0, 1), end: utcMs(y + 1, 0, 1) };
  }
  const mo = Number(m[2]) - 1;
  if (mo < 0 || mo > 11) {
    return undefined;
  }
  if (m[3] === undefined) {
    return { start: utcMs(y, mo, 1), end: utcMs(y, mo + 1, 1) };
  }
  const d = Number(m[3]);
  if (d < 1 || d > daysInMonth(y, mo)) {
    return undefined;
  }
  if (m[4] === undefined) {
    return { start: utcMs(y, mo, d), end: utcMs(y, mo, d + 1) };
  }
  const h = Number(m[4]);
  const mi = Number(m[5]);
  const s = m[6] === undefined ? 0 : Number(m[6]);
  if (h > 23 || mi > 59 || s > 60) {
    return undefined;
  }
  const fraction = m[7] ?? '';
  const ms = fraction === '' ? 0 : Number(fraction.slice(0, 3).padEnd(3, '0'));
  let width: number;
  if (m[6] === undefined) {
    width = 60_000;
  } else if (fraction === '') {
    width = 1000;
  } else {
    width = 10 ** (3 - Math.min(fraction.length, 3));
  }
  const zone = m[8];
  let offsetMin = 0;
  if (zone !== undefined && zone !== 'Z') {
    const oh = Number(zone.slice(1, 3));
    const om = Number(zone.slice(4, 6));
    if (oh > 14 || om > 59) {
      return undefined;
    }
    offsetMin = (zone[0] === '-' ? -1 : 1) * (oh * 60 + om);
  }
  // A leap second (:60) is folded into the last millisecond of the minute.
  const start = utcMs(y, mo, d, h, mi, Math.min(s, 59), s === 60 ? 999 : ms) - offsetMin * 60_000;
  return { start, end: start + (s === 60 ? 1 : width) };
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function daysInMonth(y: number, mo: number): number {
  const leap = y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0);
  return mo === 1 && leap ? 29 : DAYS_IN_MONTH[mo];
}

/** Latest instant representable in the index (end of year 9999); anything later is `infinity`. */
const MAX_MS = utcMs(10000, 0, 1);
/** Earliest instant representable (the start of year 0); anything earlier is `-infinity`. */
const MIN_MS = utcMs(0, 0, 1);

/** The text stored for an instant: ISO 8601 UTC with ms, or `-infinity` / `infinity`. */
export function formatInstant(ms: number): string {
  if (ms === -Infinity || ms < MIN_MS) {
    return '-infinity';
  }
  if (ms === Infinity || ms >= MAX_MS) {
    return 'infinity';
  }
  return new Date(ms).toISOString();
}

function periodRange(p: unknown): MsRange | undefined {
  const s = str(p, 'start');
  const e = str(p, 'end');
  if (s === undefined && e === undefined) {
    return undefined;
  }
  const sr = s === undefined ? undefined : dateRange(s);
  const er = e === undefined ? undefined : dateRange(e);
  if ((s !== undefined && !sr) || (e !== undefined && !er)) {
    return undefined;
  }
  return { start: sr ? sr.start : -Infinity, end: er ? er.end : Infinity };
}

/** Timing: the outer limits of its events and repeat.boundsPeriod; the schedule itself is ignored. */
function timingRange(t: unknown): MsRange | undefined {
  const ranges: MsRange[] = [];
  for (const e of arr(t, 'event')) {
    const r = typeof e === 'string' ? dateRange(e) : undefined;
    if (r) {
      ranges.push(r);
    }
  }
  const bounds = obj(obj(t, 'repeat'), 'boundsPeriod');
  const br = bounds ? periodRange(bounds) : undefined;
  if (br) {
    ranges.push(br);
  }
  if (ranges.length === 0) {
    return undefined;
  }
  let start = Infinity;
  let end = -Infinity;
  for (const r of ranges) {
    start = Math.min(start, r.start);
    end = Math.max(end, r.end);
  }
  return { start, end };
}

/** The range a typed value covers, or undefined when it has no date meaning. */
export function valueRange(tv: TypedValue): MsRange | undefined {
  const v = tv.value;
  if (typeof v === 'string') {
    return tv.type === 'time' ? undefined : dateRange(v);
  }
  switch (tv.type ?? '') {
    case 'Period':
      return periodRange(v);
    case 'Timing':
      return timingRange(v);
    default:
      return undefined;
  }
}

export function dateValues(tv: TypedValue): DateValue[] {
  const r = valueRange(tv);
  return r ? [{ start: formatInstant(r.start), end: formatInstant(r.end) }] : [];
}
