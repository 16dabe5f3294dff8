/**
 * The billing rules of ccm-domain.md section 5, table-driven: every worked case, each exclusion,
 * month boundaries, inpatient days, consent (start and revocation) and mixed staff/practitioner time.
 */
import { billMonth, DEFAULT_BILLING_POLICY, type MonthFacts, type PerformerKind, type PlanFacts, type TimeEntry } from '../../../src/ccm/billing';

const MONTH = '2026-03';
const PLAN: PlanFacts = { id: 'plan', program: 'ccm', status: 'active', author: 'Practitioner/dr', period: { start: '2026-01-01' } };
const COMPLEX: PlanFacts = { ...PLAN, program: 'complex-ccm' };
const PCM: PlanFacts = { ...PLAN, program: 'pcm' };

let n = 0;
/** An entry of `minutes` starting at `start` (default: 10:00 on the 10th). */
function entry(minutes: number, kind: PerformerKind | undefined = 'clinical-staff', start = '2026-03-10T10:00:00Z', plan = 'CarePlan/plan'): TimeEntry {
  const s = Date.parse(start);
  return { id: `Task/t${++n}`, start, end: new Date(s + minutes * 60_000).toISOString(), kind, plan };
}

function facts(entries: TimeEntry[], fields: Partial<MonthFacts> = {}): MonthFacts {
  return { patient: 'p', month: MONTH, entries, plans: [PLAN], consents: [{ start: '2026-01-01' }], eligible: true, inpatient: [], services: [], ...fields };
}

const codes = (f: MonthFacts, policy = DEFAULT_BILLING_POLICY): string => {
  const r = billMonth(f, policy);
  return r.lines.length ? r.lines.map((l) => (l.units > 1 ? `${l.code}x${l.units}` : l.code)).join(' + ') : `none (${r.skipped?.reason as string})`;
};

describe('worked cases of section 5', () => {
  test.each([
    [19, PLAN, 'none (below-threshold)'],
    [20, PLAN, '99490'],
    [39, PLAN, '99490'],
    [40, PLAN, '99490 + 99439'],
    [59, PLAN, '99490 + 99439'],
    [60, PLAN, '99490 + 99439x2'],
    [120, PLAN, '99490 + 99439x2'], // at most two 99439
    [59, COMPLEX, '99490 + 99439'], // complex month below 60: falls back to non-complex
    [60, COMPLEX, '99487'],
    [89, COMPLEX, '99487'],
    [90, COMPLEX, '99487 + 99489'],
    [120, COMPLEX, '99487 + 99489x2'],
    [150, COMPLEX, '99487 + 99489x3'], // no cap on 99489 (policy)
  ])('clinical staff %i min, %o -> %s', (minutes, plan, expected) => {
    // Split over entries of at most 30 minutes on different days, as staff log them.
    const entries: TimeEntry[] = [];
    for (let left = minutes, day = 2; left > 0; left -= 30, day++) {
      entries.push(entry(Math.min(30, left), 'clinical-staff', `2026-03-${String(day).padStart(2, '0')}T09:00:00Z`));
    }
    expect(codes(facts(entries, { plans: [plan] }))).toBe(expected);
  });

  test('amounts come from the fee schedule; units multiply', () => {
    const r = billMonth(facts([entry(60)]));
    expect(r.lines).toEqual([
      { code: '99490', units: 1, minutes: 60, amount: 66.13 },
      { code: '99439', units: 2, minutes: 60, amount: 94.86 },
    ]);
  });

  test('add-ons need full increments: 39 minutes 59 seconds is 39 minutes', () => {
    const e = entry(39);
    e.end = new Date(Date.parse(e.end) + 59_000).toISOString();
    expect(codes(facts([e]))).toBe('99490');
  });
});

describe('exclusions in one patient-month', () => {
  test.each(['G0181', 'G0182', '90951', '90960', '90970', 'G0556', 'G0557', 'G0558'])('%s billed in the month excludes CCM', (code) => {
    const r = billMonth(facts([entry(45)], { services: [{ code, source: 'ChargeItem/x' }] }));
    expect(r.skipped?.reason).toBe('excluded-service');
    expect(r.skipped?.text).toContain(code);
  });

  test.each(['90950', '90971', '99495', '99496', '99453', '99457', '99458'])('%s does not exclude CCM (TCM and RPM may be billed in the same month)', (code) => {
    expect(codes(facts([entry(45)], { services: [{ code, source: 'ChargeItem/x', performer: 'Practitioner/other' }] }))).toBe('99490 + 99439');
  });

  test('CCM already billed by another practitioner for the month: nothing; by the same practitioner (a rerun): billed', () => {
    expect(codes(facts([entry(45)], { services: [{ code: '99490', performer: 'Practitioner/other', source: 'ChargeItem/x' }] }))).toBe('none (another-practitioner)');
    expect(codes(facts([entry(45)], { services: [{ code: '99490', performer: 'Practitioner/dr', source: 'ChargeItem/x' }] }))).toBe('99490 + 99439');
  });

  test('time counted toward RPM or TCM (an entry not based on a CCM plan) does not count for CCM', () => {
    const r = billMonth(facts([entry(30, 'clinical-staff', '2026-03-05T10:00:00Z', 'ServiceRequest/rpm'), entry(15)]));
    expect(r.skipped?.reason).toBe('below-threshold');
    expect(r.countedMinutes.staff).toBe(15);
    expect(r.notCounted[0].reason).toContain('not based on a CCM plan');
  });
});

