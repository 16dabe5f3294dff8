/**
 * Validation against profiles (StructureDefinitions) the server knows, for resources that claim
 * them in meta.profile. Profiles the server does not know are ignored, as FHIR allows.
 */
import type { OperationOutcomeIssue, Resource } from '@medplum/fhirtypes';

export interface ProfileValidator {
  /** Issues for every known profile the resource claims (empty when valid or none are known). */
  validate(resource: Resource): Promise<OperationOutcomeIssue[]>;
}

/** No profiles loaded yet: every claimed profile is unknown, so nothing to check. */
export function createProfileValidator(): ProfileValidator {
  return {
    async validate(): Promise<OperationOutcomeIssue[]> {
      return [];
    },
  };
}
