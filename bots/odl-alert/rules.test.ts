import type { CareTeam, Condition, Observation, Quantity } from '@medplum/fhirtypes';
import {
  alertsFor,
  careCoordinator,
  DEFAULT_COORDINATOR_ROLES,
  DEFAULT_THRESHOLDS,
  evaluate,
  hasHeartFailure,
  isPatientReported,
  patientId,
  thresholdOverrides,
  thresholdsOf,
  THRESHOLDS_EXTENSION,
  valueIn,
  weightGain,
} from './rules';

const UCUM = 'http://unitsofmeasure.org';
const loinc = (code: string) => ({ coding: [{ system: 'http://loinc.org', code }] });
const obs = (code: string, value?: number | Quantity, extra: Partial<Observation> = {}): Observation => ({
  resourceType: 'Observation',
  status: 'final',
  code: loinc(code),
  subject: { reference: 'Patient/p1' },
  performer: [{ reference: 'Patient/p1' }],
  effectiveDateTime: '2026-11-03T08:00:00-05:00',
  valueQuantity: value === undefined ? undefined : typeof value === 'number' ? { value } : value,
  ...extra,
});
const mmHg = (value: number): Quantity => ({ value, unit: 'mmHg', system: UCUM, code: 'mm[Hg]' });
const bp = (sys: number | Quantity, dia: number | Quantity): Observation =>
  obs('85354-9', undefined, {
    component: [
      { code: loinc('8480-6'), valueQuantity: typeof sys === 'number' ? mmHg(sys) : sys },
      { code: loinc('8462-4'), valueQuantity: typeof dia === 'number' ? mmHg(dia) : dia },
    ],
  });
const q = (value: number, code: string): Quantity => ({ value, system: UCUM, code, unit: code });
const rules = (o: Observation) => alertsFor(o).map((a) => a.rule);