describe('minutes that do not count', () => {
  test('non-clinical staff time never counts; an entry without a performer kind does not either', () => {
    const r = billMonth(facts([entry(40, 'non-clinical-staff'), { ...entry(40), kind: undefined }]));
    expect(r.skipped?.reason).toBe('time-non-countable');
    expect(r.skipped?.text).toContain('non-clinical staff time never counts');
    expect(r.loggedMinutes).toBe(80);
  });

  test('inpatient days: minutes during an inpatient or SNF stay are taken out', () => {
    const stay = { start: '2026-03-10T10:15:00Z', end: '2026-03-12' };
    const r = billMonth(facts([entry(30), entry(20, 'clinical-staff', '2026-03-20T10:00:00Z')], { inpatient: [stay] }));
    expect(r.countedMinutes.staff).toBe(35); // 15 of the first entry + 20
    expect(codes(facts([entry(30), entry(20, 'clinical-staff', '2026-03-20T10:00:00Z')], { inpatient: [stay] }))).toBe('99490');
    expect(codes(facts([entry(30)], { inpatient: [{ start: '2026-03-09', end: '2026-03-11' }] }))).toBe('none (time-non-countable)');
  });

  test('an entry over 24 hours does not count', () => {
    expect(billMonth(facts([entry(24 * 60 + 1)])).countedMinutes.staff).toBe(0);
  });
});

describe('month boundaries', () => {
  test('an entry across midnight at the end of a month counts in each month for its own minutes', () => {
    const across = entry(30, 'clinical-staff', '2026-03-31T23:50:00Z');
    expect(billMonth(facts([across, entry(10)])).countedMinutes.staff).toBe(20);
    expect(billMonth(facts([across, entry(10)], { month: '2026-04' })).countedMinutes.staff).toBe(20); // the 10-minute entry is in March
  });

  test('no carry-over: 15 minutes in each of two months bill nothing in either', () => {
    const march = entry(15, 'clinical-staff', '2026-03-30T10:00:00Z');
    const april = entry(15, 'clinical-staff', '2026-04-02T10:00:00Z');
    expect(codes(facts([march, april]))).toBe('none (below-threshold)');
    expect(codes(facts([march, april], { month: '2026-04' }))).toBe('none (below-threshold)');
  });

  test('a plan in force for part of the month enrols the whole month; a draft plan or one ended before does not', () => {
    expect(codes(facts([entry(25)], { plans: [{ ...PLAN, period: { start: '2026-03-20' } }] }))).toBe('99490');
    expect(codes(facts([entry(25)], { plans: [{ ...PLAN, status: 'draft' }] }))).toBe('none (not-enrolled)');
    expect(codes(facts([entry(25)], { plans: [{ ...PLAN, status: 'revoked', period: { start: '2025-01-01', end: '2026-02-28' } }] }))).toBe('none (not-enrolled)');
  });
});

describe('consent', () => {
  test('no consent covering the month: nothing billed', () => {
    expect(codes(facts([entry(45)], { consents: [] }))).toBe('none (no-consent)');
  });

  test('time before the patient consented in the month does not count', () => {
    const r = billMonth(facts([entry(30, 'clinical-staff', '2026-03-02T10:00:00Z'), entry(15)], { consents: [{ start: '2026-03-05' }] }));
    expect(r.countedMinutes.staff).toBe(15);
    expect(r.notCounted.map((x) => x.reason)).toContain('before the patient consented');
  });

  test('revocation in the month: that month stays billable (consent period to the month end), later months are not', () => {
    const revoked = { start: '2025-06-01', end: '2026-03-31' };
    expect(codes(facts([entry(25, 'clinical-staff', '2026-03-25T10:00:00Z')], { consents: [revoked] }))).toBe('99490');
    // In April the revoked consent no longer covers the month: the data layer passes no consent.
    expect(codes(facts([entry(25, 'clinical-staff', '2026-04-03T10:00:00Z')], { month: '2026-04', consents: [] }))).toBe('none (no-consent)');
  });
});

