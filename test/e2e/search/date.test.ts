/**
 * date search parameters (FHIR R4 search.html#date, #prefix) on Observation.effective[x] (dateTime
 * of several precisions, instant, Period, open-ended Periods) and Patient.birthDate (date), plus
 * `_lastUpdated`.
 *
 * Both the search value and the stored value are ranges: "Searches are always performed on values
 * that are implicitly or explicitly a range. [...] the date 2015-08-12 has an implicit range of all
 * the time during that day"; "instant: an interval with an effective width of 0"; "Period: Explicit,
 * though the upper or lower bound might not actually be specified in resources"; "Implicitly, a
 * missing lower boundary is "less than" any actual date. A missing upper boundary is "greater than"
 * any actual date."
 *
 * The prefixes, as the R4 table defines them on ranges (S = search range, T = target range):
 *   eq  the range of the search value fully contains the range of the target value
 *   ne  the range of the search value does not fully contain the range of the target value
 *   gt  the range above the search value intersects (i.e. overlaps) with the range of the target value
 *   lt  the range below the search value intersects (i.e. overlaps) with the range of the target value
 *   ge  gt, or the range of the search value fully contains the range of the target value
 *   le  lt, or the range of the search value fully contains the range of the target value
 *   sa  the range of the search value does not overlap with the range of the target value, and the
 *       range above the search value contains the range of the target value
 *   eb  [...] the range below the search value contains the range of the target value
 *   ap  the range of the search value overlaps with the range of the target value (plus a
 *       server-chosen approximation, "10% of the gap between now and the date")
 * So gt: T ends after S ends; lt: T starts before S starts; sa: T starts at or after S's end; eb: T
 * ends at or before S's start.
 *
 * Time zones: "Where both search parameters and resource element date times do not have time zones,
 * the servers local time zone should be assumed." Stored times are therefore at least 11 hours from
 * any day boundary they are compared with, so the expectations hold for a server in any zone from
 * UTC-11 to UTC+11; search values with a time always carry a zone.
 */
import type { Device, Observation, Patient, Resource } from '@medplum/fhirtypes';
import { startTestServer, type TestServer } from '../../support/server';
import { Fixtures, matchKeys, sorted } from './support';

function obs(key: string, effective: Partial<Observation>): Observation {
  return {
    resourceType: 'Observation',
    identifier: [{ system: 'urn:test:search:date', value: key }],
    status: 'final',
    code: { text: key },
    ...effective,
  };
}

// Target ranges in UTC, [start, end):
const OBSERVATIONS: Record<string, Observation> = {
  'd-day': obs('d-day', { effectiveDateTime: '2013-01-14' }), // [01-14, 01-15)
  'd-noon': obs('d-noon', { effectiveDateTime: '2013-01-14T12:00:00Z' }), // one second
  'd-next': obs('d-next', { effectiveInstant: '2013-01-15T12:00:00.000Z' }), // a point
  'd-month': obs('d-month', { effectiveDateTime: '2013-03' }), // [03-01, 04-01)
  'd-year': obs('d-year', { effectiveDateTime: '2012' }), // [2012-01-01, 2013-01-01)
  'd-old': obs('d-old', { effectiveDateTime: '1990-06-15' }),
  'd-zone': obs('d-zone', { effectiveDateTime: '2013-06-01T08:30:00+02:00' }), // 06:30:00Z
  'p-closed': obs('p-closed', { effectivePeriod: { start: '2013-01-10', end: '2013-01-20' } }), // [01-10, 01-21)
  'p-hours': obs('p-hours', { effectivePeriod: { start: '2013-02-01T11:00:00Z', end: '2013-02-01T13:00:00Z' } }),
  // R4's examples: "from 21-Jan 2013 onwards", "before and including 21-Jan 2013", "from 15-Mar 2013 onwards".
  'p-from-0121': obs('p-from-0121', { effectivePeriod: { start: '2013-01-21' } }), // [01-21, +inf)
  'p-until-0121': obs('p-until-0121', { effectivePeriod: { end: '2013-01-21' } }), // (-inf, 01-22)
  'p-from-0315': obs('p-from-0315', { effectivePeriod: { start: '2013-03-15' } }), // [03-15, +inf)
  'd-none': obs('d-none', {}),
};

