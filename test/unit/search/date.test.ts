import { dateRange, formatInstant } from '../../../src/search/extract';
import { bloodPressure, glucose, patient } from './fixtures';
import { extract, rowsOf } from './helpers';

function range(text: string): [string, string] | undefined {
  const r = dateRange(text);
  return r && [formatInstant(r.start), formatInstant(r.end)];
}

describe('dateRange: a value covers [start, end) by its precision', () => {
  test.each([
    ['2020', '2020-01-01T00:00:00.000Z', '2021-01-01T00:00:00.000Z'],
    ['2020-03', '2020-03-01T00:00:00.000Z', '2020-04-01T00:00:00.000Z'],
    ['2020-02', '2020-02-01T00:00:00.000Z', '2020-03-01T00:00:00.000Z'],
    ['2020-12', '2020-12-01T00:00:00.000Z', '2021-01-01T00:00:00.000Z'],
    ['2020-03-04', '2020-03-04T00:00:00.000Z', '2020-03-05T00:00:00.000Z'],
    ['2020-02-29', '2020-02-29T00:00:00.000Z', '2020-03-01T00:00:00.000Z'],
    ['2020-12-31', '2020-12-31T00:00:00.000Z', '2021-01-01T00:00:00.000Z'],
    ['2020-03-04T10:00:00Z', '2020-03-04T10:00:00.000Z', '2020-03-04T10:00:01.000Z'],
    ['2020-03-04T10:00:00+02:00', '2020-03-04T08:00:00.000Z', '2020-03-04T08:00:01.000Z'],
    ['2020-03-04T10:00:00-05:30', '2020-03-04T15:30:00.000Z', '2020-03-04T15:30:01.000Z'],
    ['2020-03-04T23:30:00-01:00', '2020-03-05T00:30:00.000Z', '2020-03-05T00:30:01.000Z'],
    ['2020-01-01T00:30:00+01:00', '2019-12-31T23:30:00.000Z', '2019-12-31T23:30:01.000Z'],
    ['2020-03-04T10:00:00+14:00', '2020-03-03T20:00:00.000Z', '2020-03-03T20:00:01.000Z'],
    ['2020-03-04T10:00:00.5Z', '2020-03-04T10:00:00.500Z', '2020-03-04T10:00:00.600Z'],
    ['2020-03-04T10:00:00.25Z', '2020-03-04T10:00:00.250Z', '2020-03-04T10:00:00.260Z'],
    ['2020-03-04T10:00:00.123Z', '2020-03-04T10:00:00.123Z', '2020-03-04T10:00:00.124Z'],
    ['2020-03-04T10:00:00.123456+00:00', '2020-03-04T10:00:00.123Z', '2020-03-04T10:00:00.124Z'],
    // Leniencies: no zone on a time -> UTC; no seconds -> the minute.
    ['2020-03-04T10:00:00', '2020-03-04T10:00:00.000Z', '2020-03-04T10:00:01.000Z'],
    ['2020-03-04T10:00', '2020-03-04T10:00:00.000Z', '2020-03-04T10:01:00.000Z'],
    ['2016-12-31T23:59:60Z', '2016-12-31T23:59:59.999Z', '2017-01-01T00:00:00.000Z'],
    ['0050', '0050-01-01T00:00:00.000Z', '0051-01-01T00:00:00.000Z'],
    ['0099-12', '0099-12-01T00:00:00.000Z', '0100-01-01T00:00:00.000Z'],
    ['0004-02-29', '0004-02-29T00:00:00.000Z', '0004-03-01T00:00:00.000Z'],
    ['2000-02-29', '2000-02-29T00:00:00.000Z', '2000-03-01T00:00:00.000Z'],
    ['9999', '9999-01-01T00:00:00.000Z', 'infinity'],
  ])('%s -> [%s, %s)', (text, start, end) => {
    expect(range(text)).toEqual([start, end]);
  });

  test.each(['2020-13', '2020-00', '2021-02-29', '1900-02-29', '2020-06-31', '2020-04-31', '2020-03-04T24:00:00Z', '2020-03-04T10:61:00Z', '20', 'yesterday', '2020-3-4', '2020-03-04T10:00:00+15:00', ''])(
    '%j is not a date',
    (text) => {
      expect(dateRange(text)).toBeUndefined();
    },
  );

  test('a day-precision search range contains the second-precision value (eq semantics)', () => {
    const day = dateRange('2020-03-04')!;
    const stored = dateRange('2020-03-04T23:59:59-00:00')!;
    expect(stored.start >= day.start && stored.end <= day.end).toBe(true);
    // ...but not when the zone moves it to the next UTC day.
    const shifted = dateRange('2020-03-04T23:59:59-02:00')!;
    expect(shifted.start >= day.end).toBe(true);
  });
});

