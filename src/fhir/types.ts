/**
 * The FHIR core's request and response: plain data, no HTTP. The HTTP edge builds a FhirRequest
 * from Express; batch and transaction Bundles build one per entry; bots build them in process.
 */
import type { OperationOutcome, OperationOutcomeIssue, Resource } from '@medplum/fhirtypes';
import type { Store } from '../store/api';
import type { AuditLog } from '../audit/audit-log';
import type { Limits } from '../config';
import type { SearchParser } from '../search/parse';
import type { AccessPolicy } from '../auth/policy';
import type { CcmService } from '../ccm/service';

export type FhirMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export type PreferReturn = 'minimal' | 'representation' | 'OperationOutcome';

export interface FhirRequest {
  method: FhirMethod;
  /** Path below the FHIR base without leading or trailing slash: `Patient/123/_history/2`. */
  path: string;
  /** Query parameters, each name with all its values in order. */
  query: Record<string, string[]>;
  /** Parsed body (already checked for size, depth and dangerous keys). */
  body?: unknown;
  /** Media type of the body, lower-case without parameters (e.g. `application/json-patch+json`). */
  contentType?: string;
  ifMatch?: string;
  ifNoneExist?: string;
  ifNoneMatch?: string;
  ifModifiedSince?: string;
  preferReturn?: PreferReturn;
  /** `Prefer: handling=lenient|strict`. */
  preferHandling?: 'lenient' | 'strict';
  preferAsync?: boolean;
  /**
   * For a create inside a transaction Bundle: the id chosen before the entry ran, so that other
   * entries' `urn:uuid:` references could already point at it. Never set from HTTP.
   */
  assignedId?: string;
}

export interface FhirResponse {
  status: number;
  /** A resource or Bundle to send. */
  resource?: Resource;
  /** The same, already serialised (a stored version served as is). */
  json?: string;
  /** Relative location, e.g. `Patient/1/_history/1`; the edge makes it absolute. */
  location?: string;
  versionId?: string;
  lastModified?: string;
  /** An outcome for `Prefer: return=OperationOutcome` or a warning to attach. */
  outcome?: OperationOutcome;
  /** Extra headers (Content-Location of an async job, X-Progress, Retry-After, ...). */
  headers?: Record<string, string>;
  /** A body that is not a FHIR resource (a Bulk Data manifest), sent with `contentType`. */
  body?: string;
  /** A streamed body (NDJSON files): `write` resolves when the client has taken the chunk. */
  stream?: (write: (chunk: string) => Promise<void>) => Promise<void>;
  contentType?: string;
}

/** Everything a handler needs, passed explicitly (no globals, no config lookups deep inside). */
export interface RequestContext {
  /** The store as this caller may see it (see src/auth/guarded-store.ts). */
  store: Store;
  /** The caller's access rules; undefined for the server's own work (import, migrations). */
  access?: AccessPolicy;
  /** The bot runtime (`$execute`); undefined when bots are off. */
  bots?: {
    execute(libraryId: string, input: unknown, caller: RequestContext): Promise<FhirResponse>;
    /** `$get-ws-binding-token` of a websocket Subscription. */
    bindingToken(subscriptionId: string, caller: RequestContext): Promise<Resource>;
  };
  /** The CCM module (chronic-category table, policy); undefined when it is not loaded. */
  ccm?: CcmService;
  /** Profiles of a resource type this server loaded at start (CapabilityStatement supportedProfile). */
  supportedProfiles?: (type: string) => string[];
  /** Background jobs of the asynchronous request pattern (`Prefer: respond-async`). */
  asyncJobs?: AsyncJobRunner;
  /** Starts a queued Bulk Data export job in the background. */
  exportRunner?: { kick(id: string): void };
  /** Where each interaction's audit row goes (undefined: not audited, e.g. the CLI import). */
  audit?: AuditLog;
  /** Absolute FHIR base URL without trailing slash, e.g. `http://localhost:8080`. */
  baseUrl: string;
  limits: Limits;
  /** Clock, injectable in tests. */
  now: () => Date;
  /** Validates a resource against the profiles it claims that the server knows (empty: valid). */
  validateProfiles: (resource: Resource) => Promise<OperationOutcomeIssue[]>;
  /** The search parser (lenient: drop unknown parameters instead of refusing them). */
  searchParser: (lenient: boolean) => SearchParser;
  /** Told when a conformance resource (StructureDefinition, SearchParameter) was written or deleted. */
  conformanceChanged?: (change: { resource: Resource; deleted: boolean }) => void;
  /** Problems that would stop a SearchParameter from being used (empty: usable). */
  checkSearchParameter?: (resource: Resource) => OperationOutcomeIssue[];
}

/** What a job's work is given: a way to report progress and to notice cancellation. */
export interface JobControl {
  progress(text: string): void;
  readonly signal: AbortSignal;
}

/** The asynchronous request pattern's jobs (src/fhir/async-jobs.ts). */
export interface AsyncJobRunner {
  /** Starts `work` in the background; answers the 202 pointing at its status URL. */
  start(owner: string, request: string, baseUrl: string, work: (control: JobControl) => Promise<FhirResponse>): FhirResponse;
  status(id: string, owner: string): FhirResponse;
  cancel(id: string, owner: string): FhirResponse;
}

/** An interaction's implementation. Parameters from the path are in `params`. */
export type Handler = (req: FhirRequest, ctx: RequestContext, params: PathParams) => Promise<FhirResponse>;

export interface PathParams {
  type?: string;
  id?: string;
  vid?: string;
  operation?: string;
  /** For compartment searches: `Patient/123/Observation` -> { type: 'Patient', id: '123' }. */
  compartment?: { type: string; id: string };
}

/** FHIR interaction codes (R4 CapabilityStatement.rest.resource.interaction.code and rest.interaction.code). */
export type InteractionCode =
  | 'read'
  | 'vread'
  | 'update'
  | 'patch'
  | 'delete'
  | 'history-instance'
  | 'history-type'
  | 'create'
  | 'search-type'
  | 'transaction'
  | 'batch'
  | 'history-system'
  | 'search-system'
  | 'capabilities'
  | 'operation';

export type Level = 'system' | 'type' | 'instance';

/** SMART v2 scope letter the interaction needs (c r u d s); none for public endpoints. */
export type ScopeLetter = 'c' | 'r' | 'u' | 'd' | 's' | 'none';

/** A row of the interaction table (src/fhir/router.ts). */
export interface InteractionRow {
  interaction: InteractionCode;
  method: FhirMethod;
  /** Path pattern below the base: literal segments, `:type`, `:id`, `:vid`, `$op` for an operation name. */
  pattern: string;
  level: Level;
  scope: ScopeLetter;
  handler: Handler;
  /** For operations: the operation's name without `$`. */
  operation?: string;
  /** The OperationDefinition's canonical URL (default: the core Resource-<name>). */
  definition?: string;
  /** Plumbing of another operation (Bulk Data status and file URLs): not listed in /metadata. */
  hidden?: boolean;
  /** The resource types a type- or instance-level operation is defined for (default: all). */
  types?: string[];
}