describe('eligibility and enrolment gates', () => {
  test('not eligible in the month: nothing, with the reason', () => {
    const r = billMonth(facts([entry(45)], { eligible: false, eligibilityReason: 'Only one category.' }));
    expect(r.skipped).toEqual({ reason: 'not-eligible', text: 'The patient was not CCM-eligible in 2026-03. Only one category.' });
  });

  test('no CCM plan: not enrolled', () => {
    expect(codes(facts([entry(45)], { plans: [] }))).toBe('none (not-enrolled)');
  });
});

describe('mixed clinical-staff and billing-practitioner time (policy: the compliant option that pays most)', () => {
  test('staff 15 + practitioner 30: pooled 45 min (99490 + 99439, $113.56) beats practitioner-only (99491, $84.84), which is reported as rejected', () => {
    const r = billMonth(facts([entry(15), entry(30, 'billing-practitioner', '2026-03-12T10:00:00Z')]));
    expect(r.chosen).toBe('pooled-staff');
    expect(r.lines.map((l) => l.code)).toEqual(['99490', '99439']);
    const rejected = r.rejected.find((o) => o.label === 'practitioner-only');
    expect(rejected?.lines.map((l) => l.code)).toEqual(['99491']);
    expect(rejected?.amount).toBe(84.84);
  });

  test('with a fee schedule that pays the practitioner more, practitioner-only wins and staff minutes are dropped', () => {
    const policy = { ...DEFAULT_BILLING_POLICY, fees: { ...DEFAULT_BILLING_POLICY.fees, '99491': 200 } };
    const r = billMonth(facts([entry(15), entry(30, 'billing-practitioner', '2026-03-12T10:00:00Z')]), policy);
    expect(r.chosen).toBe('practitioner-only');
    expect(r.lines).toEqual([{ code: '99491', units: 1, minutes: 30, amount: 200 }]);
  });

  test('practitioner 65 alone: 99491 + 99437 ($147.97) loses to pooling (99490 + 99439x2, $160.99); complex and practitioner families never mix', () => {
    const r = billMonth(facts([entry(65, 'billing-practitioner')]));
    expect(codes(facts([entry(65, 'billing-practitioner')]))).toBe('99490 + 99439x2');
    expect(r.rejected.find((o) => o.label === 'practitioner-only')?.lines.map((l) => `${l.code}x${l.units}`)).toEqual(['99491x1', '99437x1']);
  });

  test('complex month with 70 pooled minutes: complex is chosen and non-complex is not compliant', () => {
    const r = billMonth(facts([entry(40), entry(30, 'billing-practitioner', '2026-03-12T10:00:00Z')], { plans: [COMPLEX] }));
    expect(r.chosen).toBe('pooled-complex');
    expect(r.rejected.find((o) => o.label === 'pooled-staff')?.notCompliant).toContain('never billed together');
  });

  test('99437 is capped at two units (policy)', () => {
    const policy = { ...DEFAULT_BILLING_POLICY, fees: { ...DEFAULT_BILLING_POLICY.fees, '99491': 500 } };
    const entries = [0, 1, 2, 3, 4].map((d) => entry(30, 'billing-practitioner', `2026-03-1${d}T10:00:00Z`));
    expect(codes(facts(entries), policy)).toBe('99491 + 99437x2');
  });
});

describe('principal care management', () => {
  test('practitioner 30: 99424; staff 60: 99426 + 99427, whose 99426 amount is not configured (warned)', () => {
    expect(codes(facts([entry(30, 'billing-practitioner')], { plans: [PCM] }))).toBe('99424');
    const r = billMonth(facts([entry(30), entry(30, 'clinical-staff', '2026-03-12T10:00:00Z')], { plans: [PCM] }));
    expect(r.lines.map((l) => l.code)).toEqual(['99426', '99427']);
    expect(r.lines[0].amount).toBeUndefined();
    expect(r.warnings).toContain('No fee is configured for 99426; its amount is not reported');
  });
});

describe('guidance for worklists', () => {
  test.each([
    [14, PLAN, { code: '99490', minutes: 6 }],
    [25, PLAN, { code: '99439', minutes: 15 }],
    [60, PLAN, undefined],
    [70, COMPLEX, { code: '99489', minutes: 20 }],
  ])('%i minutes (%o): next code %o', (minutes, plan, next) => {
    expect(billMonth(facts([entry(minutes)], { plans: [plan] })).toNextCode).toEqual(next);
  });
});
