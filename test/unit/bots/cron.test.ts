import { parseCron, CronError } from '../../../src/bots/cron';

/** The first run after `from` (an ISO instant), as an ISO string. */
function next(expression: string, from: string): string {
  return parseCron(expression).next(new Date(from)).toISOString();
}

/** The next `count` runs after `from`, each found from the one before. */
function runs(expression: string, from: string, count: number): string[] {
  const schedule = parseCron(expression);
  const out: string[] = [];
  let at = new Date(from);
  for (let i = 0; i < count; i++) {
    at = schedule.next(at);
    out.push(at.toISOString());
  }
  return out;
}

function matches(expression: string, at: string): boolean {
  return parseCron(expression).matches(new Date(at));
}

/** The error parseCron throws for `expression` (failing the test when it does not throw a CronError). */
function parseError(expression: string): CronError {
  try {
    parseCron(expression);
  } catch (e) {
    expect(e).toBeInstanceOf(CronError);
    return e as CronError;
  }
  throw new Error(`expected '${expression}' to be rejected`);
}

describe('next: basics', () => {
  test('every minute: the next whole minute, strictly after, seconds and ms zeroed', () => {
    expect(next('* * * * *', '2026-01-01T10:00:30.500Z')).toBe('2026-01-01T10:01:00.000Z');
    expect(next('* * * * *', '2026-01-01T10:00:00.000Z')).toBe('2026-01-01T10:01:00.000Z');
    expect(next('* * * * *', '2026-01-01T10:00:59.999Z')).toBe('2026-01-01T10:01:00.000Z');
    expect(next('* * * * *', '2026-12-31T23:59:00.000Z')).toBe('2027-01-01T00:00:00.000Z');
  });

  test('monthly billing close `0 2 1 * *`', () => {
    expect(next('0 2 1 * *', '2026-01-15T00:00:00Z')).toBe('2026-02-01T02:00:00.000Z');
    expect(next('0 2 1 * *', '2026-02-01T01:59:59Z')).toBe('2026-02-01T02:00:00.000Z');
    expect(next('0 2 1 * *', '2026-02-01T02:00:00Z')).toBe('2026-03-01T02:00:00.000Z');
    expect(next('0 2 1 * *', '2026-12-01T02:00:00Z')).toBe('2027-01-01T02:00:00.000Z');
  });

  test('a run found from inside a matching day but past its hour moves to the next day', () => {
    expect(next('30 9 * * *', '2026-03-10T09:30:00Z')).toBe('2026-03-11T09:30:00.000Z');
    expect(next('30 9 * * *', '2026-03-10T09:29:59Z')).toBe('2026-03-10T09:30:00.000Z');
    expect(next('30 9 * * *', '2026-03-10T08:45:00Z')).toBe('2026-03-10T09:30:00.000Z');
  });

  test('lists of minutes and hours', () => {
    expect(runs('0,30 8,12 * * *', '2026-05-01T00:00:00Z', 5)).toEqual([
      '2026-05-01T08:00:00.000Z',
      '2026-05-01T08:30:00.000Z',
      '2026-05-01T12:00:00.000Z',
      '2026-05-01T12:30:00.000Z',
      '2026-05-02T08:00:00.000Z',
    ]);
  });

  test('a fixed yearly minute crosses the year', () => {
    expect(next('59 23 31 12 *', '2026-12-31T23:59:00Z')).toBe('2027-12-31T23:59:00.000Z');
    expect(next('59 23 31 12 *', '2026-06-01T00:00:00Z')).toBe('2026-12-31T23:59:00.000Z');
  });
});

