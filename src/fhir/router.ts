/**
 * The interaction table and the router. Each row is one FHIR interaction or operation: it drives
 * routing, the CapabilityStatement, scope checks and audit. Adding an
 * interaction means adding a row here and a module in ./interactions or ./operations.
 *
 * handle(FhirRequest, ctx) -> FhirResponse knows nothing about HTTP; the edge, batch/transaction
 * entries and bots all call it.
 */
import { FhirError, STATUS_BY_CATEGORY, operationOutcome } from '../errors';
import { isResourceType } from '../validation/schema';
import { batchOrTransaction } from './interactions/batch';
import { capabilities } from './interactions/capabilities';
import { conditionalDelete, conditionalUpdate } from './interactions/conditional';
import { create } from './interactions/create';
import { deleteInteraction } from './interactions/delete';
import { history } from './interactions/history';
import { patch } from './interactions/patch';
import { read } from './interactions/read';
import { search } from './interactions/search';
import { update } from './interactions/update';
import { vread } from './interactions/vread';
import { auditLogOperation } from './operations/audit-log';
import { everythingOperation } from './operations/everything';
import { executeOperation, wsBindingTokenOperation } from './operations/execute';
import { exportCancel, exportFile, exportKickoff, exportStatus } from '../bulk/export';
import { importOperation } from '../bulk/import';
import { reindexOperation } from './operations/reindex';
import { validateOperation } from './operations/validate';
import { asyncCancelOperation, asyncStatusOperation } from './operations/async-status';
import { patientEligibilityOperation, systemEligibilityOperation } from '../ccm/eligibility-operation';
import { enrollmentCheckOperation } from '../ccm/enrollment';
import { completenessOperation } from '../ccm/completeness';
import { carePlanDocumentOperation } from '../ccm/document';
import { patientBillingOperation, systemBillingOperation } from '../ccm/billing-operation';
import { monthCloseOperation } from '../ccm/month-close';
import { worklistOperation } from '../ccm/worklist';
import type { AuditRow } from '../store/api';
import type { FhirRequest, FhirResponse, InteractionRow, PathParams, RequestContext } from './types';

const WS_BINDING_TOKEN = 'http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition/backport-subscription-get-ws-binding-token';
const BOT_EXECUTE = 'http://continuum-ccm.org/fhir/OperationDefinition/Library-execute';
const BULK_EXPORT = 'http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export';
const BULK_EXPORT_PATIENT = 'http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export';
const BULK_EXPORT_GROUP = 'http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export';
const PATIENT_EVERYTHING = 'http://hl7.org/fhir/OperationDefinition/Patient-everything';
const CONTINUUM_IMPORT = 'http://continuum-ccm.org/fhir/OperationDefinition/import';
const CCM_OPERATION = (name: string): string => `http://continuum-ccm.org/fhir/OperationDefinition/${name}`;