function pat(key: string, birthDate?: string): Patient {
  return { resourceType: 'Patient', identifier: [{ system: 'urn:test:search:date', value: key }], ...(birthDate ? { birthDate } : {}) };
}

const PATIENTS: Record<string, Patient> = {
  'b-1950': pat('b-1950', '1950-04-02'),
  'b-1970': pat('b-1970', '1970'),
  'b-1970-06': pat('b-1970-06', '1970-06'),
  'b-1970-06-15': pat('b-1970-06-15', '1970-06-15'),
  'b-2001': pat('b-2001', '2001-12-31'),
  'b-none': pat('b-none'),
};

let server: TestServer;
let fx: Fixtures;
beforeAll(async () => {
  server = await startTestServer();
  fx = new Fixtures(server);
  await fx.load({ ...OBSERVATIONS, ...PATIENTS } as Record<string, Resource>);
});
afterAll(() => server.close());

function expectSearch(type: string): (query: string, expected: string[]) => Promise<void> {
  return async (query, expected) => {
    expect(await matchKeys(server, fx, `${type}?${query}`)).toEqual(sorted(expected));
  };
}

describe('eq (the default): the search range fully contains the target range', () => {
  test.each<[string, string[]]>([
    // R4: "eq2013-01-14: 2013-01-14T00:00 matches (obviously); 2013-01-14T10:00 matches;
    // 2013-01-15T00:00 does not match - it's not in the range".
    ['date=2013-01-14', ['d-day', 'd-noon']],
    ['date=eq2013-01-14', ['d-day', 'd-noon']],
    // A month: everything within January, but not Periods that run past it.
    ['date=2013-01', ['d-day', 'd-noon', 'd-next', 'p-closed']],
    ['date=2013', ['d-day', 'd-noon', 'd-next', 'd-month', 'd-zone', 'p-closed', 'p-hours']],
    ['date=2012', ['d-year']],
    ['date=1990-06', ['d-old']],
    ['date=2013-01-14T12:00Z', ['d-noon']], // a minute contains the one-second target; the day is wider
    ['date=2013-01-14T12:00:00Z', ['d-noon']],
    ['date=2013-06-01T06:30Z', ['d-zone']], // 08:30+02:00 is 06:30Z
    ['date=2013-06-01T08:30%2B02:00', ['d-zone']], // (%2B is "+")
    ['date=2013-06-01T08:30Z', []],
    ['date=2013-02-01', ['p-hours']], // a Period within the day
    ['date=2013-02-01T12:00Z', []], // the Period is wider than the minute
    ['date=2013-01-10,2013-01-14', ['d-day', 'd-noon']], // OR; p-closed is in neither day
  ])('Observation?%s', expectSearch('Observation'));
});

describe('ne: the search range does not fully contain the target range', () => {
  test.each<[string, string[]]>([
    // R4: "ne2013-01-14: 2013-01-15T00:00 matches - it's not in the range; 2013-01-14T00:00 does not
    // match - it's in the range". A resource with no date has no value to compare, so it is not returned.
    ['date=ne2013-01-14', ['d-next', 'd-month', 'd-year', 'd-old', 'd-zone', 'p-closed', 'p-hours', 'p-from-0121', 'p-until-0121', 'p-from-0315']],
    ['date=ne2013', ['d-year', 'd-old', 'p-from-0121', 'p-until-0121', 'p-from-0315']],
  ])('Observation?%s', expectSearch('Observation'));
});

describe('gt / lt: the target range goes beyond the end / start of the search range', () => {
  test.each<[string, string[]]>([
    // d-day and d-noon lie within 2013-01-14, so nothing of them is after it; open and long Periods reach past it.
    ['date=gt2013-01-14', ['d-next', 'd-month', 'd-zone', 'p-closed', 'p-hours', 'p-from-0121', 'p-until-0121', 'p-from-0315']],
    // R4: "gt2013-01-14T10:00: 2013-01-14 matches, because it includes the part of 14-Jan 2013 after 10am".
    ['date=gt2013-01-14T11:00Z', ['d-day', 'd-noon', 'd-next', 'd-month', 'd-zone', 'p-closed', 'p-hours', 'p-from-0121', 'p-until-0121', 'p-from-0315']],
    ['date=gt2013-03', ['d-zone', 'p-from-0121', 'p-from-0315']], // d-month ends with March
    ['date=gt2013-02-01T12:30Z', ['d-month', 'd-zone', 'p-hours', 'p-from-0121', 'p-from-0315']],
    ['date=lt2013-01-14', ['d-year', 'd-old', 'p-closed', 'p-until-0121']],
    // R4: "lt2013-01-14T10:00: 2013-01-14 matches, because it includes the part of 14-Jan 2013 before 10am".
    ['date=lt2013-01-14T13:00Z', ['d-day', 'd-noon', 'd-year', 'd-old', 'p-closed', 'p-until-0121']],
    ['date=lt2013', ['d-year', 'd-old', 'p-until-0121']],
  ])('Observation?%s', expectSearch('Observation'));
});