describe('next: month rollovers and leap years', () => {
  test('the 31st skips the months without one', () => {
    expect(runs('0 0 31 * *', '2026-01-01T00:00:00Z', 7)).toEqual([
      '2026-01-31T00:00:00.000Z',
      '2026-03-31T00:00:00.000Z',
      '2026-05-31T00:00:00.000Z',
      '2026-07-31T00:00:00.000Z',
      '2026-08-31T00:00:00.000Z',
      '2026-10-31T00:00:00.000Z',
      '2026-12-31T00:00:00.000Z',
    ]);
  });

  test('the 30th skips February', () => {
    expect(next('0 0 30 * *', '2026-01-30T00:00:00Z')).toBe('2026-03-30T00:00:00.000Z');
  });

  test('from the last minute of a month to the first of the next', () => {
    expect(next('0 0 1 * *', '2026-04-30T23:59:00Z')).toBe('2026-05-01T00:00:00.000Z');
    expect(next('0 0 1 * *', '2026-12-15T00:00:00Z')).toBe('2027-01-01T00:00:00.000Z');
  });

  test('Feb 29 waits for a leap year', () => {
    expect(next('0 0 29 2 *', '2026-01-01T00:00:00Z')).toBe('2028-02-29T00:00:00.000Z');
    expect(next('0 0 29 2 *', '2028-02-29T00:00:00Z')).toBe('2032-02-29T00:00:00.000Z');
    expect(next('0 0 29 2 *', '2028-02-28T23:59:00Z')).toBe('2028-02-29T00:00:00.000Z');
    expect(matches('0 0 29 2 *', '2028-02-29T00:00:00Z')).toBe(true);
  });

  test('in a leap year February has a 29th for `* * 29 * *` style schedules', () => {
    expect(next('0 12 29 * *', '2028-02-01T00:00:00Z')).toBe('2028-02-29T12:00:00.000Z');
    expect(next('0 12 29 * *', '2027-02-01T00:00:00Z')).toBe('2027-03-29T12:00:00.000Z');
  });

  test('a date that never exists throws rather than looping', () => {
    expect(() => parseCron('0 0 30 2 *').next(new Date('2026-01-01T00:00:00Z'))).toThrow(CronError);
    expect(() => parseCron('0 0 30 2 *').next(new Date('2026-01-01T00:00:00Z'))).toThrow(/no match within 5 years/);
    expect(() => parseCron('0 0 31 4,6,9,11 *').next(new Date('2026-01-01T00:00:00Z'))).toThrow(CronError);
  });

  test('the look-ahead is 5 years: 2100 is not a leap year, so Feb 29 from 2097 is too far', () => {
    expect(() => parseCron('0 0 29 2 *').next(new Date('2097-03-01T00:00:00Z'))).toThrow(/no match within 5 years/);
    expect(next('0 0 29 2 *', '2095-03-01T00:00:00Z')).toBe('2096-02-29T00:00:00.000Z');
  });
});

describe('next: steps and ranges', () => {
  test('`*/15` minutes', () => {
    expect(runs('*/15 * * * *', '2026-01-01T10:07:00Z', 4)).toEqual([
      '2026-01-01T10:15:00.000Z',
      '2026-01-01T10:30:00.000Z',
      '2026-01-01T10:45:00.000Z',
      '2026-01-01T11:00:00.000Z',
    ]);
  });

  test('`a-b/n` steps within the range', () => {
    expect(runs('5-20/5 9 * * *', '2026-01-01T00:00:00Z', 5)).toEqual([
      '2026-01-01T09:05:00.000Z',
      '2026-01-01T09:10:00.000Z',
      '2026-01-01T09:15:00.000Z',
      '2026-01-01T09:20:00.000Z',
      '2026-01-02T09:05:00.000Z',
    ]);
    expect(runs('0 9-17/4 * * *', '2026-01-01T00:00:00Z', 4)).toEqual([
      '2026-01-01T09:00:00.000Z',
      '2026-01-01T13:00:00.000Z',
      '2026-01-01T17:00:00.000Z',
      '2026-01-02T09:00:00.000Z',
    ]);
  });

  test('`a/n` steps from a to the end of the field', () => {
    expect(runs('30/10 * * * *', '2026-01-01T10:00:00Z', 4)).toEqual([
      '2026-01-01T10:30:00.000Z',
      '2026-01-01T10:40:00.000Z',
      '2026-01-01T10:50:00.000Z',
      '2026-01-01T11:30:00.000Z',
    ]);
  });

  test('a step larger than the range gives just its start', () => {
    expect(runs('*/45 * * * *', '2026-01-01T10:00:00Z', 3)).toEqual([
      '2026-01-01T10:45:00.000Z',
      '2026-01-01T11:00:00.000Z',
      '2026-01-01T11:45:00.000Z',
    ]);
  });

  test('`*/n` on day-of-month counts from the 1st', () => {
    expect(runs('0 0 */10 * *', '2026-01-01T00:00:00Z', 4)).toEqual([
      '2026-01-11T00:00:00.000Z',
      '2026-01-21T00:00:00.000Z',
      '2026-01-31T00:00:00.000Z',
      '2026-02-01T00:00:00.000Z',
    ]);
  });

  test('a mix of list, range and step items in one field', () => {
    const s = parseCron('1,10-12,50/5 * * * *');
    const minutes = Array.from({ length: 60 }, (_, m) => m).filter((m) => s.matches(new Date(Date.UTC(2026, 0, 1, 0, m))));
    expect(minutes).toEqual([1, 10, 11, 12, 50, 55]);
  });

  test('`*/n` on day-of-week stays within Sunday-Saturday', () => {
    // 2026-01-04 is a Sunday.
    expect(runs('0 0 * * */3', '2026-01-03T00:00:00Z', 4)).toEqual([
      '2026-01-04T00:00:00.000Z', // Sun (0)
      '2026-01-07T00:00:00.000Z', // Wed (3)
      '2026-01-10T00:00:00.000Z', // Sat (6)
      '2026-01-11T00:00:00.000Z', // Sun
    ]);
  });
});

