import type { Goal, GoalTarget, Observation, Quantity } from '@medplum/fhirtypes';
import { combine, convert, distance, goalStatus, intervalOf, managed, meets, readingsFor, targetStatus, type Interval, type Reading } from './rules';

const UCUM = 'http://unitsofmeasure.org';
const LOINC = 'http://loinc.org';
const NOW = new Date('2026-11-30T12:00:00Z');
const q = (value: number, code: string, comparator?: Quantity['comparator']): Quantity => ({ value, system: UCUM, code, ...(comparator ? { comparator } : {}) });
const below = (v: number): Interval => intervalOf({ detailQuantity: q(v, 'mm[Hg]', '<') }) as Interval;
const readings = (...values: number[]): Reading[] => values.map((value, k) => ({ id: `r${k}`, at: k * 86_400_000, value }));

describe('targets', () => {
  test.each([
    [{ detailQuantity: q(130, 'mm[Hg]', '<') }, [[129.9, true], [130, false]]],
    [{ detailQuantity: q(130, 'mm[Hg]', '<=') }, [[130, true], [130.1, false]]],
    [{ detailQuantity: q(7000, '/d', '>=') }, [[7000, true], [6999, false]]],
    [{ detailQuantity: q(7, 'h', '>') }, [[7, false], [7.1, true]]],
    [{ detailQuantity: q(80, 'kg') }, [[79.5, true], [80.49, true], [80.5, false], [79.49, false]]],
    [{ detailQuantity: q(7.5, '%') }, [[7.45, true], [7.549, true], [7.55, false]]],
    [{ detailRange: { low: q(110, 'mm[Hg]'), high: q(130, 'mm[Hg]') } }, [[110, true], [130, true], [109.9, false], [130.1, false]]],
    [{ detailRange: { high: q(5, '{score}') } }, [[5, true], [6, false]]],
  ] as [GoalTarget, [number, boolean][]][])('%j', (target, cases) => {
    const i = intervalOf(target) as Interval;
    for (const [value, expected] of cases) {
      expect([value, meets(value, i)]).toEqual([value, expected]);
    }
  });

  test('not a quantity or range, or a comparator that is not a bound: not tracked', () => {
    expect(intervalOf({ detailCodeableConcept: { text: 'feel better' } })).toBeUndefined();
    expect(intervalOf({ detailQuantity: { ...q(5, 'kg'), comparator: 'ad' } as unknown as Quantity })).toBeUndefined(); // R5's 'sufficient to achieve'
    expect(intervalOf({ detailRange: {} })).toBeUndefined();
  });

  test('distance: 0 inside, else beyond the nearer bound', () => {
    const range = intervalOf({ detailRange: { low: q(110, 'mm[Hg]'), high: q(130, 'mm[Hg]') } }) as Interval;
    expect([100, 120, 145].map((v) => distance(v, range))).toEqual([10, 0, 15]);
    expect(distance(140.3, below(130))).toBe(10.3);
  });

  test('units convert within a dimension only', () => {
    expect(convert(180, q(0, '[lb_av]'), q(0, 'kg'))).toBeCloseTo(81.6466, 4);
    expect(convert(16, q(0, 'kPa'), q(0, 'mm[Hg]'))).toBeCloseTo(120.01, 2);
    expect(convert(5.5, q(0, 'mmol/L'), q(0, 'mg/dL'))).toBeCloseTo(99.09, 2);
    expect(convert(450, q(0, 'min'), q(0, 'h'))).toBe(7.5);
    expect(convert(80, q(0, 'kg'), q(0, 'mm[Hg]'))).toBeUndefined();
    expect(convert(80, { value: 80 }, q(0, 'kg'))).toBe(80);
  });
});

