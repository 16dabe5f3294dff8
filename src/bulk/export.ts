/**
 * Bulk Data Access 2.0 `$export` (system, `Patient` and `Group/[id]` level):
 *
 *   kick-off  GET [base]/$export, [base]/Patient/$export, [base]/Group/[id]/$export
 *             with `Prefer: respond-async` -> 202, Content-Location: [base]/$export-status/[job]
 *   status    GET    [base]/$export-status/[job] -> 202 + X-Progress, then 200 + the manifest
 *   cancel    DELETE [base]/$export-status/[job] -> 202
 *   files     GET    [base]/$export-file/[job]/[type] -> NDJSON, streamed
 *
 * A job is a row (export_job): the snapshot instant (transactionTime), the types and filters. The
 * background runner only checks which types have resources (the manifest lists those, without
 * counts, which are optional); the files are not stored but read from the snapshot when downloaded,
 * page by page, so no type is ever held in memory and a restart loses nothing (the job resumes).
 * Only the client that started a job sees it; it needs unrestricted read and search on every type
 * it exports (Backend Services `system/*.rs`), and one client runs one export at a time (429).
 */
import { randomUUID } from 'node:crypto';
import type { Group } from '@medplum/fhirtypes';
import { badRequest, FhirError, forbidden, notFound, operationOutcome } from '../errors';
import { instantParam, requireId } from '../fhir/common';
import type { FhirResponse, Handler, RequestContext } from '../fhir/types';
import type { SearchParser } from '../search/parse';
import type { ExportJob, Store } from '../store/api';
import { exportParams, typeFiltersOf } from './params';

const PAGE = 1000;
/** Rows looked at per query when checking that a type has resources. */
const PROBE_PAGE = 500;
const LEASE_MS = 30_000;

export interface ExportOptions {
  /** How long a completed export's files stay available (ms). */
  retentionMs: number;
}

export const DEFAULT_EXPORT_OPTIONS: ExportOptions = { retentionMs: 60 * 60 * 1000 };

const clientOf = (ctx: RequestContext): string => ctx.access?.principal.clientId ?? 'server';

/** Kick-off at the three levels (the router passes the level through params.type / params.id). */
export const exportKickoff: Handler = async (req, ctx, params) => {
  if (!req.preferAsync) {
    throw badRequest('$export runs asynchronously: send Prefer: respond-async');
  }
  const level: ExportJob['params']['level'] = params.type === undefined ? 'system' : params.type === 'Patient' && params.id === undefined ? 'patient' : 'group';
  if (params.type !== undefined && params.type !== 'Patient' && params.type !== 'Group') {
    throw badRequest(`$export is defined for the system, Patient and Group/[id], not ${params.type}`);
  }
  if (params.type === 'Group' && params.id === undefined) {
    throw badRequest('A group-level export names the group: Group/[id]/$export');
  }
  const parser = ctx.searchParser(false);
  const p = exportParams(req.query, level, parser, instantParam);
  let patients: string[] | undefined;
  if (level === 'group') {
    const groupId = requireId(params.id);
    const group = await ctx.store.read('Group', groupId);
    if (!group?.json || group.deleted) {
      throw notFound(`Group/${groupId} is not known`);
    }
    patients = ((JSON.parse(group.json) as Group).member ?? [])
      .map((m) => /^Patient\/([A-Za-z0-9\-.]{1,64})$/.exec(m.entity?.reference ?? '')?.[1])
      .filter((id): id is string => id !== undefined);
  }
  // Exports are for callers who may see everything they export (a backend service).
  const refused = p.types.filter((t) => ctx.access && (!ctx.access.allows('r', t) || !ctx.access.allows('s', t) || ctx.access.filter(t, 'r') !== undefined));
  if (refused.length > 0) {
    throw forbidden(`Exporting needs unrestricted read and search access (system/*.rs) to every exported type; missing: ${refused.slice(0, 10).join(', ')}${refused.length > 10 ? ', ...' : ''}`);
  }
  const clientId = clientOf(ctx);
  if ((await ctx.store.exportJobs.active(clientId)).length > 0) {
    const err = new FhirError('too-many-requests', operationOutcome('error', 'throttled', 'This client already has an export running; poll or cancel it before starting another'));
    err.headers['Retry-After'] = '30';
    throw err;
  }
  const job: ExportJob = {
    id: randomUUID(),
    clientId,
    status: 'accepted',
    request: `${ctx.baseUrl}/${req.path}${queryString(req.query)}`,
    params: { ...p, groupId: level === 'group' ? params.id : undefined, patients },
    transactionTime: ctx.now().toISOString(),
    progress: 'queued',
    createdAt: ctx.now().toISOString(),
  };
  await ctx.store.exportJobs.create(job);
  ctx.exportRunner?.kick(job.id);
  return { status: 202, headers: { 'Content-Location': `${ctx.baseUrl}/$export-status/${job.id}` } };
};

