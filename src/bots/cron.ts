/**
 * Standard 5-field cron expressions (minute hour day-of-month month day-of-week), used to schedule
 * bots: a monthly billing close at 02:00 on the 1st is `0 2 1 * *`. Dependency-free.
 *
 * Vixie-cron semantics: `*`, numbers, ranges `a-b`, steps (`a-b/n`, `a/n` meaning a to the field's
 * end, and `*` with `/n`), lists `a,b,c`, month names JAN-DEC and day names SUN-SAT (any case),
 * day-of-week 0-7 with 0 and 7 both Sunday, and the macros `@yearly @annually @monthly @weekly
 * @daily @midnight @hourly`. When day-of-month and day-of-week are both restricted a day matches if
 * EITHER does. As in Vixie cron, a field written starting with `*` (plain or stepped) counts as
 * unrestricted for that rule: day-of-month "every 2nd day from `*`" with day-of-week MON means odd
 * days that are Mondays. The open end of day-of-week (`*`, `a/n`) is 6; 7 is only an explicit alias
 * for Sunday.
 *
 * Times are UTC unless `timeZone: 'local'`. In local time a wall-clock minute skipped by a
 * spring-forward DST change never happens (so it does not run that day), and `next` visits an hour
 * repeated by a fall-back change once, at its first occurrence.
 */

/** A parsed cron expression. */
export interface CronSchedule {
  readonly source: string;
  /** true when the instant's minute matches (seconds ignored) */
  matches(at: Date): boolean;
  /** the first minute strictly after `after` that matches (seconds/ms zeroed) */
  next(after: Date): Date;
}

/** A cron expression that cannot be parsed, or a schedule with no run within the look-ahead. */
export class CronError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CronError';
  }
}

type FieldName = 'minute' | 'hour' | 'day-of-month' | 'month' | 'day-of-week';

interface FieldSpec {
  readonly name: FieldName;
  readonly min: number;
  readonly max: number;
  /** Where `*` and `a/n` end (below `max` only for day-of-week, whose 7 is an alias). */
  readonly openMax: number;
  readonly names?: Readonly<Record<string, number>>;
  readonly namesHint?: string;
}

const MONTH_NAMES = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const DAY_NAMES = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

const FIELDS: readonly FieldSpec[] = [
  { name: 'minute', min: 0, max: 59, openMax: 59 },
  { name: 'hour', min: 0, max: 23, openMax: 23 },
  { name: 'day-of-month', min: 1, max: 31, openMax: 31 },
  {
    name: 'month',
    min: 1,
    max: 12,
    openMax: 12,
    names: Object.fromEntries(MONTH_NAMES.map((n, i) => [n, i + 1])),
    namesHint: 'a month name (JAN-DEC)',
  },
  {
    name: 'day-of-week',
    min: 0,
    max: 7,
    openMax: 6,
    names: Object.fromEntries(DAY_NAMES.map((n, i) => [n, i])),
    namesHint: 'a day name (SUN-SAT)',
  },
];

const MACROS: Readonly<Record<string, string>> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
};

const MINUTE_MS = 60_000;
const LOOKAHEAD_YEARS = 5;

/** One field's allowed values; `star` when it was written starting with `*` (the Vixie dom/dow rule). */
interface Field {
  readonly allowed: readonly boolean[];
  readonly star: boolean;
}

function fieldError(spec: FieldSpec, why: string): CronError {
  return new CronError(`cron field '${spec.name}' ${why}`);
}

function parseValue(spec: FieldSpec, text: string, item: string): number {
  if (text === '') {
    throw fieldError(spec, `item '${item}' is missing a value`);
  }
  if (/^\d+$/.test(text)) {
    const n = Number(text);
    if (n < spec.min || n > spec.max) {
      throw fieldError(spec, `value ${text} is out of range ${spec.min}-${spec.max}`);
    }
    return n;
  }
  const named = spec.names?.[text.toUpperCase()];
  if (named === undefined) {
    throw fieldError(spec, `value '${text}' is not a number${spec.namesHint ? ` or ${spec.namesHint}` : ''}`);
  }
  return named;
}