describe('names and day-of-week numbering', () => {
  // 2026-01-01 is a Thursday; 2026-01-04 a Sunday.
  test('weekday ranges by name', () => {
    expect(runs('0 0 * * MON-FRI', '2026-01-01T00:00:00Z', 4)).toEqual([
      '2026-01-02T00:00:00.000Z',
      '2026-01-05T00:00:00.000Z',
      '2026-01-06T00:00:00.000Z',
      '2026-01-07T00:00:00.000Z',
    ]);
  });

  test.each(['0', '7', 'SUN', 'sun', 'Sun'])('day-of-week %s is Sunday', (dow) => {
    expect(next(`0 0 * * ${dow}`, '2026-01-01T00:00:00Z')).toBe('2026-01-04T00:00:00.000Z');
    expect(matches(`0 0 * * ${dow}`, '2026-01-04T00:00:00Z')).toBe(true);
    expect(matches(`0 0 * * ${dow}`, '2026-01-05T00:00:00Z')).toBe(false);
  });

  test('a range ending at 7 includes Sunday', () => {
    expect(runs('0 0 * * 5-7', '2026-01-01T00:00:00Z', 4)).toEqual([
      '2026-01-02T00:00:00.000Z',
      '2026-01-03T00:00:00.000Z',
      '2026-01-04T00:00:00.000Z',
      '2026-01-09T00:00:00.000Z',
    ]);
  });

  test('month names in any case, in lists and stepped ranges', () => {
    expect(next('0 0 1 jan,Jul *', '2026-01-02T00:00:00Z')).toBe('2026-07-01T00:00:00.000Z');
    expect(runs('0 0 1 JAN-MAR/2 *', '2026-01-01T00:00:00Z', 3)).toEqual([
      '2026-03-01T00:00:00.000Z',
      '2027-01-01T00:00:00.000Z',
      '2027-03-01T00:00:00.000Z',
    ]);
    expect(matches('0 0 1 dec *', '2026-12-01T00:00:00Z')).toBe(true);
  });

  test('names and numbers mix', () => {
    expect(runs('0 0 * * 1,wed,FRI', '2026-01-01T00:00:00Z', 4)).toEqual([
      '2026-01-02T00:00:00.000Z',
      '2026-01-05T00:00:00.000Z',
      '2026-01-07T00:00:00.000Z',
      '2026-01-09T00:00:00.000Z',
    ]);
  });
});