describe('ge / le: gt / lt, or fully contained', () => {
  test.each<[string, string[]]>([
    ['date=ge2013-01-14', ['d-day', 'd-noon', 'd-next', 'd-month', 'd-zone', 'p-closed', 'p-hours', 'p-from-0121', 'p-until-0121', 'p-from-0315']],
    // R4: "ge2013-03-14: "from 21-Jan 2013 onwards" is included because that period may include times after 14-Mar 2013".
    ['date=ge2013-03-14', ['d-month', 'd-zone', 'p-from-0121', 'p-from-0315']],
    ['date=le2013-01-14', ['d-day', 'd-noon', 'd-year', 'd-old', 'p-closed', 'p-until-0121']],
    // R4: "le2013-03-14: "from 21-Jan 2013 onwards" is included because that period may include times before 14-Mar 2013".
    ['date=le2013-03-14', ['d-day', 'd-noon', 'd-next', 'd-month', 'd-year', 'd-old', 'p-closed', 'p-hours', 'p-from-0121', 'p-until-0121']],
  ])('Observation?%s', expectSearch('Observation'));
});

describe('sa / eb: the target starts after / ends before the whole search range', () => {
  test.each<[string, string[]]>([
    ['date=sa2013-01-14', ['d-next', 'd-month', 'd-zone', 'p-hours', 'p-from-0121', 'p-from-0315']],
    // R4: "sa2013-03-14: "from 15-Mar 2013 onwards" is included because that period starts after
    // 14-Mar 2013; "from 21-Jan 2013 onwards" is not included because that period starts before
    // 14-Mar 2013; "before and including 21-Jan 2013" is not included".
    ['date=sa2013-03-14', ['d-zone', 'p-from-0315']],
    ['date=sa2013-02-01T10:30Z', ['d-month', 'd-zone', 'p-hours', 'p-from-0315']],
    ['date=sa2013-02-01T11:30Z', ['d-month', 'd-zone', 'p-from-0315']], // p-hours started at 11:00
    // R4: "eb2013-03-14: "from 15-Mar 2013 onwards" is not included [...]; "from 21-Jan 2013 onwards"
    // is not included because that period starts before 14-Mar 2013, but does not end before it;
    // "before and including 21-Jan 2013" is included because that period ends before 14-Mar 2013".
    ['date=eb2013-03-14', ['d-day', 'd-noon', 'd-next', 'd-year', 'd-old', 'p-closed', 'p-hours', 'p-until-0121']],
    ['date=eb2013-02-01T13:30Z', ['d-day', 'd-noon', 'd-next', 'd-year', 'd-old', 'p-closed', 'p-hours', 'p-until-0121']],
    ['date=eb2013-02-01T12:30Z', ['d-day', 'd-noon', 'd-next', 'd-year', 'd-old', 'p-closed', 'p-until-0121']], // p-hours ends at 13:00
  ])('Observation?%s', expectSearch('Observation'));
});

describe('ranges by AND', () => {
  test.each<[string, string[]]>([
    ['date=ge2013-01-01&date=lt2013-02', ['d-day', 'd-noon', 'd-next', 'p-closed', 'p-from-0121', 'p-until-0121']],
    ['date=sa2013-01-13&date=eb2013-01-16', ['d-day', 'd-noon', 'd-next']],
    ['date=2013-01&date=2013-01-14', ['d-day', 'd-noon']],
  ])('Observation?%s', expectSearch('Observation'));
});