describe('single-reading thresholds (ccm-domain.md section 6), both sides of each line', () => {
  test.each([
    ['systolic 180 (at the line)', bp(180, 80), ['blood-pressure']],
    ['systolic 179', bp(179, 80), []],
    ['diastolic 120 (at the line)', bp(120, 120), ['blood-pressure']],
    ['diastolic 119', bp(150, 119), []],
    ['systolic 179.9 and diastolic 119.9', bp(179.9, 119.9), []],
    ['glucose 53 (below 54)', obs('41653-7', q(53, 'mg/dL')), ['glucose']],
    ['glucose 54', obs('41653-7', q(54, 'mg/dL')), []],
    ['glucose 400', obs('41653-7', q(400, 'mg/dL')), []],
    ['glucose 401 (above 400)', obs('41653-7', q(401, 'mg/dL')), ['glucose']],
    ['SpO2 87 (below 88)', obs('59408-5', q(87, '%')), ['spo2']],
    ['SpO2 87.9 (2708-6)', obs('2708-6', q(87.9, '%')), ['spo2']],
    ['SpO2 88', obs('59408-5', q(88, '%')), []],
    ['PHQ-9 20 (at the line)', obs('44261-6', q(20, '{score}')), ['phq9']],
    ['PHQ-9 19', obs('44261-6', q(19, '{score}')), []],
    ['pain 8 (at the line)', obs('72514-3', q(8, '{score}')), ['pain']],
    ['pain 7', obs('72514-3', q(7, '{score}')), []],
    ['heart rate 200 (no threshold)', obs('8867-4', q(200, '/min')), []],
    ['PHQ-2 6 (no threshold)', obs('55758-7', q(6, '{score}')), []],
    ['weight without heart failure (no weight rule)', obs('29463-7', q(150, 'kg')), []],
  ])('%s', (_name, o, expected) => {
    expect(rules(o)).toEqual(expected);
  });

  test('a value without a unit is in the unit of the table', () => {
    expect(rules(obs('41653-7', 42))).toEqual(['glucose']);
    expect(rules(bp({ value: 185 }, { value: 90 }))).toEqual(['blood-pressure']);
  });

  test('blood pressure components in kPa are converted to mm[Hg] (24 kPa = 180.0 mm[Hg]; 23.9 kPa = 179.3)', () => {
    expect(rules(bp(q(24, 'kPa'), q(10, 'kPa')))).toEqual(['blood-pressure']);
    expect(rules(bp(q(23.9, 'kPa'), q(10, 'kPa')))).toEqual([]);
    expect(alertsFor(bp(q(24, 'kPa'), q(10, 'kPa')))[0].text).toBe('Blood pressure 180/75 mm[Hg] (alert at 180/120)');
  });

  test('glucose in mmol/L is converted (3.0 mmol/L = 54.0 mg/dL; 2.9 = 52.2)', () => {
    expect(rules(obs('41653-7', q(2.9, 'mmol/L')))).toEqual(['glucose']);
    expect(rules(obs('41653-7', q(3.0, 'mmol/L')))).toEqual([]);
  });

  test('a unit that does not convert raises no alert but a warning, never a guess', () => {
    const r = evaluate(bp(q(190, 'cm[H2O]'), mmHg(80)));
    expect(r.alerts).toEqual([]);
    expect(r.warnings).toEqual(["Systolic pressure: unit 'cm[H2O]' is not mm[Hg] or one that converts to it; not checked"]);
    expect(evaluate(obs('59408-5', q(0.8, '1'))).warnings[0]).toContain("unit '1' is not %");
  });

  test('one of the two components is enough; a missing one shows as ?', () => {
    const o = obs('85354-9', undefined, { component: [{ code: loinc('8462-4'), valueQuantity: mmHg(125) }] });
    expect(alertsFor(o)[0].text).toBe('Blood pressure ?/125 mm[Hg] (alert at 180/120)');
  });

  test('thresholds are configurable', () => {
    expect(rules(obs('72514-3', 6))).toEqual([]);
    expect(alertsFor(obs('72514-3', 6), { ...DEFAULT_THRESHOLDS, painAtLeast: 6 }).map((a) => a.rule)).toEqual(['pain']);
    expect(alertsFor(bp(185, 90), { ...DEFAULT_THRESHOLDS, systolicAtLeast: 190 })).toEqual([]);
  });

  test('the alert text names the measurement and the threshold', () => {
    expect(alertsFor(bp(190, 95))[0].text).toBe('Blood pressure 190/95 mm[Hg] (alert at 180/120)');
    expect(alertsFor(obs('41653-7', q(42, 'mg/dL')))[0].text).toBe('Glucose 42 mg/dL (alert below 54 or above 400)');
    expect(alertsFor(obs('59408-5', q(85, '%')))[0].text).toBe('SpO2 85 % (alert below 88)');
    expect(alertsFor(obs('44261-6', q(22, '{score}')))[0].text).toBe('PHQ-9 total 22 (alert at 20)');
    expect(alertsFor(obs('72514-3', q(9, '{score}')))[0].text).toBe('Pain 9/10 (alert at 8)');
  });

  test('only Observations performed by the patient or a RelatedPerson are ODLs', () => {
    expect(isPatientReported(obs('72514-3', 9))).toBe(true);
    expect(isPatientReported(obs('72514-3', 9, { performer: [{ reference: 'RelatedPerson/r1' }] }))).toBe(true);
    expect(isPatientReported(obs('72514-3', 9, { performer: [{ reference: 'http://other.example/fhir/Patient/p1' }] }))).toBe(true);
    expect(isPatientReported(obs('72514-3', 9, { performer: [{ reference: 'Practitioner/d1' }] }))).toBe(false);
    expect(isPatientReported(obs('72514-3', 9, { performer: undefined }))).toBe(false);
  });

  test('patientId reads relative, absolute and versioned references', () => {
    expect(patientId({ reference: 'Patient/a' })).toBe('a');
    expect(patientId({ reference: 'http://x.org/fhir/Patient/a/_history/3' })).toBe('a');
    expect(patientId({ reference: 'Group/g' })).toBeUndefined();
  });
});

describe('units', () => {
  test.each([
    [q(80, 'kg'), 80],
    [q(176.37, '[lb_av]'), 80.0001],
    [{ value: 180, unit: 'lbs' }, 81.6466],
    [q(80000, 'g'), 80],
    [{ value: 80 }, 80],
  ])('weight %j in kg', (quantity, kg) => {
    expect(valueIn(quantity, 'kg').value).toBeCloseTo(kg, 3);
  });
  test('a weight in stones is not guessed', () => {
    expect(valueIn(q(12, '[stone_av]'), 'kg')).toEqual({ problem: "unit '[stone_av]' is not kg or one that converts to it" });
  });
});

