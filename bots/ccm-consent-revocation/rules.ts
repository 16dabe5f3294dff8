/**
 * When a revoked consent ends a CCM plan (ccm-domain.md section 3): revocation sets the Consent
 * `inactive` with `provision.period.end` = the last day of the revocation month; the plan ends only
 * after that day, and only if no other CCM consent of the patient is active today.
 */
import type { Consent } from '@medplum/fhirtypes';

export const CCM = 'http://continuum-ccm.org/fhir/CodeSystem/ccm';
export const PROGRAMS = ['ccm', 'complex-ccm', 'pcm'];
export const PROGRAM_TOKENS = PROGRAMS.map((p) => `${CCM}|${p}`).join(',');

export function isCcmConsent(c: Consent): boolean {
  const treatment = c.scope?.coding?.some((x) => x.code === 'treatment') ?? false;
  const program = c.category?.some((cat) => cat.coding?.some((x) => x.system === CCM && PROGRAMS.includes(x.code ?? ''))) ?? false;
  return treatment && program;
}

const day = (v: string | undefined): string | undefined => v?.slice(0, 10);

/** The day the patient's CCM consent ended, when CCM must now stop (`today` is YYYY-MM-DD); else undefined. */
export function revocationEnd(consents: readonly Consent[], today: string): string | undefined {
  const ccm = consents.filter(isCcmConsent);
  const stillActive = ccm.some((c) => c.status === 'active' && (!day(c.provision?.period?.end) || (day(c.provision?.period?.end) as string) >= today));
  if (stillActive) {
    return undefined;
  }
  const ended = ccm
    .filter((c) => c.status !== 'entered-in-error' && day(c.provision?.period?.end) !== undefined && (day(c.provision?.period?.end) as string) < today)
    .map((c) => day(c.provision?.period?.end) as string)
    .sort();
  return ended[ended.length - 1];
}

/** The last day of the month of `date` (YYYY-MM-DD): where a revocation's consent period ends. */
export function endOfMonth(date: string): string {
  const [y, m] = date.split('-').map(Number);
  return `${date.slice(0, 7)}-${String(new Date(Date.UTC(y, m, 0)).getUTCDate()).padStart(2, '0')}`;
}