describe('ap: overlapping values always match; how far "approximately" reaches is the server\'s choice', () => {
  // R4: "ap2013-03-14: 14-Mar 2013 is included - as it exactly matches [...] 15-Jun 2015 is not
  // included - as it is not near 14-Mar 2013. Note that the exact value here is at the discretion of
  // the system". The recommended reach is 10% of the gap between now and the date (about 14 months here).
  test.each<[string, string[], string[]]>([
    ['date=ap2013-03-14', ['d-month', 'p-from-0121'], ['d-old']],
    ['date=ap1990-06-15', ['d-old'], ['d-day', 'd-noon', 'd-next', 'd-month', 'd-zone', 'p-closed', 'p-hours', 'p-from-0315']],
  ])('Observation?%s includes %j, excludes %j', async (query, included, excluded) => {
    const keys = await matchKeys(server, fx, `Observation?${query}`);
    expect(keys).toEqual(expect.arrayContaining(included));
    for (const k of excluded) {
      expect(keys).not.toContain(k);
    }
    expect(keys).not.toContain('d-none');
  });
});

describe(':missing', () => {
  test.each<[string, string[]]>([
    ['date:missing=true', ['d-none']],
    ['date:missing=false', Object.keys(OBSERVATIONS).filter((k) => k !== 'd-none')],
  ])('Observation?%s', expectSearch('Observation'));
});

describe('date (Patient.birthDate) with partial dates', () => {
  // "The range of the value is the day, month, or year as specified" - for the stored value too:
  // birthDate 1970 is all of 1970, so it is not within 1970-06-15, but reaches before and after it.
  test.each<[string, string[]]>([
    ['birthdate=1970', ['b-1970', 'b-1970-06', 'b-1970-06-15']],
    ['birthdate=1970-06', ['b-1970-06', 'b-1970-06-15']],
    ['birthdate=1970-06-15', ['b-1970-06-15']],
    ['birthdate=eq1950-04-02', ['b-1950']],
    ['birthdate=1950-04-02,2001-12-31', ['b-1950', 'b-2001']],
    ['birthdate=ne1970-06-15', ['b-1950', 'b-1970', 'b-1970-06', 'b-2001']],
    ['birthdate=gt1970-06-15', ['b-1970', 'b-1970-06', 'b-2001']],
    ['birthdate=lt1970-06-15', ['b-1950', 'b-1970', 'b-1970-06']],
    ['birthdate=ge1970-06-15', ['b-1970', 'b-1970-06', 'b-1970-06-15', 'b-2001']],
    ['birthdate=le1970-06-15', ['b-1950', 'b-1970', 'b-1970-06', 'b-1970-06-15']],
    ['birthdate=sa1970-06-15', ['b-2001']],
    ['birthdate=eb1970-06-15', ['b-1950']],
    ['birthdate=gt1970', ['b-2001']],
    ['birthdate=lt1970', ['b-1950']],
    ['birthdate=sa1970', ['b-2001']],
    ['birthdate=eb1970', ['b-1950']],
    ['birthdate=ge1970&birthdate=lt1971', ['b-1970', 'b-1970-06', 'b-1970-06-15']],
    ['birthdate=gt2001-12-31', []],
    ['birthdate:missing=true', ['b-none']],
    ['birthdate:missing=false', ['b-1950', 'b-1970', 'b-1970-06', 'b-1970-06-15', 'b-2001']],
  ])('Patient?%s', expectSearch('Patient'));
});

describe('_lastUpdated', () => {
  // R4: "GET [base]/Observation?_lastUpdated=gt2010-10-01 — This search finds any observations changed
  // since 1-Oct 2010." Values are seconds, with at least a second between each write and the boundary.
  test('gt / lt / ge a point in time between two writes', async () => {
    const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
    const device = (key: string): Device => ({ resourceType: 'Device', identifier: [{ system: 'urn:test:search:date', value: key }] });
    await fx.create('dev-early', device('dev-early'));
    await sleep(1100);
    const boundary = new Date(Math.floor(Date.now() / 1000) * 1000).toISOString().replace('.000Z', 'Z'); // yyyy-mm-ddThh:mm:ssZ
    await sleep(1100 + 1000 - (Date.now() % 1000)); // past the end of the boundary second
    await fx.create('dev-late', device('dev-late'));
    const devices = expectSearch('Device');
    await devices(`_lastUpdated=gt${boundary}`, ['dev-late']);
    await devices(`_lastUpdated=lt${boundary}`, ['dev-early']);
    await devices(`_lastUpdated=ge${boundary}`, ['dev-late']);
    await devices(`_lastUpdated=le${boundary}`, ['dev-early']);
    await devices('_lastUpdated=gt2020-01-01', ['dev-early', 'dev-late']);
    await devices('_lastUpdated=lt2020-01-01', []);
    await devices(`_lastUpdated=ge2020-01-01&_lastUpdated=lt${boundary}`, ['dev-early']);
  });
});

