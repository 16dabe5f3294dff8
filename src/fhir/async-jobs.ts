/**
 * The FHIR asynchronous request pattern (http://hl7.org/fhir/R4/async.html) for operations that may
 * run long (system-level `$ccm-eligibility`, `$import`): with `Prefer: respond-async` the operation
 * answers 202 with `Content-Location: {base}/$async-status/{id}`; polling that URL answers 202 with
 * `X-Progress` while the work runs, then 200 with a `batch-response` Bundle whose one entry is the
 * operation's answer (or the error status with its OperationOutcome); `DELETE` cancels (202).
 *
 * Jobs live in this process's memory: a restart loses them, and with several processes behind a
 * load balancer the status URL must reach the process that took the request (documented in
 * docs/architecture.md). Bulk Data export, which must survive restarts, has its own durable table.
 */
import { randomUUID } from 'node:crypto';
import type { Bundle } from '@medplum/fhirtypes';
import { FhirError, STATUS_BY_CATEGORY, operationOutcome } from '../errors';
import type { AsyncJobRunner, FhirResponse, JobControl } from './types';

interface Job {
  id: string;
  owner: string;
  request: string;
  progress: string;
  started: Date;
  abort: AbortController;
  done?: { at: number; response: FhirResponse };
}

export interface AsyncJobsOptions {
  /** How long a finished job's answer stays available. Default one hour. */
  keepMs: number;
  /** How many unfinished jobs one owner may have at once. Default 2. */
  perOwner: number;
}

export class AsyncJobs implements AsyncJobRunner {
  private readonly jobs = new Map<string, Job>();
  private readonly options: AsyncJobsOptions;

  constructor(
    private readonly now: () => Date,
    options: Partial<AsyncJobsOptions> = {},
  ) {
    this.options = { keepMs: 3_600_000, perOwner: 2, ...options };
  }

  /**
   * Starts `work` in the background and answers the 202 that points at its status. `owner` (the
   * client) is the only caller that may poll or cancel it; `request` is the original request line.
   */
  start(owner: string, request: string, baseUrl: string, work: (control: JobControl) => Promise<FhirResponse>): FhirResponse {
    this.expire();
    const running = [...this.jobs.values()].filter((j) => j.owner === owner && !j.done).length;
    if (running >= this.options.perOwner) {
      const err = new FhirError('too-many-requests', `${running} asynchronous requests of this client are still running; wait for one to finish or cancel it`);
      err.headers['Retry-After'] = '10';
      throw err;
    }
    const job: Job = { id: randomUUID(), owner, request, progress: 'queued', started: this.now(), abort: new AbortController() };
    this.jobs.set(job.id, job);
    const control: JobControl = {
      progress: (text) => {
        job.progress = text;
      },
      signal: job.abort.signal,
    };
    // The work starts on the next turn so that the 202 goes out first.
    setImmediate(() => {
      work(control).then(
        (response) => this.finish(job, response),
        (err: unknown) => this.finish(job, errorResponse(err)),
      );
    });
    return { status: 202, headers: { 'Content-Location': `${baseUrl}/$async-status/${job.id}` }, resource: operationOutcome('information', 'informational', `Accepted: ${request}`) };
  }

  /** GET on the status URL. */
  status(id: string, owner: string): FhirResponse {
    const job = this.find(id, owner);
    if (!job.done) {
      return { status: 202, headers: { 'X-Progress': job.progress, 'Retry-After': '1' } };
    }
    const answer = job.done.response;
    if (answer.status >= 400) {
      return answer;
    }
    const bundle: Bundle = {
      resourceType: 'Bundle',
      type: 'batch-response',
      timestamp: new Date(job.done.at).toISOString(),
      entry: [{ resource: answer.resource, response: { status: String(answer.status) } }],
    };
    return { status: 200, resource: bundle };
  }

  /** DELETE on the status URL: stops the work (if running) and forgets the job. */
  cancel(id: string, owner: string): FhirResponse {
    const job = this.find(id, owner);
    job.abort.abort();
    this.jobs.delete(id);
    return { status: 202, resource: operationOutcome('information', 'informational', `Asynchronous request ${id} cancelled`) };
  }

  private find(id: string, owner: string): Job {
    this.expire();
    const job = this.jobs.get(id);
    if (!job || job.owner !== owner) {
      throw new FhirError('not-found', `No asynchronous request '${id}' (finished answers are kept ${Math.round(this.options.keepMs / 60_000)} minutes)`);
    }
    return job;
  }

  private finish(job: Job, response: FhirResponse): void {
    if (this.jobs.get(job.id) === job) {
      job.done = { at: this.now().getTime(), response };
      job.progress = 'complete';
    }
  }

  private expire(): void {
    const cutoff = this.now().getTime() - this.options.keepMs;
    for (const [id, job] of this.jobs) {
      if (job.done && job.done.at < cutoff) {
        this.jobs.delete(id);
      }
    }
  }
}

function errorResponse(err: unknown): FhirResponse {
  if (err instanceof FhirError) {
    return { status: STATUS_BY_CATEGORY[err.category], resource: err.outcome };
  }
  return { status: 500, resource: operationOutcome('error', 'exception', `The asynchronous request failed: ${err instanceof Error ? err.message : String(err)}`) };
}