describe('the status of one target (rules.ts header, rule by rule)', () => {
  const i = below(130);
  test('1: no reading: in-progress', () => {
    expect(targetStatus(i, [])).toEqual({ status: 'in-progress', why: 'no reading yet' });
  });
  test('2: the latest meets the target: achieved (even the first reading, whatever came before)', () => {
    expect(targetStatus(i, readings(125)).status).toBe('achieved');
    expect(targetStatus(i, readings(150, 160, 170, 128)).status).toBe('achieved');
  });
  test('3: the one before met it, the latest does not: worsening', () => {
    expect(targetStatus(i, readings(125, 131))).toEqual({ status: 'worsening', why: 'the latest reading (131) fell off the target the one before met' });
  });
  test('4: fewer than N readings: in-progress', () => {
    expect(targetStatus(i, readings(150))).toMatchObject({ status: 'in-progress', why: '1 reading(s); a trend needs 3' });
    expect(targetStatus(i, readings(150, 140)).status).toBe('in-progress');
  });
  test('5: each of the last N nearer than the one before: improving', () => {
    expect(targetStatus(i, readings(150, 145, 140)).status).toBe('improving');
    expect(targetStatus(i, readings(120, 160, 150, 145, 140)).status).toBe('improving'); // only the last N count
  });
  test('6: each of the last N farther than the one before: worsening', () => {
    expect(targetStatus(i, readings(140, 145, 150)).status).toBe('worsening');
  });
  test('7: otherwise: in-progress', () => {
    expect(targetStatus(i, readings(150, 140, 145)).status).toBe('in-progress');
    expect(targetStatus(i, readings(150, 150, 140)).status).toBe('in-progress'); // a flat step is not a trend
  });
  test('N is configurable (at least 2)', () => {
    expect(targetStatus(i, readings(150, 140), 2).status).toBe('improving');
    expect(targetStatus(i, readings(150, 140, 135, 132), 4).status).toBe('improving');
    expect(targetStatus(i, readings(150, 140), 1).status).toBe('improving');
  });
  test('for a lower bound, nearer means higher', () => {
    const steps = intervalOf({ detailQuantity: q(7000, '/d', '>=') }) as Interval;
    expect(targetStatus(steps, readings(3000, 4000, 5000)).status).toBe('improving');
    expect(targetStatus(steps, readings(5000, 4000, 3000)).status).toBe('worsening');
  });
  test('for a range, both sides approach it', () => {
    const range = intervalOf({ detailRange: { low: q(110, 'mm[Hg]'), high: q(130, 'mm[Hg]') } }) as Interval;
    expect(targetStatus(range, readings(150, 100, 135)).status).toBe('improving'); // 20, 10, 5 away
  });

  test('as transitions over a series of readings', () => {
    const series = [150, 145, 140, 128, 127, 133, 131, 132, 136, 140];
    const statuses = series.map((_, k) => targetStatus(i, readings(...series.slice(0, k + 1))).status);
    expect(statuses).toEqual([
      'in-progress', // 150: one reading
      'in-progress', // 145: two
      'improving', // 140: 20, 15, 10 away
      'achieved', // 128
      'achieved', // 127
      'worsening', // 133: fell off
      'in-progress', // 131: 3, 1 after 0 (not steady)
      'in-progress', // 132: 3, 1, 2
      'worsening', // 136: 1, 2, 6
      'worsening', // 140: 2, 6, 10
    ]);
  });
});