export const INTERACTIONS: readonly InteractionRow[] = [
  { interaction: 'capabilities', method: 'GET', pattern: 'metadata', level: 'system', scope: 'none', handler: (req, ctx) => capabilities(req, ctx, INTERACTIONS) },
  { interaction: 'transaction', method: 'POST', pattern: '', level: 'system', scope: 'none', handler: (req, ctx) => batchOrTransaction(req, ctx, handle) },
  { interaction: 'history-system', method: 'GET', pattern: '_history', level: 'system', scope: 's', handler: history },
  { interaction: 'search-system', method: 'GET', pattern: '', level: 'system', scope: 's', handler: search },
  { interaction: 'search-type', method: 'GET', pattern: ':type', level: 'type', scope: 's', handler: search },
  { interaction: 'search-type', method: 'POST', pattern: ':type/_search', level: 'type', scope: 's', handler: search },
  { interaction: 'search-type', method: 'GET', pattern: ':ctype/:cid/:type', level: 'type', scope: 's', handler: search },
  { interaction: 'operation', operation: 'validate', method: 'POST', pattern: ':type/$validate', level: 'type', scope: 'r', handler: validateOperation },
  { interaction: 'operation', operation: 'reindex', method: 'POST', pattern: '$reindex', level: 'system', scope: 'u', handler: reindexOperation },
  { interaction: 'operation', operation: 'audit-log', method: 'GET', pattern: '$audit-log', level: 'system', scope: 's', handler: auditLogOperation },
  { interaction: 'operation', operation: 'export', definition: BULK_EXPORT, method: 'GET', pattern: '$export', level: 'system', scope: 'r', handler: exportKickoff },
  { interaction: 'operation', operation: 'import', definition: CONTINUUM_IMPORT, method: 'POST', pattern: '$import', level: 'system', scope: 'c', handler: (req, ctx) => importOperation(handle)(req, ctx, {}) },
  { interaction: 'operation', operation: 'export-status', hidden: true, method: 'GET', pattern: '$export-status/:id', level: 'system', scope: 'r', handler: exportStatus },
  { interaction: 'operation', operation: 'export-status', hidden: true, method: 'DELETE', pattern: '$export-status/:id', level: 'system', scope: 'r', handler: exportCancel },
  { interaction: 'operation', operation: 'async-status', hidden: true, method: 'GET', pattern: '$async-status/:id', level: 'system', scope: 'none', handler: asyncStatusOperation },
  { interaction: 'operation', operation: 'async-status', hidden: true, method: 'DELETE', pattern: '$async-status/:id', level: 'system', scope: 'none', handler: asyncCancelOperation },
  { interaction: 'operation', operation: 'ccm-eligibility', definition: CCM_OPERATION('Patient-ccm-eligibility'), method: 'GET', pattern: '$ccm-eligibility', level: 'system', scope: 's', handler: systemEligibilityOperation },
  { interaction: 'operation', operation: 'ccm-eligibility', definition: CCM_OPERATION('Patient-ccm-eligibility'), method: 'POST', pattern: '$ccm-eligibility', level: 'system', scope: 's', handler: systemEligibilityOperation },
  { interaction: 'operation', operation: 'ccm-billing', definition: CCM_OPERATION('ccm-billing'), method: 'GET', pattern: '$ccm-billing', level: 'system', scope: 's', handler: systemBillingOperation },
  { interaction: 'operation', operation: 'ccm-billing', definition: CCM_OPERATION('ccm-billing'), method: 'POST', pattern: '$ccm-billing', level: 'system', scope: 's', handler: systemBillingOperation },
  { interaction: 'operation', operation: 'ccm-month-close', definition: CCM_OPERATION('ccm-month-close'), method: 'POST', pattern: '$ccm-month-close', level: 'system', scope: 'c', handler: (req, ctx) => monthCloseOperation(handle)(req, ctx, {}) },
  { interaction: 'operation', operation: 'ccm-worklist', definition: CCM_OPERATION('ccm-worklist'), method: 'GET', pattern: '$ccm-worklist', level: 'system', scope: 's', handler: worklistOperation },
  { interaction: 'operation', operation: 'export-file', hidden: true, method: 'GET', pattern: '$export-file/:id/:vid', level: 'system', scope: 'r', handler: exportFile },
  { interaction: 'operation', operation: 'export', definition: BULK_EXPORT_PATIENT, types: ['Patient'], method: 'GET', pattern: ':type/$export', level: 'type', scope: 'r', handler: exportKickoff },
  { interaction: 'operation', operation: 'export', definition: BULK_EXPORT_GROUP, types: ['Group'], method: 'GET', pattern: ':type/:id/$export', level: 'instance', scope: 'r', handler: exportKickoff },
  { interaction: 'operation', operation: 'reindex', method: 'POST', pattern: ':type/$reindex', level: 'type', scope: 'u', handler: reindexOperation },
  { interaction: 'operation', operation: 'ccm-enrollment-check', definition: CCM_OPERATION('CarePlan-ccm-enrollment-check'), types: ['CarePlan'], method: 'POST', pattern: ':type/$ccm-enrollment-check', level: 'type', scope: 'r', handler: enrollmentCheckOperation },
  { interaction: 'history-type', method: 'GET', pattern: ':type/_history', level: 'type', scope: 's', handler: history },
  { interaction: 'create', method: 'POST', pattern: ':type', level: 'type', scope: 'c', handler: create },
  { interaction: 'update', method: 'PUT', pattern: ':type', level: 'type', scope: 'u', handler: conditionalUpdate },
  { interaction: 'delete', method: 'DELETE', pattern: ':type', level: 'type', scope: 'd', handler: conditionalDelete },
  { interaction: 'read', method: 'GET', pattern: ':type/:id', level: 'instance', scope: 'r', handler: read },
  { interaction: 'update', method: 'PUT', pattern: ':type/:id', level: 'instance', scope: 'u', handler: update },
  { interaction: 'patch', method: 'PATCH', pattern: ':type/:id', level: 'instance', scope: 'u', handler: patch },
  { interaction: 'delete', method: 'DELETE', pattern: ':type/:id', level: 'instance', scope: 'd', handler: deleteInteraction },
  { interaction: 'history-instance', method: 'GET', pattern: ':type/:id/_history', level: 'instance', scope: 'r', handler: history },
  { interaction: 'vread', method: 'GET', pattern: ':type/:id/_history/:vid', level: 'instance', scope: 'r', handler: vread },
  { interaction: 'operation', operation: 'validate', method: 'POST', pattern: ':type/:id/$validate', level: 'instance', scope: 'r', handler: validateOperation },
  { interaction: 'operation', operation: 'get-ws-binding-token', definition: WS_BINDING_TOKEN, types: ['Subscription'], method: 'GET', pattern: ':type/:id/$get-ws-binding-token', level: 'instance', scope: 'r', handler: wsBindingTokenOperation },
  { interaction: 'operation', operation: 'get-ws-binding-token', definition: WS_BINDING_TOKEN, types: ['Subscription'], method: 'POST', pattern: ':type/:id/$get-ws-binding-token', level: 'instance', scope: 'r', handler: wsBindingTokenOperation },
  { interaction: 'operation', operation: 'execute', definition: BOT_EXECUTE, types: ['Library'], method: 'POST', pattern: ':type/:id/$execute', level: 'instance', scope: 'c', handler: executeOperation },
  { interaction: 'operation', operation: 'ccm-eligibility', definition: CCM_OPERATION('Patient-ccm-eligibility'), types: ['Patient'], method: 'GET', pattern: ':type/:id/$ccm-eligibility', level: 'instance', scope: 'r', handler: patientEligibilityOperation },
  { interaction: 'operation', operation: 'ccm-eligibility', definition: CCM_OPERATION('Patient-ccm-eligibility'), types: ['Patient'], method: 'POST', pattern: ':type/:id/$ccm-eligibility', level: 'instance', scope: 'r', handler: patientEligibilityOperation },
  { interaction: 'operation', operation: 'ccm-care-plan', definition: CCM_OPERATION('Patient-ccm-care-plan'), types: ['Patient'], method: 'GET', pattern: ':type/:id/$ccm-care-plan', level: 'instance', scope: 'r', handler: carePlanDocumentOperation },
  { interaction: 'operation', operation: 'ccm-care-plan', definition: CCM_OPERATION('Patient-ccm-care-plan'), types: ['Patient'], method: 'POST', pattern: ':type/:id/$ccm-care-plan', level: 'instance', scope: 'r', handler: carePlanDocumentOperation },
  { interaction: 'operation', operation: 'ccm-billing', definition: CCM_OPERATION('ccm-billing'), types: ['Patient'], method: 'GET', pattern: ':type/:id/$ccm-billing', level: 'instance', scope: 'r', handler: patientBillingOperation },
  { interaction: 'operation', operation: 'ccm-billing', definition: CCM_OPERATION('ccm-billing'), types: ['Patient'], method: 'POST', pattern: ':type/:id/$ccm-billing', level: 'instance', scope: 'r', handler: patientBillingOperation },
  { interaction: 'operation', operation: 'ccm-completeness', definition: CCM_OPERATION('CarePlan-ccm-completeness'), types: ['CarePlan'], method: 'GET', pattern: ':type/:id/$ccm-completeness', level: 'instance', scope: 'r', handler: completenessOperation },
  { interaction: 'operation', operation: 'ccm-completeness', definition: CCM_OPERATION('CarePlan-ccm-completeness'), types: ['CarePlan'], method: 'POST', pattern: ':type/:id/$ccm-completeness', level: 'instance', scope: 'r', handler: completenessOperation },
  { interaction: 'operation', operation: 'everything', definition: PATIENT_EVERYTHING, types: ['Patient'], method: 'GET', pattern: ':type/:id/$everything', level: 'instance', scope: 'r', handler: everythingOperation },
  { interaction: 'operation', operation: 'everything', definition: PATIENT_EVERYTHING, types: ['Patient'], method: 'POST', pattern: ':type/:id/$everything', level: 'instance', scope: 'r', handler: everythingOperation },
];

