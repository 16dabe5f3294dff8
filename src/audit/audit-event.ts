/**
 * Audit rows as FHIR R4 AuditEvent resources (the shape the Audit requirements name): type `rest`
 * (RESTful operation) with the interaction as subtype, or DICOM User Authentication for sign-ins and
 * token issuance; action, recorded, outcome; agents: the user (fhirUser) and the client; source:
 * this server; entities: the resource and the patient.
 */
import type { AuditEvent, AuditEventAgent, AuditEventEntity } from '@medplum/fhirtypes';
import type { AuditRow } from '../store/api';

const OUTCOME_TEXT: Record<AuditRow['outcome'], string> = { '0': 'success', '4': 'refused or invalid', '8': 'server failure' };

/** AuditEvent.type per kind of row: an interaction, a sign-in or token, a bot run. */
const TYPES: Record<AuditRow['category'], { system: string; code: string; display: string }> = {
  rest: { system: 'http://terminology.hl7.org/CodeSystem/audit-event-type', code: 'rest', display: 'Restful Operation' },
  login: { system: 'http://dicom.nema.org/resources/ontology/DCM', code: '110114', display: 'User Authentication' },
  bot: { system: 'http://dicom.nema.org/resources/ontology/DCM', code: '110100', display: 'Application Activity' },
};

/** AuditEvent.subtype's system per kind of row (the code is the interaction, auth event or bot trigger). */
const SUBTYPE_SYSTEMS: Record<AuditRow['category'], string> = {
  rest: 'http://hl7.org/fhir/restful-interaction',
  login: 'http://continuum-ccm.org/fhir/CodeSystem/auth-event',
  bot: 'http://continuum-ccm.org/fhir/CodeSystem/bot-event',
};

/** An audit row as an R4 AuditEvent. */
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
    type: TYPES[row.category],
    subtype: [{ system: SUBTYPE_SYSTEMS[row.category], code: row.interaction }],
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
