/**
 * The stored projections the CCM operations read (src/store/projections.ts): time entries, plans,
 * consents, and what eligibility reads of Conditions and Patients for billing and the month close;
 * the same plans and consents, urgent Tasks, running totals and eligibility determinations for the
 * worklist.
 */
import type { Projection } from '../store/projections';
import { CONSENT_PROJECTION, PLAN_PROJECTION, TIME_ENTRY_PROJECTION } from './billing-data';
import { ELIGIBILITY_CONDITION_PROJECTION, ELIGIBILITY_PATIENT_PROJECTION } from './eligibility';
import { DETERMINATION_PROJECTION, MONTH_TOTAL_PROJECTION, URGENT_TASK_PROJECTION } from './worklist';

export const CCM_PROJECTIONS: readonly Projection<never>[] = [
  TIME_ENTRY_PROJECTION,
  PLAN_PROJECTION,
  CONSENT_PROJECTION,
  URGENT_TASK_PROJECTION,
  MONTH_TOTAL_PROJECTION,
  DETERMINATION_PROJECTION,
  ELIGIBILITY_CONDITION_PROJECTION,
  ELIGIBILITY_PATIENT_PROJECTION,
];