describe('_lastUpdated against the range rules', () => {
  // `_lastUpdated` is answered from the stored write time (an instant to the millisecond, range
  // [t, t + 1 ms)), not from index rows: every prefix, against search values of millisecond and
  // second precision around a write, must give what the range rules above give.
  const SYSTEM = 'urn:test:search:last-updated';
  const PREFIXES = ['eq', 'ne', 'gt', 'lt', 'ge', 'le', 'sa', 'eb', 'ap'] as const;
  type Range = [number, number];
  const holds: Record<(typeof PREFIXES)[number], (s: Range, t: Range) => boolean> = {
    eq: (s, t) => t[0] >= s[0] && t[1] <= s[1],
    ne: (s, t) => !(t[0] >= s[0] && t[1] <= s[1]),
    gt: (s, t) => t[1] > s[1],
    lt: (s, t) => t[0] < s[0],
    ge: (s, t) => t[1] > s[1] || (t[0] >= s[0] && t[1] <= s[1]),
    le: (s, t) => t[0] < s[0] || (t[0] >= s[0] && t[1] <= s[1]),
    sa: (s, t) => t[0] >= s[1],
    eb: (s, t) => t[1] <= s[0],
    ap: (s, t) => t[0] < s[1] && t[1] > s[0],
  };

  test('every prefix at millisecond and second precision', async () => {
    const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
    for (const key of ['lu-a', 'lu-b', 'lu-c']) {
      await fx.create(key, { resourceType: 'Device', identifier: [{ system: SYSTEM, value: key }] } as Device);
      await sleep(3);
    }
    const found = await server.request().get(`/Device?identifier=${encodeURIComponent(SYSTEM + '|')}&_count=10`);
    expect(found.status).toBe(200);
    const written = new Map<string, number>(
      ((found.body as { entry?: { resource: Device }[] }).entry ?? []).map((e) => [e.resource.identifier?.[0].value as string, Date.parse(e.resource.meta?.lastUpdated as string)]),
    );
    expect([...written.keys()].sort()).toEqual(['lu-a', 'lu-b', 'lu-c']);
    const t = written.get('lu-b') as number;
    const iso = (ms: number): string => new Date(ms).toISOString();
    const second = Math.floor(t / 1000) * 1000;
    const values: [string, Range][] = [
      [iso(t), [t, t + 1]],
      [iso(t - 1), [t - 1, t]],
      [iso(t + 1), [t + 1, t + 2]],
      [iso(second).replace('.000Z', 'Z'), [second, second + 1000]],
    ];
    const mismatches: string[] = [];
    for (const [value, range] of values) {
      for (const prefix of PREFIXES) {
        const expected = [...written].filter(([, at]) => holds[prefix](range, [at, at + 1])).map(([key]) => key);
        const actual = await matchKeys(server, fx, `Device?identifier=${SYSTEM}|&_lastUpdated=${prefix}${value}`);
        if (JSON.stringify(actual) !== JSON.stringify(sorted(expected))) {
          mismatches.push(`_lastUpdated=${prefix}${value}: got ${JSON.stringify(actual)}, expected ${JSON.stringify(sorted(expected))}`);
        }
      }
    }
    expect(mismatches).toEqual([]);
    // Every resource has a last-updated time.
    expect(await matchKeys(server, fx, `Device?identifier=${SYSTEM}|&_lastUpdated:missing=true`)).toEqual([]);
    expect(await matchKeys(server, fx, `Device?identifier=${SYSTEM}|&_lastUpdated:missing=false`)).toEqual(['lu-a', 'lu-b', 'lu-c']);
  });
});
