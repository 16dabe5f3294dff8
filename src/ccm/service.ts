/**
 * The CCM module's state: the chronic-category table (from the ConceptMaps in the profile folders)
 * and the deployment's policy choices (ccm-domain.md marks them **policy**). Created once per server
 * and handed to the CCM operations through the request context.
 */
import type { ConceptMap } from '@medplum/fhirtypes';
import { DEFAULT_BILLING_POLICY, type BillingPolicy } from './billing';
import { ChronicCategories } from './categories';

export interface CcmPolicy {
  /**
   * Months before the start of CCM within which the billing practitioner must have seen the
   * patient; otherwise an initiating visit is required first (section 3). Default 12.
   */
  initiatingVisitMonths: number;
  /** Whether the enrollment guard checks the initiating visit at all. Default true. */
  requireInitiatingVisit: boolean;
  /** Encounter classes that do not count as a face-to-face visit. Default: virtual (VR). */
  nonFaceToFaceClasses: string[];
  /** Fee schedule and add-on caps of the billing rules (section 5). */
  billing: BillingPolicy;
}

export const DEFAULT_CCM_POLICY: CcmPolicy = {
  initiatingVisitMonths: 12,
  requireInitiatingVisit: true,
  nonFaceToFaceClasses: ['VR'],
  billing: DEFAULT_BILLING_POLICY,
};

export class CcmService {
  readonly categories: ChronicCategories;
  readonly policy: CcmPolicy;
  readonly billing: BillingPolicy;

  constructor(conceptMaps: readonly ConceptMap[], policy: Partial<CcmPolicy> = {}) {
    this.categories = new ChronicCategories(conceptMaps);
    this.policy = { ...DEFAULT_CCM_POLICY, ...policy };
    // A partial fee schedule overrides the defaults code by code.
    this.billing = { ...DEFAULT_BILLING_POLICY, ...(policy.billing ?? {}), fees: { ...DEFAULT_BILLING_POLICY.fees, ...(policy.billing?.fees ?? {}) } };
  }
}