describe('day-of-month and day-of-week', () => {
  test('both restricted: a day matches if EITHER matches', () => {
    // The 13th (a Tuesday in January 2026) and every Friday.
    expect(runs('0 0 13 * FRI', '2026-01-01T00:00:00Z', 5)).toEqual([
      '2026-01-02T00:00:00.000Z',
      '2026-01-09T00:00:00.000Z',
      '2026-01-13T00:00:00.000Z',
      '2026-01-16T00:00:00.000Z',
      '2026-01-23T00:00:00.000Z',
    ]);
    expect(matches('0 0 13 * FRI', '2026-01-13T00:00:00Z')).toBe(true);
    expect(matches('0 0 13 * FRI', '2026-01-16T00:00:00Z')).toBe(true);
    expect(matches('0 0 13 * FRI', '2026-01-14T00:00:00Z')).toBe(false);
  });

  test('`1-7 * MON` is not "the first Monday" but days 1-7 plus every Monday', () => {
    expect(runs('0 0 1-7 * MON', '2026-01-07T00:00:00Z', 3)).toEqual([
      '2026-01-12T00:00:00.000Z',
      '2026-01-19T00:00:00.000Z',
      '2026-01-26T00:00:00.000Z',
    ]);
    expect(next('0 0 1-7 * MON', '2026-01-31T00:00:00Z')).toBe('2026-02-01T00:00:00.000Z');
  });

  test('only day-of-week restricted: just those weekdays', () => {
    expect(runs('0 0 * * MON', '2026-01-01T00:00:00Z', 2)).toEqual(['2026-01-05T00:00:00.000Z', '2026-01-12T00:00:00.000Z']);
  });

  test('only day-of-month restricted: just those days', () => {
    expect(runs('0 0 15 * *', '2026-01-01T00:00:00Z', 2)).toEqual(['2026-01-15T00:00:00.000Z', '2026-02-15T00:00:00.000Z']);
  });

  test('as in Vixie cron, a stepped `*` counts as unrestricted, so both must match', () => {
    // Odd days of the month that are Mondays.
    expect(runs('0 0 */2 * MON', '2026-01-01T00:00:00Z', 4)).toEqual([
      '2026-01-05T00:00:00.000Z',
      '2026-01-19T00:00:00.000Z',
      '2026-02-09T00:00:00.000Z',
      '2026-02-23T00:00:00.000Z',
    ]);
  });

  test('the month still has to match under the OR rule', () => {
    expect(next('0 0 1 3 MON', '2026-01-01T00:00:00Z')).toBe('2026-03-01T00:00:00.000Z');
    expect(next('0 0 1 3 MON', '2026-03-01T00:00:00Z')).toBe('2026-03-02T00:00:00.000Z');
  });
});

describe('macros', () => {
  test.each([
    ['@yearly', '2026-06-01T00:00:00Z', '2027-01-01T00:00:00.000Z'],
    ['@annually', '2026-06-01T00:00:00Z', '2027-01-01T00:00:00.000Z'],
    ['@monthly', '2026-06-01T00:00:00Z', '2026-07-01T00:00:00.000Z'],
    ['@weekly', '2026-01-07T00:00:00Z', '2026-01-11T00:00:00.000Z'],
    ['@daily', '2026-01-07T12:00:00Z', '2026-01-08T00:00:00.000Z'],
    ['@midnight', '2026-01-07T12:00:00Z', '2026-01-08T00:00:00.000Z'],
    ['@hourly', '2026-01-07T12:34:00Z', '2026-01-07T13:00:00.000Z'],
    ['@DAILY', '2026-01-07T00:00:00Z', '2026-01-08T00:00:00.000Z'],
    [' @hourly ', '2026-01-07T23:00:00Z', '2026-01-08T00:00:00.000Z'],
  ])('%s after %s is %s', (macro, from, expected) => {
    expect(next(macro, from)).toBe(expected);
  });

  test('a macro keeps its text as the source', () => {
    expect(parseCron('@monthly').source).toBe('@monthly');
    expect(parseCron('0 2 1 * *').source).toBe('0 2 1 * *');
  });
});

