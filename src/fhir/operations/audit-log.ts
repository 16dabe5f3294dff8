import type { Bundle } from '@medplum/fhirtypes';
import { toAuditEvent } from '../../audit/audit-event';
import { badRequest, forbidden } from '../../errors';
import { pageUrl } from '../bundle';
import { countParam, instantParam, param, requireId } from '../common';
import { checkParams } from '../params';
import type { Handler } from '../types';

/**
 * $audit-log: `GET [base]/$audit-log?patient=&client=&_since=&_count=` reads the audit trail as
 * AuditEvent resources, oldest first, with `next` links (a sequence cursor). Needs search access
 * to AuditEvent; a caller bound to one patient sees only the events about that patient.
 */
export const auditLogOperation: Handler = async (req, ctx) => {
  checkParams(req, ['patient', 'client', '_since', '_count', '_cursor']);
  const access = ctx.access;
  access?.require('s', 'AuditEvent');
  let patient = param(req, 'patient');
  if (patient !== undefined) {
    patient = requireId(patient.replace(/^Patient\//, ''));
  }
  if (access && access.filter('AuditEvent', 's') !== undefined) {
    // Bound to a patient (or a granular rule): only that patient's events.
    const own = access.principal.patient ?? (access.principal.fhirUser?.startsWith('Patient/') ? access.principal.fhirUser.slice(8) : undefined);
    if (!own) {
      throw forbidden("The token's scopes allow reading the audit trail of one patient only, and it names none");
    }
    if (patient !== undefined && patient !== own) {
      return { status: 200, resource: { resourceType: 'Bundle', type: 'searchset', total: 0, entry: [] } satisfies Bundle };
    }
    patient = own;
  }
  const sinceRaw = param(req, '_since');
  const since = sinceRaw === undefined ? undefined : instantParam('_since', sinceRaw);
  const cursorRaw = param(req, '_cursor');
  if (cursorRaw !== undefined && !/^\d{1,18}-\d{1,6}$/.test(cursorRaw)) {
    throw badRequest(`_cursor '${cursorRaw}' is not a cursor this server issued`);
  }
  const count = countParam(req, ctx.limits.defaultCount, ctx.limits.maxCount);
  // Rows recorded a moment ago are still in memory: write them first, so the trail is complete.
  await ctx.audit?.flush();
  const client = param(req, 'client');
  const rows = await ctx.store.audit.query({ patient, clientId: client, since, after: cursorRaw, count: count + 1 });
  const page = rows.slice(0, count);
  const fixed: [string, string][] = [];
  for (const [k, v] of [['patient', patient], ['client', client], ['_since', sinceRaw]] as const) {
    if (v !== undefined) {
      fixed.push([k, v]);
    }
  }
  fixed.push(['_count', String(count)]);
  const link = [{ relation: 'self', url: pageUrl(ctx.baseUrl, '$audit-log', cursorRaw ? [...fixed, ['_cursor', cursorRaw]] : fixed) }];
  if (rows.length > count) {
    link.push({ relation: 'next', url: pageUrl(ctx.baseUrl, '$audit-log', [...fixed, ['_cursor', page[page.length - 1].seq as string]]) });
  }
  const bundle: Bundle = {
    resourceType: 'Bundle',
    type: 'searchset',
    link,
    entry: page.map((row) => ({ resource: toAuditEvent(row, ctx.baseUrl), search: { mode: 'match' } })),
  };
  return { status: 200, resource: bundle };
};