function queryString(query: Record<string, string[]>): string {
  const parts = Object.entries(query).flatMap(([k, vs]) => vs.map((v) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`));
  return parts.length ? `?${parts.join('&')}` : '';
}

/** The job, if it exists, is live and belongs to the caller (else 404: other clients' jobs do not exist). */
async function ownJob(ctx: RequestContext, id: string | undefined): Promise<ExportJob> {
  const job = id === undefined ? undefined : await ctx.store.exportJobs.get(id);
  if (!job || job.clientId !== clientOf(ctx)) {
    throw notFound(`No export job '${id ?? ''}' (unknown, expired, cancelled or another client's)`);
  }
  return job;
}

export const exportStatus: Handler = async (_req, ctx, params): Promise<FhirResponse> => {
  const job = await ownJob(ctx, params.id);
  switch (job.status) {
    case 'accepted':
    case 'in-progress':
      return { status: 202, headers: { 'X-Progress': job.progress ?? job.status, 'Retry-After': '1' } };
    case 'failed':
      throw new FhirError('internal', operationOutcome('error', 'exception', `The export failed: ${job.error ?? 'unknown error'}`));
    case 'completed': {
      const manifest = {
        transactionTime: job.transactionTime,
        request: job.request,
        requiresAccessToken: true,
        output: (job.output ?? []).map((o) => ({ type: o.type, url: `${ctx.baseUrl}/$export-file/${job.id}/${o.type}`, ...(o.count === undefined ? {} : { count: o.count }) })),
        error: [],
      };
      const headers: Record<string, string> = job.expiresAt ? { Expires: new Date(job.expiresAt).toUTCString() } : {};
      return { status: 200, body: JSON.stringify(manifest), contentType: 'application/json', headers };
    }
    case 'cancelled':
      throw notFound('The export was cancelled');
  }
};

export const exportCancel: Handler = async (_req, ctx, params) => {
  const job = await ownJob(ctx, params.id);
  await ctx.store.exportJobs.update(job.id, { status: 'cancelled' });
  return { status: 202 };
};

export const exportFile: Handler = async (_req, ctx, params) => {
  const job = await ownJob(ctx, params.id);
  const type = params.vid as string;
  if (job.status !== 'completed' || !(job.output ?? []).some((o) => o.type === type)) {
    throw notFound(`The export has no file for ${type}`);
  }
  const filters = typeFiltersOf(job, type, ctx.searchParser(false), job.params.patients);
  const store = ctx.store;
  return {
    status: 200,
    contentType: 'application/fhir+ndjson',
    stream: async (write) => {
      let afterId: string | undefined;
      do {
        const page = await store.snapshot({ resourceType: type, at: job.transactionTime, since: job.params.since, filters, afterId, count: PAGE });
        if (page.json.length > 0) {
          await write(page.json.join('\n') + '\n');
        }
        afterId = page.nextAfterId;
      } while (afterId !== undefined);
    },
  };
};

/**
 * Runs queued export jobs in the background: the ones kicked off here at once, and every few
 * seconds any job whose lease lapsed (a process that died mid-job, or this one restarting).
 */
export class ExportRunner {
  private readonly owner = `${process.pid}-${randomUUID().slice(0, 8)}`;
  private timer?: NodeJS.Timeout;
  private readonly running = new Set<string>();
  private stopped = false;

  constructor(
    private readonly store: Store,
    private readonly parser: () => SearchParser,
    private readonly options: ExportOptions,
    private readonly now: () => Date,
    private readonly logError: (err: unknown, where: string) => void,
  ) {}

  start(pollMs = 2000): void {
    this.timer = setInterval(() => void this.sweep(), pollMs);
    this.timer.unref();
    void this.sweep();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) {
      clearInterval(this.timer);
    }
  }

  kick(id: string): void {
    void this.run(id);
  }

  private async sweep(): Promise<void> {
    try {
      await this.store.exportJobs.purgeExpired();
      for (const job of await this.store.exportJobs.orphans()) {
        void this.run(job.id);
      }
    } catch (err) {
      if (!this.stopped) {
        this.logError(err, 'export sweep');
      }
    }
  }

  private async run(id: string): Promise<void> {
    if (this.running.has(id) || this.stopped) {
      return;
    }
    this.running.add(id);
    try {
      if (!(await this.store.exportJobs.claim(id, this.owner, LEASE_MS))) {
        return;
      }
      const job = await this.store.exportJobs.get(id);
      if (!job) {
        return;
      }
      await this.store.exportJobs.update(id, { status: 'in-progress', progress: 'starting' });
      // The job only finds which types hold resources at transactionTime (a small query each,
      // usually one page): the files are read when downloaded, so nothing here scales with the
      // number of resources, and interactive requests barely notice a running export.
      const output: { type: string; count?: number }[] = [];
      let leaseAt = Date.now();
      for (const [i, type] of job.params.types.entries()) {
        const filters = typeFiltersOf(job, type, this.parser(), job.params.patients);
        let afterId: string | undefined;
        let found = false;
        do {
          const page = await this.store.snapshotCount({ resourceType: type, at: job.transactionTime, since: job.params.since, filters, afterId, count: PROBE_PAGE });
          found = page.count > 0;
          afterId = page.nextAfterId;
        } while (!found && afterId !== undefined);
        if (found) {
          output.push({ type });
        }
        if (Date.now() - leaseAt > LEASE_MS / 3) {
          // Renew the lease, report progress, and notice a cancellation.
          leaseAt = Date.now();
          const current = await this.store.exportJobs.get(id);
          if (!current || current.status === 'cancelled' || this.stopped || !(await this.store.exportJobs.claim(id, this.owner, LEASE_MS))) {
            return;
          }
          await this.store.exportJobs.update(id, { progress: `${i + 1} of ${job.params.types.length} types checked` });
        }
        // Let interactive requests in between types.
        await new Promise((resolve) => setImmediate(resolve));
      }
      // get() does not return cancelled jobs (and update() would not touch them anyway).
      const current = await this.store.exportJobs.get(id);
      if (!current || current.status === 'cancelled') {
        return;
      }
      await this.store.exportJobs.update(id, {
        status: 'completed',
        progress: `done: ${output.length} files`,
        output,
        expiresAt: new Date(this.now().getTime() + this.options.retentionMs).toISOString(),
      });
    } catch (err) {
      if (!this.stopped) {
        await this.store.exportJobs.update(id, { status: 'failed', error: err instanceof Error ? err.message : String(err) }).catch(() => undefined);
        try {
          this.logError(err, `export job ${id}`);
        } catch {
          // a logger that throws must not leave the job unfinished or the promise unhandled
        }
      }
    } finally {
      this.running.delete(id);
    }
  }
}
