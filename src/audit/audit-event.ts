/**
 * Audit rows as FHIR R4 AuditEvent resources (the shape the Audit requirements name): type `rest`
 * (RESTful operation) with the interaction as subtype, or DICOM User Authentication for sign-ins and
 * token issuance; action, recorded, outcome; agents: the user (fhirUser) and the client; source:
 * this server; entities: the resource and the patient.
 */
import type { AuditEvent, AuditEventAgent, AuditEventEntity } from '@medplum/fhirtypes';
import type { AuditRow } from '../store/api';

const OUTCOME_TEXT: Record<AuditRow['outcome'], string> = { '0': 'success', '4': 'refused or invalid', '8': 'server failure' };

export function toAuditEvent(row: AuditRow, baseUrl: string): AuditEvent {
  const agent: AuditEventAgent[] = [];
  if (row.fhirUser) {
    agent.push({
      type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/extra-security-role-type', code: 'humanuser', display: 'human user' }] },
      who: { reference: row.fhirUser },
      requestor: true,
    });
  }
  agent.push({
    type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/extra-security-role-type', code: 'dataprocessor', display: 'data processor' }] },
    who: row.clientId ? { identifier: { system: `${baseUrl}/auth/clients`, value: row.clientId }, display: row.clientId } : { display: 'unauthenticated caller' },
    requestor: !row.fhirUser,
  });
  const entity: AuditEventEntity[] = [];
  if (row.entity) {
    entity.push(row.entity.includes('/') ? { what: { reference: row.entity } } : { what: { display: row.entity } });
  }
  if (row.patient) {
    entity.push({
      what: { reference: `Patient/${row.patient}` },
      role: { system: 'http://terminology.hl7.org/CodeSystem/object-role', code: '1', display: 'Patient' },
    });
  }
  const event: AuditEvent = {
    resourceType: 'AuditEvent',
    id: row.seq,
    type:
      row.category === 'rest'
        ? { system: 'http://terminology.hl7.org/CodeSystem/audit-event-type', code: 'rest', display: 'Restful Operation' }
        : { system: 'http://dicom.nema.org/resources/ontology/DCM', code: '110114', display: 'User Authentication' },
    subtype: [
      row.category === 'rest'
        ? { system: 'http://hl7.org/fhir/restful-interaction', code: row.interaction }
        : { system: 'http://continuum-ccm.org/fhir/CodeSystem/auth-event', code: row.interaction },
    ],
    action: row.action,
    recorded: row.recorded,
    outcome: row.outcome,
    outcomeDesc: row.detail ?? OUTCOME_TEXT[row.outcome],
    agent,
    source: {
      site: baseUrl,
      observer: { display: 'Continuum' },
      type: [{ system: 'http://terminology.hl7.org/CodeSystem/security-source-type', code: '4', display: 'Application Server' }],
    },
  };
  if (entity.length > 0) {
    event.entity = entity;
  }
  return event;
}