describe('matches', () => {
  test('ignores seconds and milliseconds', () => {
    expect(matches('0 2 1 * *', '2026-02-01T02:00:00Z')).toBe(true);
    expect(matches('0 2 1 * *', '2026-02-01T02:00:59.999Z')).toBe(true);
    expect(matches('0 2 1 * *', '2026-02-01T02:01:00Z')).toBe(false);
    expect(matches('0 2 1 * *', '2026-02-01T01:59:59Z')).toBe(false);
    expect(matches('0 2 1 * *', '2026-02-02T02:00:00Z')).toBe(false);
  });

  test('checks every field', () => {
    expect(matches('15 10 20 6 *', '2026-06-20T10:15:00Z')).toBe(true);
    expect(matches('15 10 20 6 *', '2026-07-20T10:15:00Z')).toBe(false);
    expect(matches('15 10 20 6 *', '2026-06-21T10:15:00Z')).toBe(false);
    expect(matches('15 10 20 6 *', '2026-06-20T11:15:00Z')).toBe(false);
    expect(matches('15 10 20 6 *', '2026-06-20T10:16:00Z')).toBe(false);
  });

  test('an invalid date never matches, and next() rejects it', () => {
    expect(parseCron('* * * * *').matches(new Date(Number.NaN))).toBe(false);
    expect(() => parseCron('* * * * *').next(new Date(Number.NaN))).toThrow(CronError);
  });

  test.each(['*/7 */5 * * *', '0 0 13 * FRI', '0 0 */2 * MON', '30 9-17 * * MON-FRI', '0,20,40 */3 1-10 * *', '5 0 * FEB,MAR SAT'])(
    "next() agrees with a minute-by-minute scan of matches() for '%s'",
    (expression) => {
      const s = parseCron(expression);
      const start = Date.UTC(2026, 1, 20, 0, 0);
      const end = Date.UTC(2026, 2, 10, 0, 0);
      const scanned: number[] = [];
      for (let t = start + 60_000; t < end; t += 60_000) {
        if (s.matches(new Date(t))) {
          scanned.push(t);
        }
      }
      const stepped: number[] = [];
      for (let t = s.next(new Date(start)).getTime(); t < end; t = s.next(new Date(t)).getTime()) {
        stepped.push(t);
      }
      expect(scanned.length).toBeGreaterThan(0);
      expect(stepped).toEqual(scanned);
    },
  );
});

describe('time zones', () => {
  test("'UTC' is the default", () => {
    const from = new Date('2026-01-07T12:00:00Z');
    expect(parseCron('30 9 * * 1', { timeZone: 'UTC' }).next(from)).toEqual(parseCron('30 9 * * 1').next(from));
  });

  test("'local' reads and builds wall-clock time in the process's zone", () => {
    // Mid-January, away from any DST change, so this holds in every zone.
    const s = parseCron('30 9 * * 1', { timeZone: 'local' });
    expect(s.next(new Date(2026, 0, 7, 12, 0))).toEqual(new Date(2026, 0, 12, 9, 30));
    expect(s.matches(new Date(2026, 0, 12, 9, 30, 15))).toBe(true);
    expect(s.matches(new Date(2026, 0, 12, 10, 30))).toBe(false);
    expect(parseCron('0 0 1 * *', { timeZone: 'local' }).next(new Date(2026, 5, 15))).toEqual(new Date(2026, 6, 1));
  });

  test('an unsupported zone is rejected', () => {
    expect(() => parseCron('* * * * *', { timeZone: 'Europe/Paris' as 'UTC' })).toThrow(/time zone 'Europe\/Paris'/);
  });
});

describe('efficiency', () => {
  test('rare schedules skip days and hours instead of scanning minutes', () => {
    const started = Date.now();
    const leap = parseCron('0 0 29 2 *');
    const never = parseCron('0 0 30 2 *');
    for (let i = 0; i < 200; i++) {
      const from = new Date(Date.UTC(2026, 0, 1) + i * 86_400_000);
      expect(leap.next(from).toISOString()).toBe('2028-02-29T00:00:00.000Z');
      expect(() => never.next(from)).toThrow(CronError);
    }
    // Minute-by-minute this would be 200 x (1 + 5) years of minutes, over 600 million steps.
    expect(Date.now() - started).toBeLessThan(2000);
  });
});