interface Match {
  row: InteractionRow;
  params: PathParams;
}

/** Whether a path segment starts with an upper-case letter, as resource types do (`_history`, `metadata`, `$op` never). */
function typeLike(s: string): boolean {
  const c = s.charCodeAt(0);
  return c >= 65 && c <= 90;
}

/**
 * The interaction rows by their number of path segments, each with its pattern split once (routing
 * split every row's pattern for every request: an array per row, ~2 % of a read's CPU).
 */
const ROWS_BY_LENGTH: readonly (readonly { row: InteractionRow; pattern: readonly string[] }[])[] = (() => {
  const out: { row: InteractionRow; pattern: readonly string[] }[][] = [];
  for (const row of INTERACTIONS) {
    const pattern = row.pattern === '' ? [] : row.pattern.split('/');
    (out[pattern.length] ??= []).push({ row, pattern });
  }
  return out;
})();

function matchRow(pattern: readonly string[], segments: string[]): PathParams | undefined {
  const params: PathParams = {};
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i];
    const s = segments[i];
    if (p === ':type') {
      if (!typeLike(s)) {
        return undefined;
      }
      params.type = s;
    } else if (p === ':id') {
      if (s.startsWith('_') || s.startsWith('$')) {
        return undefined;
      }
      params.id = s;
    } else if (p === ':vid') {
      params.vid = s;
    } else if (p === ':ctype') {
      if (!typeLike(s)) {
        return undefined;
      }
      params.compartment = { type: s, id: '' };
    } else if (p === ':cid') {
      if (s.startsWith('_') || s.startsWith('$')) {
        return undefined;
      }
      (params.compartment as { type: string; id: string }).id = s;
    } else if (p !== s) {
      return undefined;
    }
  }
  return params;
}

