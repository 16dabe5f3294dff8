import type { CapabilityStatement, CapabilityStatementRestResource } from '@medplum/fhirtypes';
import { RESOURCE_TYPES } from '../../validation/schema';
import type { FhirRequest, FhirResponse, InteractionRow, RequestContext } from '../types';

const TYPE_LEVEL = new Set(['read', 'vread', 'update', 'patch', 'delete', 'history-instance', 'history-type', 'create', 'search-type']);
const SYSTEM_LEVEL = new Set(['transaction', 'batch', 'search-system', 'history-system']);

type TypeInteraction = NonNullable<CapabilityStatementRestResource['interaction']>[number]['code'];

/**
 * capabilities: `GET metadata` (FHIR R4 http.html#capabilities). Generated from the interaction
 * table, never written by hand, so it cannot drift from what the router serves.
 */
export async function capabilities(
  _req: FhirRequest,
  ctx: RequestContext,
  rows: readonly InteractionRow[],
): Promise<FhirResponse> {
  const typeCodes = [...new Set(rows.filter((r) => TYPE_LEVEL.has(r.interaction)).map((r) => r.interaction))];
  const systemCodes = [...new Set(rows.filter((r) => SYSTEM_LEVEL.has(r.interaction)).map((r) => r.interaction))];
  if (systemCodes.includes('transaction')) {
    // One endpoint (POST [base]) takes both Bundle types.
    systemCodes.push('batch');
  }
  const typeOps = rows.filter((r) => r.interaction === 'operation' && r.level !== 'system' && !r.hidden);
  const systemOps = rows.filter((r) => r.interaction === 'operation' && r.level === 'system' && !r.hidden);
  const definition = (ops: readonly InteractionRow[], name: string): string =>
    ops.find((r) => r.operation === name && r.definition)?.definition ?? `http://hl7.org/fhir/OperationDefinition/Resource-${name}`;
  const parser = ctx.searchParser(false);
  const resources: CapabilityStatementRestResource[] = [...RESOURCE_TYPES].sort().map((type) => ({
    type: type as CapabilityStatementRestResource['type'],
    profile: `http://hl7.org/fhir/StructureDefinition/${type}`,
    ...(ctx.supportedProfiles?.(type).length ? { supportedProfile: ctx.supportedProfiles(type) } : {}),
    interaction: typeCodes.map((code) => ({ code: code as TypeInteraction })),
    versioning: 'versioned-update',
    readHistory: true,
    updateCreate: true,
    conditionalCreate: true,
    conditionalRead: 'not-supported',
    conditionalUpdate: true,
    conditionalDelete: 'single',
    searchParam: parser.describe(type),
    searchInclude: ['*'],
    searchRevInclude: ['*'],
    operation: (() => {
      const ops = typeOps.filter((r) => !r.types || r.types.includes(type));
      return [...new Set(ops.map((r) => r.operation as string))].map((name) => ({ name, definition: definition(ops, name) }));
    })(),
  }));
  const statement: CapabilityStatement = {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: ctx.now().toISOString(),
    kind: 'instance',
    name: 'Continuum',
    title: 'Continuum FHIR server for Chronic Care Management',
    software: { name: 'Continuum', version: '0.1.0' },
    implementation: { description: 'Continuum', url: ctx.baseUrl },
    fhirVersion: '4.0.1',
    format: ['application/fhir+json', 'json'],
    patchFormat: ['application/json-patch+json', 'application/fhir+json'],
    rest: [
      {
        mode: 'server',
        // SMART App Launch: the authorization server's endpoints (also in /.well-known/smart-configuration).
        security: {
          cors: true,
          service: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/restful-security-service', code: 'SMART-on-FHIR' }] }],
          extension: [
            {
              url: 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris',
              extension: [
                { url: 'authorize', valueUri: `${ctx.baseUrl}/auth/authorize` },
                { url: 'token', valueUri: `${ctx.baseUrl}/auth/token` },
                { url: 'introspect', valueUri: `${ctx.baseUrl}/auth/introspect` },
                { url: 'revoke', valueUri: `${ctx.baseUrl}/auth/revoke` },
              ],
            },
          ],
        },
        resource: resources,
        interaction: systemCodes.map((code) => ({ code: code as 'transaction' })),
        operation: [...new Set(systemOps.map((r) => r.operation as string))].map((name) => ({ name, definition: definition(systemOps, name) })),
      },
    ],
  };
  return { status: 200, resource: statement };
}