describe('weight gain for a heart-failure patient (> 1 kg in a day, > 2.3 kg in a week)', () => {
  const weight = (at: string, value: number, code = 'kg', extra: Partial<Observation> = {}): Observation =>
    obs('29463-7', q(value, code), { id: `w-${at}-${value}`, effectiveDateTime: at, ...extra });
  const gain = (current: Observation, previous: Observation[]) => weightGain(current, previous).alert;

  test('day: 1.0 kg more than yesterday is not above the line, 1.01 kg is', () => {
    const yesterday = weight('2026-11-02T07:30:00-05:00', 80.3);
    expect(gain(weight('2026-11-03T07:30:00-05:00', 81.3), [yesterday])).toBeUndefined(); // 81.3 - 80.3 is 1.0000000000000142 in floating point
    expect(gain(weight('2026-11-03T07:30:00-05:00', 81.31), [yesterday])).toMatchObject({ rule: 'weight-gain' });
  });

  test('day: against the lowest weight of the same or the previous calendar day, taken before the new one', () => {
    const prev = [
      weight('2026-11-02T07:00:00-05:00', 80.0),
      weight('2026-11-02T20:00:00-05:00', 80.8),
      weight('2026-11-03T19:00:00-05:00', 79.0), // later than the new reading: not compared
    ];
    const a = gain(weight('2026-11-03T07:00:00-05:00', 81.1), prev);
    expect(a?.text).toBe(
      'Weight gain 1.1 kg in a day for a heart-failure patient: 81.1 kg on 2026-11-03, up from 80 kg on 2026-11-02 (alert above 1 kg in a day or 2.3 kg in a week)',
    );
  });

  test('day: a reading from two days before does not count for the day rule (it does for the week)', () => {
    expect(gain(weight('2026-11-03T07:00:00Z', 81.5), [weight('2026-11-01T07:00:00Z', 80.0)])).toBeUndefined();
    expect(gain(weight('2026-11-03T07:00:00Z', 82.31), [weight('2026-11-01T07:00:00Z', 80.0)])?.text).toContain('2.31 kg in a week');
  });

  test('week: 2.3 kg above the lowest of the last 7 days is not above the line, 2.31 kg is', () => {
    const week = [weight('2026-10-27T07:00:00Z', 80.0), weight('2026-10-30T07:00:00Z', 81.0), weight('2026-11-02T07:00:00Z', 81.9)];
    expect(gain(weight('2026-11-03T07:00:00Z', 82.3), week)).toBeUndefined();
    expect(gain(weight('2026-11-03T07:00:00Z', 82.31), week)?.text).toContain('Weight gain 2.31 kg in a week');
  });

  test('week: a reading 8 days before is outside the week', () => {
    expect(gain(weight('2026-11-03T07:00:00Z', 85), [weight('2026-10-26T07:00:00Z', 80.0)])).toBeUndefined();
    expect(gain(weight('2026-11-03T07:00:00Z', 85), [weight('2026-10-27T07:00:00Z', 80.0)])).toBeDefined();
  });

  test('pounds ([lb_av]) are converted: 2.2 lb (0.998 kg) in a day is not above 1 kg, 2.3 lb (1.043 kg) is', () => {
    const yesterday = weight('2026-11-02T07:00:00Z', 180.0, '[lb_av]');
    expect(gain(weight('2026-11-03T07:00:00Z', 182.2, '[lb_av]'), [yesterday])).toBeUndefined();
    const a = gain(weight('2026-11-03T07:00:00Z', 182.3, '[lb_av]'), [yesterday]);
    expect(a?.text).toBe(
      'Weight gain 1.04 kg in a day for a heart-failure patient: 82.7 kg (182.3 [lb_av]) on 2026-11-03, up from 81.6 kg (180 [lb_av]) on 2026-11-02 (alert above 1 kg in a day or 2.3 kg in a week)',
    );
  });

  test('kg and [lb_av] mix: 80 kg yesterday, 178.6 lb (81.01 kg) today', () => {
    expect(gain(weight('2026-11-03T07:00:00Z', 178.6, '[lb_av]'), [weight('2026-11-02T07:00:00Z', 80, 'kg')])).toMatchObject({ rule: 'weight-gain' });
    expect(gain(weight('2026-11-03T07:00:00Z', 178.5, '[lb_av]'), [weight('2026-11-02T07:00:00Z', 80, 'kg')])).toBeUndefined();
  });

  test('earlier readings that are not final, not weights, or the same Observation are ignored', () => {
    const now = weight('2026-11-03T07:00:00Z', 85);
    expect(gain(now, [weight('2026-11-02T07:00:00Z', 80, 'kg', { status: 'entered-in-error' })])).toBeUndefined();
    expect(gain(now, [obs('8867-4', q(60, '/min'), { effectiveDateTime: '2026-11-02T07:00:00Z' })])).toBeUndefined();
    expect(gain(now, [{ ...now, valueQuantity: q(80, 'kg') }])).toBeUndefined();
  });

  test('no earlier weight, no alert; the rule applies only with heart failure', () => {
    expect(gain(weight('2026-11-03T07:00:00Z', 120), [])).toBeUndefined();
    const current = weight('2026-11-03T07:00:00Z', 85);
    const previous = [weight('2026-11-02T07:00:00Z', 80)];
    expect(evaluate(current, DEFAULT_THRESHOLDS, { heartFailure: false, previousWeights: previous }).alerts).toEqual([]);
    expect(evaluate(current, DEFAULT_THRESHOLDS, { heartFailure: true, previousWeights: previous }).alerts.map((a) => a.rule)).toEqual(['weight-gain']);
  });

  test('the weight-gain thresholds are configurable', () => {
    const t = { ...DEFAULT_THRESHOLDS, weightGainDayAboveKg: 0.5 };
    expect(weightGain(weight('2026-11-03T07:00:00Z', 80.6), [weight('2026-11-02T07:00:00Z', 80)], t).alert).toBeDefined();
  });

  test('a date-only reading compares by calendar day', () => {
    expect(gain(weight('2026-11-03', 81.5), [weight('2026-11-02', 80)])).toBeDefined();
  });
});