/** Finds the interaction for a method and path; throws 404/405 when there is none. */
export function route(method: FhirRequest['method'], path: string): Match {
  const segments = path === '' ? [] : path.split('/');
  const lookup = method === 'HEAD' ? 'GET' : method;
  let pathMatched = false;
  let otherType: { row: InteractionRow; type: string } | undefined;
  for (const { row, pattern } of ROWS_BY_LENGTH[segments.length] ?? []) {
    const params = matchRow(pattern, segments);
    if (!params) {
      continue;
    }
    // An operation defined for some types only (`Patient/{id}/$everything`) does not apply to others.
    if (row.types && params.type && !row.types.includes(params.type)) {
      otherType ??= { row, type: params.type };
      continue;
    }
    pathMatched = true;
    if (row.method === lookup) {
      return { row, params };
    }
  }
  if (!pathMatched && otherType && isResourceType(otherType.type)) {
    throw new FhirError('invalid', `$${otherType.row.operation as string} is defined for ${(otherType.row.types as string[]).join(', ')}, not ${otherType.type}`);
  }
  if (pathMatched || otherType) {
    if (/^[A-Z]/.test(segments[0] ?? '') && !isResourceType(segments[0])) {
      throw new FhirError('not-found', operationOutcome('error', 'not-supported', `Unknown resource type '${segments[0]}'`));
    }
    throw new FhirError('method-not-allowed', `${method} is not allowed on '/${path}'`);
  }
  const op = segments.find((s) => s.startsWith('$'));
  throw new FhirError('not-found', op ? `Unknown operation '${op}' at '/${path}'` : `No FHIR endpoint at '/${path}'`);
}

