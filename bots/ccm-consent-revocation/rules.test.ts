/**
 * When a revoked consent ends CCM (ccm-domain.md section 3): revocation is effective at the end of
 * the calendar month, so the plan ends the day after the consent period's last day, and not while
 * another CCM consent of the patient is active.
 */
import type { Consent } from '@medplum/fhirtypes';
import { endOfMonth, isCcmConsent, revocationEnd } from './rules';

const CCM = 'http://continuum-ccm.org/fhir/CodeSystem/ccm';

function consent(status: Consent['status'], period: { start?: string; end?: string }, program = 'ccm', scope = 'treatment'): Consent {
  return {
    resourceType: 'Consent',
    status,
    scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: scope }] },
    category: [{ coding: [{ system: CCM, code: program }] }],
    patient: { reference: 'Patient/p1' },
    provision: { period },
  };
}

/** Revoked on 2026-03-14: inactive, its period ending on the last day of March. */
const revokedInMarch = consent('inactive', { start: '2026-01-10', end: '2026-03-31' });

describe('endOfMonth: the last day of the month of a date', () => {
  test.each([
    ['2026-03-14', '2026-03-31'],
    ['2026-03-31', '2026-03-31'],
    ['2026-04-01', '2026-04-30'],
    ['2026-12-15', '2026-12-31'],
    ['2026-01-31', '2026-01-31'],
    // February: 28 days, 29 in leap years (every fourth year, not centuries, but every fourth century).
    ['2026-02-10', '2026-02-28'],
    ['2024-02-01', '2024-02-29'],
    ['2028-02-29', '2028-02-29'],
    ['2100-02-14', '2100-02-28'],
    ['2000-02-14', '2000-02-29'],
  ])('%s -> %s', (date, end) => {
    expect(endOfMonth(date)).toBe(end);
  });
});

describe('isCcmConsent', () => {
  test('a treatment consent naming a CCM program (ccm, complex-ccm, pcm)', () => {
    expect(isCcmConsent(consent('active', {}, 'ccm'))).toBe(true);
    expect(isCcmConsent(consent('active', {}, 'complex-ccm'))).toBe(true);
    expect(isCcmConsent(consent('active', {}, 'pcm'))).toBe(true);
    expect(isCcmConsent(consent('active', {}, 'research'))).toBe(false);
    expect(isCcmConsent(consent('active', {}, 'ccm', 'patient-privacy'))).toBe(false);
  });
});

describe('revocationEnd: the day CCM consent ended, once CCM must stop', () => {
  test('not during the revocation month, the last day included', () => {
    expect(revocationEnd([revokedInMarch], '2026-03-14')).toBeUndefined();
    expect(revocationEnd([revokedInMarch], '2026-03-20')).toBeUndefined();
    expect(revocationEnd([revokedInMarch], '2026-03-31')).toBeUndefined();
  });

  test('from the first day of the next month: the consent period end', () => {
    expect(revocationEnd([revokedInMarch], '2026-04-01')).toBe('2026-03-31');
    expect(revocationEnd([revokedInMarch], '2026-07-15')).toBe('2026-03-31');
  });

  test('a revocation in February of a leap year ends CCM on the 29th', () => {
    const feb = consent('inactive', { start: '2023-06-01', end: endOfMonth('2024-02-03') });
    expect(revocationEnd([feb], '2024-02-29')).toBeUndefined();
    expect(revocationEnd([feb], '2024-03-01')).toBe('2024-02-29');
  });

  test('an end written as a dateTime is compared by its day', () => {
    expect(revocationEnd([consent('inactive', { end: '2026-03-31T23:59:59-05:00' })], '2026-03-31')).toBeUndefined();
    expect(revocationEnd([consent('inactive', { end: '2026-03-31T23:59:59-05:00' })], '2026-04-01')).toBe('2026-03-31');
  });

  test('another CCM consent still active keeps CCM going (open-ended, or ending today or later)', () => {
    expect(revocationEnd([revokedInMarch, consent('active', { start: '2026-03-20' })], '2026-04-01')).toBeUndefined();
    expect(revocationEnd([revokedInMarch, consent('active', { start: '2026-03-20', end: '2026-04-01' }, 'complex-ccm')], '2026-04-01')).toBeUndefined();
  });

  test('consents that are not CCM consents neither end nor keep CCM', () => {
    expect(revocationEnd([consent('inactive', { end: '2026-03-31' }, 'research')], '2026-04-01')).toBeUndefined();
    expect(revocationEnd([revokedInMarch, consent('active', {}, 'research')], '2026-04-01')).toBe('2026-03-31');
  });

  test('an entered-in-error consent is ignored; with no consent at all there is nothing to end', () => {
    expect(revocationEnd([consent('entered-in-error', { end: '2026-03-31' })], '2026-04-01')).toBeUndefined();
    expect(revocationEnd([], '2026-04-01')).toBeUndefined();
  });

  test('several ended consents: CCM ended with the latest of them', () => {
    const earlier = consent('inactive', { start: '2025-01-01', end: '2025-06-30' });
    expect(revocationEnd([earlier, revokedInMarch], '2026-04-01')).toBe('2026-03-31');
    expect(revocationEnd([revokedInMarch, earlier], '2026-04-01')).toBe('2026-03-31');
  });

  // A consent whose period is over no longer covers CCM, whatever its status says (the enrollment
  // guard already treats it so: src/ccm/enrollment.ts `covers`). rules.ts only ends CCM for consents
  // whose status is not `active`, so a consent recorded as ending on March 31 but left active keeps
  // the plan going for ever.
  test('a consent left active whose period has ended ends CCM too', () => {
    expect(revocationEnd([consent('active', { start: '2026-01-10', end: '2026-03-31' })], '2026-04-01')).toBe('2026-03-31');
  });
});