describe('date parameters', () => {
  test.each([
    ['date', '2012-09-17T00:00:00.000Z', '2012-09-18T00:00:00.000Z'],
    ['_lastUpdated', '2024-05-06T07:08:09.123Z', '2024-05-06T07:08:09.124Z'],
  ])('Observation %s', (code, start, end) => {
    expect(rowsOf(extract(bloodPressure), 'date', code)).toEqual([{ start, end }]);
  });

  test('birthdate (date)', () => {
    expect(rowsOf(extract(patient), 'date', 'birthdate')).toEqual([{ start: '1974-12-25T00:00:00.000Z', end: '1974-12-26T00:00:00.000Z' }]);
  });

  test('Period with an open end -> infinity', () => {
    expect(rowsOf(extract(glucose), 'date', 'date')).toEqual([{ start: '2013-04-02T08:30:10.000Z', end: 'infinity' }]);
  });

  test.each([
    [{ start: '2020-01-01', end: '2020-01-31' }, '2020-01-01T00:00:00.000Z', '2020-02-01T00:00:00.000Z'],
    [{ start: '2020-01-01T10:00:00+01:00', end: '2020-01-01T10:30:00+01:00' }, '2020-01-01T09:00:00.000Z', '2020-01-01T09:30:01.000Z'],
    [{ end: '2020' }, '-infinity', '2021-01-01T00:00:00.000Z'],
    [{ start: '2020-06' }, '2020-06-01T00:00:00.000Z', 'infinity'],
  ])('Period %j', (period, start, end) => {
    const enc = extract({ resourceType: 'Encounter', status: 'finished', class: { code: 'AMB' }, period });
    expect(rowsOf(enc, 'date', 'date')).toEqual([{ start, end }]);
  });

  test('a Period without start or end, or with an invalid date, gives no row', () => {
    const empty = extract({ resourceType: 'Encounter', period: { extension: [{ url: 'http://x', valueString: 'y' }] } });
    expect(rowsOf(empty, 'date', 'date')).toEqual([]);
    const bad = extract({ resourceType: 'Encounter', period: { start: 'last week' } });
    expect(rowsOf(bad, 'date', 'date')).toEqual([]);
  });

  test('Timing: the outer limits of events and bounds', () => {
    const obs = extract({
      resourceType: 'Observation',
      status: 'final',
      code: { text: 'x' },
      effectiveTiming: {
        event: ['2020-01-05T10:00:00Z', '2020-01-02'],
        repeat: { boundsPeriod: { start: '2020-01-03', end: '2020-02-10' }, frequency: 2, period: 1, periodUnit: 'd' },
      },
    });
    expect(rowsOf(obs, 'date', 'date')).toEqual([{ start: '2020-01-02T00:00:00.000Z', end: '2020-02-11T00:00:00.000Z' }]);
  });

  test('Timing with open bounds, and with only a schedule', () => {
    const open = extract({
      resourceType: 'ServiceRequest',
      status: 'active',
      intent: 'order',
      subject: { reference: 'Patient/1' },
      occurrenceTiming: { repeat: { boundsPeriod: { start: '2021-03-01' }, frequency: 1, period: 1, periodUnit: 'wk' } },
    });
    expect(rowsOf(open, 'date', 'occurrence')).toEqual([{ start: '2021-03-01T00:00:00.000Z', end: 'infinity' }]);
    const scheduleOnly = extract({
      resourceType: 'ServiceRequest',
      occurrenceTiming: { repeat: { frequency: 1, period: 1, periodUnit: 'd' } },
    });
    expect(rowsOf(scheduleOnly, 'date', 'occurrence')).toEqual([]);
  });

  test.each([
    ['valueDateTime', '2020-05', '2020-05-01T00:00:00.000Z', '2020-06-01T00:00:00.000Z'],
    ['valuePeriod', { start: '2020-05-01', end: '2020-05-02' }, '2020-05-01T00:00:00.000Z', '2020-05-03T00:00:00.000Z'],
  ])('choice type Observation.%s -> value-date', (field, value, start, end) => {
    const obs = extract({ resourceType: 'Observation', status: 'final', code: { text: 'x' }, [field]: value });
    expect(rowsOf(obs, 'date', 'value-date')).toEqual([{ start, end }]);
  });

  test('choice types that are not dates are ignored (Condition onsetString vs onsetDateTime)', () => {
    const s = extract({ resourceType: 'Condition', subject: { reference: 'Patient/1' }, onsetString: 'childhood' });
    expect(rowsOf(s, 'date', 'onset-date')).toEqual([]);
    expect(rowsOf(s, 'string', 'onset-info')).toEqual([{ value: 'childhood', normalized: 'childhood' }]);
    const d = extract({ resourceType: 'Condition', subject: { reference: 'Patient/1' }, onsetDateTime: '2019-07-14T08:00:00+02:00' });
    expect(rowsOf(d, 'date', 'onset-date')).toEqual([{ start: '2019-07-14T06:00:00.000Z', end: '2019-07-14T06:00:01.000Z' }]);
  });

  test('Patient death-date is (deceased as dateTime): none for deceasedBoolean', () => {
    expect(rowsOf(extract({ resourceType: 'Patient', deceasedBoolean: true }), 'date', 'death-date')).toEqual([]);
    expect(rowsOf(extract({ resourceType: 'Patient', deceasedDateTime: '2021' }), 'date', 'death-date')).toEqual([
      { start: '2021-01-01T00:00:00.000Z', end: '2022-01-01T00:00:00.000Z' },
    ]);
  });
});