describe('heart failure', () => {
  const cond = (system: string, code: string, extra: Partial<Condition> = {}): Condition => ({
    resourceType: 'Condition',
    subject: { reference: 'Patient/p1' },
    clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'active' }] },
    code: { coding: [{ system, code }] },
    ...extra,
  });
  const SCT = 'http://snomed.info/sct';
  const ICD = 'http://hl7.org/fhir/sid/icd-10-cm';
  test.each([
    [cond(SCT, '84114007'), true],
    [cond(SCT, '88805009'), true],
    [cond(SCT, '42343007'), true],
    [cond(ICD, 'I50.9'), true],
    [cond(ICD, 'I5022'), true],
    [cond(ICD, 'I51.9'), false],
    [cond(SCT, '38341003'), false],
    [cond('http://example.org/other', '84114007'), false],
    [cond(SCT, '84114007', { clinicalStatus: { coding: [{ code: 'resolved' }] } }), false],
    [cond(SCT, '84114007', { verificationStatus: { coding: [{ code: 'refuted' }] } }), false],
    [cond(SCT, '84114007', { clinicalStatus: undefined }), true],
    [cond(SCT, '1234', { extension: [{ url: 'http://continuum-ccm.org/fhir/StructureDefinition/chronic-category', valueCode: 'heart-failure' }] }), true],
  ])('%#', (c, expected) => {
    expect(hasHeartFailure([c])).toBe(expected);
  });
});