describe('errors name the field and the reason', () => {
  test.each([
    ['60 * * * *', "cron field 'minute' value 60 is out of range 0-59"],
    ['0 25 * * *', "cron field 'hour' value 25 is out of range 0-23"],
    ['0 0 0 * *', "cron field 'day-of-month' value 0 is out of range 1-31"],
    ['0 0 32 * *', "cron field 'day-of-month' value 32 is out of range 1-31"],
    ['0 0 * 0 *', "cron field 'month' value 0 is out of range 1-12"],
    ['0 0 * 13 *', "cron field 'month' value 13 is out of range 1-12"],
    ['0 0 * * 8', "cron field 'day-of-week' value 8 is out of range 0-7"],
    ['0 0-24 * * *', "cron field 'hour' value 24 is out of range 0-23"],
    ['*/5,70 * * * *', "cron field 'minute' value 70 is out of range 0-59"],
  ])('out of range: %s', (expression, message) => {
    expect(parseError(expression).message).toBe(message);
  });

  test.each([
    ['* * * *', 4],
    ['* * * * * *', 6],
    ['', 0],
    ['   ', 0],
    ['0', 1],
  ])("wrong field count: '%s'", (expression, count) => {
    const message = parseError(expression).message;
    expect(message).toContain(`has ${count} field`);
    expect(message).toContain('expected 5');
  });

  test.each([
    ['1,,2 * * * *', 'minute'],
    [',5 * * * *', 'minute'],
    ['* * 1, * *', 'day-of-month'],
    ['* * * * MON,', 'day-of-week'],
  ])('empty list item: %s', (expression, field) => {
    expect(parseError(expression).message).toMatch(new RegExp(`^cron field '${field}' has an empty list item`));
  });

  test.each([
    ['*/0 * * * *', 'minute'],
    ['0 0-10/0 * * *', 'hour'],
    ['0 0 1/0 * *', 'day-of-month'],
    ['0 0 1 */00 *', 'month'],
  ])('step of 0: %s', (expression, field) => {
    expect(parseError(expression).message).toMatch(new RegExp(`^cron field '${field}' step 0 .* must be at least 1`));
  });

  test.each([
    ['0 20-5 * * *', 'hour'],
    ['30-10 * * * *', 'minute'],
    ['0 0 * DEC-JAN *', 'month'],
    ['0 0 * * FRI-MON', 'day-of-week'],
    ['0 0 * * SAT-SUN', 'day-of-week'],
  ])('reversed range: %s', (expression, field) => {
    expect(parseError(expression).message).toMatch(new RegExp(`^cron field '${field}' range \\S+ is reversed`));
  });

  test.each([
    ['0 0 * FOO *', "cron field 'month' value 'FOO' is not a number or a month name (JAN-DEC)"],
    ['0 0 * MON *', "cron field 'month' value 'MON' is not a number or a month name (JAN-DEC)"],
    ['0 0 * * JAN', "cron field 'day-of-week' value 'JAN' is not a number or a day name (SUN-SAT)"],
    ['0 0 * * MONDAY', "cron field 'day-of-week' value 'MONDAY' is not a number or a day name (SUN-SAT)"],
    ['0 0 JAN * *', "cron field 'day-of-month' value 'JAN' is not a number"],
    ['1.5 * * * *', "cron field 'minute' value '1.5' is not a number"],
    ['x * * * *', "cron field 'minute' value 'x' is not a number"],
    ['*-5 * * * *', "cron field 'minute' value '*' is not a number"],
    ['0 +1 * * *', "cron field 'hour' value '+1' is not a number"],
  ])('not a value: %s', (expression, message) => {
    expect(parseError(expression).message).toBe(message);
  });

  test.each([
    ['-5 * * * *', 'minute', "item '-5' is missing a value"],
    ['0 5- * * *', 'hour', "item '5-' is missing a value"],
    ['1-2-3 * * * *', 'minute', "item '1-2-3' has more than one '-'"],
    ['0 0 1/2/3 * *', 'day-of-month', "item '1/2/3' has more than one '/'"],
    ['*/x * * * *', 'minute', "step 'x' in '*/x' is not a number"],
    ['*/-1 * * * *', 'minute', "step '-1' in '*/-1' is not a number"],
    ['0 0 * */ *', 'month', "step '' in '*/' is not a number"],
  ])('malformed item: %s', (expression, field, why) => {
    expect(parseError(expression).message).toBe(`cron field '${field}' ${why}`);
  });

  test('an unknown macro', () => {
    expect(parseError('@reboot').message).toMatch(/^cron macro '@reboot' is not supported/);
    expect(parseError('@every 5m').message).toMatch(/^cron macro '@every 5m' is not supported/);
  });

  test('CronError is an Error with its own name', () => {
    const e = parseError('0 25 * * *');
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe('CronError');
  });
});
