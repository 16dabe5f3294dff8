import type { Observation } from '@medplum/fhirtypes';
import { alertsFor, DEFAULT_THRESHOLDS, isPatientReported } from './rules';

const loinc = (code: string) => ({ coding: [{ system: 'http://loinc.org', code }] });
const obs = (code: string, value?: number, extra: Partial<Observation> = {}): Observation => ({
  resourceType: 'Observation',
  status: 'final',
  code: loinc(code),
  subject: { reference: 'Patient/p1' },
  performer: [{ reference: 'Patient/p1' }],
  valueQuantity: value === undefined ? undefined : { value },
  ...extra,
});
const bp = (sys: number, dia: number): Observation =>
  obs('85354-9', undefined, {
    component: [
      { code: loinc('8480-6'), valueQuantity: { value: sys, unit: 'mm[Hg]' } },
      { code: loinc('8462-4'), valueQuantity: { value: dia, unit: 'mm[Hg]' } },
    ],
  });

describe('ODL alert rules (ccm-domain.md section 6)', () => {
  test.each([
    [bp(180, 80), ['blood-pressure']],
    [bp(179, 119), []],
    [bp(120, 120), ['blood-pressure']],
    [obs('41653-7', 53), ['glucose']],
    [obs('41653-7', 54), []],
    [obs('41653-7', 400), []],
    [obs('41653-7', 401), ['glucose']],
    [obs('59408-5', 87), ['spo2']],
    [obs('2708-6', 87.9), ['spo2']],
    [obs('59408-5', 88), []],
    [obs('44261-6', 20), ['phq9']],
    [obs('44261-6', 19), []],
    [obs('72514-3', 8), ['pain']],
    [obs('72514-3', 7), []],
    [obs('8867-4', 200), []], // heart rate has no threshold
  ])('%#: alerts %j', (o, rules) => {
    expect(alertsFor(o).map((a) => a.rule)).toEqual(rules);
  });

  test('thresholds are configurable', () => {
    expect(alertsFor(obs('72514-3', 6), { ...DEFAULT_THRESHOLDS, painAtLeast: 6 }).map((a) => a.rule)).toEqual(['pain']);
    expect(alertsFor(bp(185, 90), { ...DEFAULT_THRESHOLDS, systolicAtLeast: 190 })).toEqual([]);
  });

  test('the alert text names the measurement and the threshold', () => {
    expect(alertsFor(bp(190, 95))[0].text).toBe('Blood pressure 190/95 mm[Hg] (alert at 180/120)');
  });

  test('only Observations performed by the patient or a RelatedPerson are ODLs', () => {
    expect(isPatientReported(obs('72514-3', 9))).toBe(true);
    expect(isPatientReported(obs('72514-3', 9, { performer: [{ reference: 'RelatedPerson/r1' }] }))).toBe(true);
    expect(isPatientReported(obs('72514-3', 9, { performer: [{ reference: 'Practitioner/d1' }] }))).toBe(false);
    expect(isPatientReported(obs('72514-3', 9, { performer: undefined }))).toBe(false);
  });
});