describe('readings and goals', () => {
  const goal = (targets: GoalTarget[], extra: Partial<Goal> = {}): Goal => ({
    resourceType: 'Goal',
    id: 'g1',
    lifecycleStatus: 'active',
    description: { text: 'goal' },
    subject: { reference: 'Patient/p1' },
    target: targets,
    ...extra,
  });
  const systolic: GoalTarget = { measure: { coding: [{ system: LOINC, code: '8480-6' }] }, detailQuantity: q(130, 'mm[Hg]', '<'), dueDate: '2027-01-01' };
  const weight: GoalTarget = { measure: { coding: [{ system: LOINC, code: '29463-7' }] }, detailQuantity: q(80, 'kg', '<='), dueDate: '2027-01-01' };
  const bp = (id: string, at: string, sys: number, extra: Partial<Observation> = {}): Observation => ({
    resourceType: 'Observation',
    id,
    status: 'final',
    code: { coding: [{ system: LOINC, code: '85354-9' }] },
    subject: { reference: 'Patient/p1' },
    performer: [{ reference: 'Patient/p1' }],
    effectiveDateTime: at,
    component: [
      { code: { coding: [{ system: LOINC, code: '8480-6' }] }, valueQuantity: q(sys, 'mm[Hg]') },
      { code: { coding: [{ system: LOINC, code: '8462-4' }] }, valueQuantity: q(80, 'mm[Hg]') },
    ],
    ...extra,
  });
  const wt = (id: string, at: string, value: number, code = 'kg'): Observation => ({
    resourceType: 'Observation',
    id,
    status: 'final',
    code: { coding: [{ system: LOINC, code: '29463-7' }] },
    subject: { reference: 'Patient/p1' },
    performer: [{ reference: 'RelatedPerson/r1' }],
    effectiveDateTime: at,
    valueQuantity: q(value, code),
  });

  test('a component of a panel is a reading of its code; only ODL results in the goal period up to now count', () => {
    const g = goal([systolic], { startDate: '2026-11-01' });
    const obs = [
      bp('b', '2026-11-10T08:00:00Z', 140),
      bp('a', '2026-11-05T08:00:00Z', 150),
      bp('before-start', '2026-10-30T08:00:00Z', 120),
      bp('clinic', '2026-11-11T08:00:00Z', 120, { performer: [{ reference: 'Practitioner/x' }] }),
      bp('prelim', '2026-11-12T08:00:00Z', 120, { status: 'preliminary' }),
      bp('future', '2026-12-01T08:00:00Z', 120),
      bp('c', '2026-11-15T08:00:00Z', 135),
    ];
    expect(readingsFor(g, systolic, obs, NOW).map((r) => [r.id, r.value])).toEqual([
      ['a', 150],
      ['b', 140],
      ['c', 135],
    ]);
    expect(goalStatus(g, obs, NOW)).toEqual({ status: 'improving', why: ['8480-6: improving (each of the last 3 readings is nearer the target)'] });
  });

  test('readings in [lb_av] count towards a goal in kg', () => {
    const g = goal([weight]);
    expect(goalStatus(g, [wt('a', '2026-11-01T08:00:00Z', 85), wt('b', '2026-11-02T08:00:00Z', 176, '[lb_av]')], NOW).status).toBe('achieved'); // 79.8 kg
  });

  test('several targets: worsening if any is, achieved if all are, improving if all improve or are achieved', () => {
    expect(combine(['achieved', 'worsening'])).toBe('worsening');
    expect(combine(['achieved', 'achieved'])).toBe('achieved');
    expect(combine(['achieved', 'improving'])).toBe('improving');
    expect(combine(['achieved', 'in-progress'])).toBe('in-progress');
    expect(combine([])).toBeUndefined();
    const g = goal([systolic, weight]);
    expect(goalStatus(g, [bp('a', '2026-11-01T08:00:00Z', 125), wt('w', '2026-11-01T08:00:00Z', 79)], NOW).status).toBe('achieved');
    expect(goalStatus(g, [bp('a', '2026-11-01T08:00:00Z', 125)], NOW).status).toBe('in-progress'); // no weight yet
  });

  test('a goal without a tracked target has no status from the bot', () => {
    expect(goalStatus(goal([{ measure: { text: 'walk more' }, detailQuantity: q(1, '/d', '>=') }]), [], NOW).status).toBeUndefined();
  });

  test('the bot sets the status when there is none or it is one it sets; a clinician’s other code is left alone', () => {
    const achievement = (code: string) => ({ achievementStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/goal-achievement', code }] } });
    expect(managed(goal([systolic]))).toBe(true);
    expect(managed(goal([systolic], achievement('worsening')))).toBe(true);
    expect(managed(goal([systolic], achievement('not-attainable')))).toBe(false);
    expect(managed(goal([systolic], { achievementStatus: { text: 'doing fine' } }))).toBe(false);
  });
});