function parseField(spec: FieldSpec, text: string): Field {
  const allowed = new Array<boolean>(spec.max + 1).fill(false);
  for (const item of text.split(',')) {
    if (item === '') {
      throw fieldError(spec, `has an empty list item in '${text}'`);
    }
    const slashed = item.split('/');
    if (slashed.length > 2) {
      throw fieldError(spec, `item '${item}' has more than one '/'`);
    }
    const [rangeText, stepText] = slashed as [string, string | undefined];
    let step = 1;
    if (stepText !== undefined) {
      if (!/^\d+$/.test(stepText)) {
        throw fieldError(spec, `step '${stepText}' in '${item}' is not a number`);
      }
      step = Number(stepText);
      if (step === 0) {
        throw fieldError(spec, `step 0 in '${item}' must be at least 1`);
      }
    }
    let low: number;
    let high: number;
    if (rangeText === '*') {
      low = spec.min;
      high = spec.openMax;
    } else {
      const bounds = rangeText.split('-');
      if (bounds.length > 2) {
        throw fieldError(spec, `item '${item}' has more than one '-'`);
      }
      low = parseValue(spec, bounds[0]!, item);
      high = bounds.length === 2 ? parseValue(spec, bounds[1]!, item) : stepText !== undefined ? Math.max(low, spec.openMax) : low;
      if (low > high) {
        throw fieldError(spec, `range ${rangeText} is reversed (${low} is after ${high})`);
      }
    }
    for (let v = low; v <= high; v += step) {
      allowed[v] = true;
    }
  }
  if (spec.name === 'day-of-week' && allowed[7]) {
    allowed[0] = true;
  }
  return { allowed, star: text.startsWith('*') };
}

/** Calendar fields of an instant in the schedule's time zone; month is 1-12, weekday 0 (Sunday)-6. */
interface Fields {
  readonly year: number;
  readonly month: number;
  readonly day: number;
  readonly hour: number;
  readonly minute: number;
  readonly weekday: number;
}

interface Clock {
  fields(ms: number): Fields;
  /** The instant of a wall-clock time; out-of-range parts roll over (month 13 is next January). */
  at(year: number, month: number, day: number, hour: number, minute: number): number;
}

const utcClock: Clock = {
  fields(ms) {
    const d = new Date(ms);
    return {
      year: d.getUTCFullYear(),
      month: d.getUTCMonth() + 1,
      day: d.getUTCDate(),
      hour: d.getUTCHours(),
      minute: d.getUTCMinutes(),
      weekday: d.getUTCDay(),
    };
  },
  at(year, month, day, hour, minute) {
    const d = new Date(0);
    d.setUTCFullYear(year, month - 1, day);
    return d.setUTCHours(hour, minute, 0, 0);
  },
};

const localClock: Clock = {
  fields(ms) {
    const d = new Date(ms);
    return {
      year: d.getFullYear(),
      month: d.getMonth() + 1,
      day: d.getDate(),
      hour: d.getHours(),
      minute: d.getMinutes(),
      weekday: d.getDay(),
    };
  },
  at(year, month, day, hour, minute) {
    const d = new Date(0);
    d.setFullYear(year, month - 1, day);
    return d.setHours(hour, minute, 0, 0);
  },
};

/** The first allowed value after `from`, or undefined. */
function nextAllowed(allowed: readonly boolean[], from: number): number | undefined {
  for (let v = from + 1; v < allowed.length; v++) {
    if (allowed[v]) {
      return v;
    }
  }
  return undefined;
}

class Schedule implements CronSchedule {
  constructor(
    readonly source: string,
    private readonly minutes: Field,
    private readonly hours: Field,
    private readonly daysOfMonth: Field,
    private readonly months: Field,
    private readonly daysOfWeek: Field,
    private readonly clock: Clock,
  ) {}