describe('per-patient thresholds (extension odl-thresholds)', () => {
  test('numbers, and quantities converted to the unit of the threshold', () => {
    const { overrides, problems } = thresholdOverrides([
      {
        url: THRESHOLDS_EXTENSION,
        extension: [
          { url: 'systolicAtLeast', valueInteger: 170 },
          { url: 'spo2Below', valueDecimal: 90 },
          { url: 'weightGainDayAboveKg', valueQuantity: q(3, '[lb_av]') },
          { url: 'glucoseBelow', valueQuantity: q(4, 'mmol/L') },
        ],
      },
      { url: 'http://example.org/other', valueString: 'ignored' },
    ]);
    expect(problems).toEqual([]);
    expect(overrides.systolicAtLeast).toBe(170);
    expect(overrides.spo2Below).toBe(90);
    expect(overrides.weightGainDayAboveKg).toBeCloseTo(1.3608, 4);
    expect(overrides.glucoseBelow).toBeCloseTo(72.064, 3);
  });
  test('what cannot be read is left out and named', () => {
    const { overrides, problems } = thresholdOverrides([
      {
        url: THRESHOLDS_EXTENSION,
        extension: [
          { url: 'heartRateAbove', valueInteger: 120 },
          { url: 'constructor', valueInteger: 1 },
          { url: 'painAtLeast', valueString: 'seven' },
          { url: 'weightGainWeekAboveKg', valueQuantity: q(1, '[stone_av]') },
        ],
      },
    ]);
    expect(overrides).toEqual({});
    expect(problems).toEqual([
      "odl-thresholds: 'heartRateAbove' is not a threshold",
      "odl-thresholds: 'constructor' is not a threshold",
      'odl-thresholds: painAtLeast has no number (valueDecimal, valueInteger or valueQuantity)',
      "odl-thresholds: weightGainWeekAboveKg: unit '[stone_av]' is not kg or one that converts to it",
    ]);
  });
  test('bot.json config: only the numeric thresholds', () => {
    expect(thresholdsOf({ painAtLeast: 6, coordinatorRoles: [], spo2Below: 'x' })).toEqual({ painAtLeast: 6 });
  });
});

describe('the care coordinator', () => {
  const SCT = 'http://snomed.info/sct';
  const NOW = new Date('2026-11-03T10:00:00Z');
  const team = (id: string, participant: CareTeam['participant']): CareTeam => ({ resourceType: 'CareTeam', id, status: 'active', name: `Team ${id}`, participant });
  const coordinator = (member: string, period?: { start?: string; end?: string }) => ({
    role: [{ coding: [{ system: SCT, code: '768820003', display: 'Care coordinator' }] }],
    member: { reference: member },
    ...(period ? { period } : {}),
  });
  const nurse = { role: [{ coding: [{ system: SCT, code: '224535009' }] }], member: { reference: 'Practitioner/nurse' } };

  test('the participant whose role is care coordinator', () => {
    expect(careCoordinator([team('t1', [nurse, coordinator('PractitionerRole/cc')])], DEFAULT_COORDINATOR_ROLES, NOW).owner).toEqual({ reference: 'PractitionerRole/cc' });
  });
  test('one whose period has ended (or not begun) is skipped', () => {
    const t = team('t1', [coordinator('Practitioner/old', { end: '2026-10-31' }), coordinator('Practitioner/future', { start: '2026-12-01' }), coordinator('Practitioner/now', { start: '2026-11-01' })]);
    expect(careCoordinator([t], DEFAULT_COORDINATOR_ROLES, NOW).owner?.reference).toBe('Practitioner/now');
  });
  test('no coordinator: the CareTeam; no CareTeam: nobody, and the reason', () => {
    expect(careCoordinator([team('t1', [nurse])], DEFAULT_COORDINATOR_ROLES, NOW)).toEqual({
      owner: { reference: 'CareTeam/t1', display: 'Team t1' },
      why: "no care coordinator on the patient's active CareTeam: CareTeam/t1 owns the Task",
    });
    expect(careCoordinator([], DEFAULT_COORDINATOR_ROLES, NOW)).toEqual({ why: 'the patient has no active CareTeam: the Task has no owner' });
  });
  test('the roles are configurable', () => {
    const roles = [{ system: 'http://example.org/roles', code: 'cc' }];
    const t = team('t1', [{ role: [{ coding: roles }], member: { reference: 'Practitioner/x' } }]);
    expect(careCoordinator([t], roles, NOW).owner?.reference).toBe('Practitioner/x');
    expect(careCoordinator([t], DEFAULT_COORDINATOR_ROLES, NOW).owner?.reference).toBe('CareTeam/t1');
  });
});