/** Handles one FHIR request in process (and audits it, when the context says so). */
export async function handle(req: FhirRequest, ctx: RequestContext): Promise<FhirResponse> {
  const path = req.path.replace(/^\/+|\/+$/g, '');
  let match: Match | undefined;
  try {
    match = route(req.method, path);
    const { row, params } = match;
    // The interaction table says which scope letter each interaction needs; what the caller may
    // see within that is the guarded store's business (ctx.store).
    if (ctx.access && row.scope !== 'none') {
      ctx.access.require(row.scope, params.type);
    }
    const out = await row.handler({ ...req, path }, ctx, params);
    ctx.audit?.record(auditRow(ctx, req, match, out.status, out));
    return out;
  } catch (err) {
    ctx.audit?.record(auditRow(ctx, req, match, err instanceof FhirError ? STATUS_BY_CATEGORY[err.category] : 500, undefined, err));
    throw err;
  }
}

const ACTION: Record<string, AuditRow['action']> = {
  create: 'C',
  read: 'R',
  vread: 'R',
  'history-instance': 'R',
  'history-type': 'R',
  'history-system': 'R',
  'search-type': 'R',
  'search-system': 'R',
  capabilities: 'R',
  update: 'U',
  patch: 'U',
  delete: 'D',
};

/** The audit row of one interaction: who, what, on which resource and patient, and how it ended. */
export function auditRow(ctx: RequestContext, req: FhirRequest, match: Match | undefined, status: number, out?: FhirResponse, err?: unknown): AuditRow {
  const principal = ctx.access?.principal;
  let interaction = match ? (match.row.operation ? `operation:${match.row.operation}` : match.row.interaction) : 'unknown';
  if (interaction === 'transaction' && (req.body as { type?: unknown } | undefined)?.type === 'batch') {
    interaction = 'batch'; // one route serves both Bundle types
  }
  const p = match?.params;
  let entity = p?.compartment ? `${p.compartment.type}/${p.compartment.id}` : p?.type && p.id ? `${p.type}/${p.id}` : p?.type;
  if (out?.location) {
    entity = out.location.replace(/\/_history\/.*$/, '');
  }
  return {
    recorded: ctx.now().toISOString(),
    category: 'rest',
    interaction,
    action: ACTION[match?.row.interaction ?? ''] ?? 'E',
    outcome: status < 400 ? '0' : status < 500 ? '4' : '8',
    status,
    clientId: principal?.clientId,
    fhirUser: principal?.fhirUser,
    patient: principal?.patient ?? patientOf(entity, out),
    entity,
    detail: err instanceof Error ? `${req.method} ${req.path}: ${err.message}`.slice(0, 500) : `${req.method} ${req.path}`.slice(0, 500),
  };
}

/** The patient an interaction concerns, when the entity or a returned resource names one. */
function patientOf(entity: string | undefined, out: FhirResponse | undefined): string | undefined {
  if (entity?.startsWith('Patient/')) {
    return entity.slice('Patient/'.length).split('/')[0];
  }
  // A returned resource's subject / patient reference (cheap: the serialised text, no parsing).
  const json = out?.json;
  // Not a Bundle's: a search's first entry does not say whom the whole search concerned.
  if (json && !json.startsWith('{"resourceType":"Bundle"')) {
    const m = /"(?:subject|patient|beneficiary)":\{"reference":"Patient\/([A-Za-z0-9\-.]{1,64})"/.exec(json);
    return m?.[1];
  }
  return undefined;
}