  matches(at: Date): boolean {
    const f = this.clock.fields(at.getTime());
    return this.minutes.allowed[f.minute] === true && this.hours.allowed[f.hour] === true && this.months.allowed[f.month] === true && this.dayMatches(f);
  }

  next(after: Date): Date {
    const from = after.getTime();
    if (!Number.isFinite(from)) {
      throw new CronError(`cron expression '${this.source}': next() needs a valid date`);
    }
    const limit = new Date(from).setUTCFullYear(after.getUTCFullYear() + LOOKAHEAD_YEARS);
    const clock = this.clock;
    let t = Math.floor(from / MINUTE_MS) * MINUTE_MS + MINUTE_MS;
    while (t <= limit) {
      const f = clock.fields(t);
      let candidate: number;
      if (this.months.allowed[f.month] !== true) {
        candidate = clock.at(f.year, f.month + 1, 1, 0, 0);
      } else if (!this.dayMatches(f)) {
        candidate = clock.at(f.year, f.month, f.day + 1, 0, 0);
      } else if (this.hours.allowed[f.hour] !== true) {
        candidate = this.nextHour(f);
      } else if (this.minutes.allowed[f.minute] !== true) {
        const minute = nextAllowed(this.minutes.allowed, f.minute);
        // Within the hour step by elapsed time, so an hour repeated by a fall-back change stays put.
        candidate = minute === undefined ? this.nextHour(f) : t + (minute - f.minute) * MINUTE_MS;
      } else {
        return new Date(t);
      }
      // A wall-clock time made ambiguous by a DST change can resolve to the past: then creep forward.
      t = candidate > t ? candidate : t + MINUTE_MS;
    }
    throw new CronError(`cron expression '${this.source}' has no match within ${LOOKAHEAD_YEARS} years after ${after.toISOString()}`);
  }

  /** The start of the next allowed hour on `f`'s day, or the start of the next day. */
  private nextHour(f: Fields): number {
    const hour = nextAllowed(this.hours.allowed, f.hour);
    return hour === undefined ? this.clock.at(f.year, f.month, f.day + 1, 0, 0) : this.clock.at(f.year, f.month, f.day, hour, 0);
  }

  private dayMatches(f: Fields): boolean {
    const dom = this.daysOfMonth.allowed[f.day] === true;
    const dow = this.daysOfWeek.allowed[f.weekday] === true;
    return this.daysOfMonth.star || this.daysOfWeek.star ? dom && dow : dom || dow;
  }
}

/** Parses a 5-field expression; throws CronError naming the bad field and why. */
export function parseCron(expression: string, options?: { timeZone?: 'UTC' | 'local' }): CronSchedule {
  const timeZone: string = options?.timeZone ?? 'UTC';
  if (timeZone !== 'UTC' && timeZone !== 'local') {
    throw new CronError(`cron time zone '${timeZone}' is not supported (use 'UTC' or 'local')`);
  }
  let text = expression.trim();
  if (text.startsWith('@')) {
    const macro = MACROS[text.toLowerCase()];
    if (macro === undefined) {
      throw new CronError(`cron macro '${text}' is not supported (use one of ${Object.keys(MACROS).join(' ')})`);
    }
    text = macro;
  }
  const parts = text === '' ? [] : text.split(/\s+/);
  if (parts.length !== FIELDS.length) {
    throw new CronError(
      `cron expression '${expression}' has ${parts.length} field${parts.length === 1 ? '' : 's'}; expected 5 (minute hour day-of-month month day-of-week)`,
    );
  }
  const [minutes, hours, daysOfMonth, months, daysOfWeek] = FIELDS.map((spec, i) => parseField(spec, parts[i]!)) as [Field, Field, Field, Field, Field];
  return new Schedule(expression, minutes, hours, daysOfMonth, months, daysOfWeek, timeZone === 'local' ? localClock : utcClock);
}
