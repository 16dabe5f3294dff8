/**
 * Wires the layers together: store -> FHIR core -> HTTP edge. Used by the CLI and by tests.
 */
import { join } from 'node:path';
import type { StructureDefinition } from '@medplum/fhirtypes';
import type { Express } from 'express';
import { DEFAULT_LIMITS, type Limits } from './config';
import type { RequestContext } from './fhir/types';
import { createApp } from './http/app';
import type { Store } from './store/api';
import { createRegistry } from './search/definitions';
import { extractIndexValues } from './search/extract';
import { openStore, type StoreConfig } from './store/open';
import type { ExtractedRows, Indexer } from './store/postgres/index-writer';
import { projectionCode, projector } from './store/projections';
import { CCM_PROJECTIONS } from './ccm/projections';
import { createProfileValidator } from './validation/profiles';
import { isResourceType, warmUpSchema } from './validation/schema';
import { SearchParser } from './search/parse';
import { applySearchParameter, checkSearchParameter, loadSearchParameterFiles, loadStoredSearchParameters } from './search/custom-parameters';
import { projectRoot } from './util/root';
import { AuthorizationServer, type AuthOptions, DEFAULT_AUTH_OPTIONS } from './auth/authorization-server';
import { guardStore } from './auth/guarded-store';
import { AuditLog } from './audit/audit-log';
import { DEFAULT_EXPORT_OPTIONS, ExportRunner, type ExportOptions } from './bulk/export';
import { AccessPolicy, type Principal } from './auth/policy';
import { BotRuntime, type BotRuntimeOptions } from './bots/runtime';
import { deployBots, type DeployReport } from './bots/deploy';
import { SubscriptionSockets } from './bots/websocket';
import type { Server } from 'node:http';
import { loadConformanceDirs } from './validation/conformance';
import { seedConformance } from './validation/seed';
import { handle } from './fhir/router';
import { CcmService, type CcmPolicy } from './ccm/service';
import { AsyncJobs } from './fhir/async-jobs';

export interface ContinuumOptions extends StoreConfig {
  baseUrl?: string;
  limits?: Partial<Limits>;
  now?: () => Date;
  logError?: (err: unknown, where: string) => void;
  /** Folders of conformance resources (StructureDefinitions, ValueSets, ...). Default: profiles/. */
  profileDirs?: string[];
  /** Token lifetimes and limits of the authorization server. */
  auth?: Partial<AuthOptions>;
  /** Bulk Data export settings (how long files stay available). */
  export?: Partial<ExportOptions>;
  /** Bot runtime settings (pool size, queue polling, retries, chain depth). */
  bots?: Partial<BotRuntimeOptions>;
  /** Folders of bots to deploy at start (`serve` passes bots/). */
  deployBots?: string[];
  /** CCM policy choices (ccm-domain.md marks them **policy**). */
  ccm?: Partial<CcmPolicy>;
  /**
   * Store the conformance resources of the profile folders at start so clients can read and search
   * them (default true; the test suite turns it off where exact resource counts matter).
   */
  seedConformance?: boolean;
}

export interface Continuum {
  app: Express;
  store: Store;
  /** The authorization server: clients, users, keys, tokens. */
  auth: AuthorizationServer;
  /** The audit trail's writer (flushes in batches; flushed on close). */
  audit: AuditLog;
  /** Bots and subscriptions: triggers, the job queue, scheduled and manual runs. */
  bots: BotRuntime;
  /** What the start-up deploy of `deployBots` did. */
  deployed: DeployReport[];
  /** Serves websocket Subscriptions on the HTTP server the app listens with. */
  attachWebSockets(server: Server): void;
  /**
   * A request context for in-process calls: the server's own (import) without a principal, or
   * bound to a principal's scopes and patient (bots, tests).
   */
  context(baseUrl?: string, principal?: Principal): RequestContext;
  /** Settles when the stored projections (src/store/projections.ts) are ready, or their backfill stopped or failed. */
  projectionsReady: Promise<void>;
  close(): Promise<void>;
}

/** Opens the store, loads validation and returns the HTTP app and an in-process context. */
export async function createContinuum(options: ContinuumOptions): Promise<Continuum> {
  const registry = createRegistry();
  const project = projector(CCM_PROJECTIONS, (p, err) => console.warn(`[continuum] projection ${p.name} failed: ${String(err)}`));
  const indexer: Indexer = (resource) => {
    const rows: ExtractedRows = extractIndexValues(resource, registry, {
      baseUrl: options.baseUrl,
      onError: (def, err) => console.warn(`[continuum] search parameter ${def.code} failed on ${resource.resourceType}: ${String(err)}`),
    });
    rows.projections = project(resource);
    return rows;
  };
  const store = await openStore(options, indexer);
  // Projections new to this database are backfilled in the background; until then their readers
  // read whole resources (src/store/projections.ts). Close stops it between batches.
  const backfill = new AbortController();
  let backfilled = 0;
  const projectionsReady = store
    .prepareProjections(
      CCM_PROJECTIONS.map((p) => ({ code: projectionCode(p), types: p.types })),
      { signal: backfill.signal, onProgress: (done) => (backfilled += done > 0 ? 1 : 0) },
    )
    .then((codes) => {
      if (codes.length > 0 && backfilled > 0) {
        console.warn(`[continuum] projections backfilled from stored resources: ${codes.join(', ')}`);
      }
    })
    .catch((err: unknown) => console.error('[continuum] projection backfill failed (readers keep reading whole resources):', err));
  const profileDirs = options.profileDirs ?? [join(projectRoot(), 'profiles')];
  for (const problem of [...loadSearchParameterFiles(registry, profileDirs), ...(await loadStoredSearchParameters(registry, store))]) {
    console.warn(`[continuum] search parameters: ${problem}`);
  }
  warmUpSchema();
  const limits: Limits = { ...DEFAULT_LIMITS, ...(options.limits ?? {}) };
  const conformance = loadConformanceDirs(profileDirs);
  const ccm = new CcmService(conformance.all('ConceptMap'), options.ccm);
  const profilesByType = new Map<string, string[]>();
  for (const sd of conformance.all('StructureDefinition')) {
    if (sd.url && sd.kind === 'resource' && sd.derivation === 'constraint' && sd.type) {
      profilesByType.set(sd.type, [...(profilesByType.get(sd.type) ?? []), sd.url]);
    }
  }
  const profiles = createProfileValidator({
    profileDirs,
    // StructureDefinitions stored through the API (newest version of that canonical URL).
    lookup: async (url) => {
      const found = await store.search({
        resourceType: 'StructureDefinition',
        filters: [{ kind: 'uri', code: 'url', mode: 'exact', values: [url] }],
        count: 10,
      });
      const newest = found.versions.sort((a, b) => b.lastUpdated.localeCompare(a.lastUpdated))[0];
      return newest?.json ? (JSON.parse(newest.json) as StructureDefinition) : undefined;
    },
  });
  const now = options.now ?? ((): Date => new Date());
  const asyncJobs = new AsyncJobs(now);
  const parserFor = (lenient: boolean) => (baseUrl: string) =>
    new SearchParser(registry, { lenient, baseUrl, defaultCount: limits.defaultCount, maxCount: limits.maxCount, isResourceType });
  const strictParser = parserFor(false);
  const lenientParser = parserFor(true);
  const logError = options.logError ?? ((err: unknown, where: string) => console.error(`[continuum] 500 on ${where}:`, err));
  const auditLog = new AuditLog(store.audit);
  const authOptions = { ...DEFAULT_AUTH_OPTIONS, ...(options.auth ?? {}) };
  // Access tokens live an hour at most, backend tokens five minutes, whatever the configuration says.
  authOptions.accessTokenSeconds = Math.min(authOptions.accessTokenSeconds, 3600);
  authOptions.backendTokenSeconds = Math.min(authOptions.backendTokenSeconds, 300);
  const auth = new AuthorizationServer(store, authOptions, now, logError, auditLog);
  await auth.init();
  // A token's policy and guarded store are made once and reused for its later requests (verified
  // tokens map to the same Principal object); a different base URL makes new ones.
  const policies = new WeakMap<Principal, { baseUrl: string; access: AccessPolicy; store: Store }>();
  // Every write of the FHIR core passes the bots' triggers (bots.store wraps the store with them).
  const baseUrl = options.baseUrl ?? 'http://localhost';
  const bots = new BotRuntime(
    {
      store,
      baseUrl,
      now,
      // A bot's requests: its own scopes, over the store it was given (a pre-commit bot's is the
      // transaction of the write that triggered it), audited like any client's.
      contextFor: (principal, base) => {
        const access = accessFor(principal, baseUrl).access;
        return { ...context(baseUrl), store: guardStore(base, access), access, audit: auditLog };
      },
      parser: () => strictParser(baseUrl),
      indexer: (r) => extractIndexValues(r, registry, { baseUrl: options.baseUrl }),
      audit: auditLog,
      logError,
    },
    options.bots,
  );
  const hooked = (): Store => bots.store;
  const accessFor = (principal: Principal, baseUrl: string): { access: AccessPolicy; store: Store } => {
    let hit = policies.get(principal);
    if (!hit || hit.baseUrl !== baseUrl) {
      const access = new AccessPolicy(principal, { registry, parser: strictParser(baseUrl), baseUrl });
      hit = { baseUrl, access, store: guardStore(hooked(), access) };
      policies.set(principal, hit);
    }
    return hit;
  };
  // A context is made per request: what does not depend on the request is made once.
  const botsApi: RequestContext['bots'] = { execute: (id, input, caller) => bots.execute(id, input, caller), bindingToken: (id, caller) => sockets.bindingToken(id, caller) };
  const validateProfiles: RequestContext['validateProfiles'] = (r) => profiles.validate(r);
  const supportedProfiles: RequestContext['supportedProfiles'] = (type) => profilesByType.get(type) ?? [];
  const conformanceChanged: RequestContext['conformanceChanged'] = ({ resource, deleted }) => {
    if (resource.resourceType === 'StructureDefinition') {
      profiles.invalidate();
    } else if (resource.resourceType === 'SearchParameter') {
      applySearchParameter(registry, resource, deleted);
    }
  };
  const context = (baseUrl = options.baseUrl ?? 'http://localhost', principal?: Principal, http?: Pick<RequestContext, 'audit' | 'exportRunner'>): RequestContext => {
    const guarded = principal ? accessFor(principal, baseUrl) : undefined;
    return {
      store: guarded ? guarded.store : hooked(),
      bots: botsApi,
      access: guarded?.access,
      baseUrl,
      limits,
      now,
      validateProfiles,
      ccm,
      asyncJobs,
      supportedProfiles,
      conformanceChanged,
      checkSearchParameter,
      searchParser: (lenient) => (lenient ? lenientParser(baseUrl) : strictParser(baseUrl)),
      audit: http?.audit,
      exportRunner: http?.exportRunner,
    };
  };
  if (options.seedConformance !== false) {
    const seeded = await seedConformance(
      [...(['CodeSystem', 'ValueSet', 'ConceptMap', 'StructureDefinition', 'SearchParameter', 'OperationDefinition'] as const).flatMap((t) => conformance.all(t))],
      context(baseUrl),
      handle,
    );
    seeded.problems.forEach((p) => console.warn(`[continuum] conformance: ${p}`));
  }
  const sockets = new SubscriptionSockets(store, bots, logError, bots.options.pollMs);
  await bots.start();
  const deployed: DeployReport[] = [];
  for (const dir of options.deployBots ?? []) {
    deployed.push(...(await deployBots(dir, bots)));
  }
  const exportRunner = new ExportRunner(store, () => strictParser(options.baseUrl ?? 'http://localhost'), { ...DEFAULT_EXPORT_OPTIONS, ...(options.export ?? {}) }, now, logError);
  exportRunner.start();
  // Requests over HTTP are audited; in-process work (the CLI import) is not.
  const served = { audit: auditLog, exportRunner };
  const app = createApp((baseUrl, principal) => context(baseUrl, principal, served), {
    baseUrl: options.baseUrl,
    maxBodyBytes: limits.maxBodyBytes,
    maxJsonDepth: limits.maxJsonDepth,
    logError,
    authenticate: (token, baseUrl) => auth.authenticate(token, baseUrl),
    audit: auditLog,
    routes: { prefixes: AuthorizationServer.PATH_PREFIXES, router: (baseUrlOf) => auth.router(baseUrlOf) },
  });
  return {
    app,
    store,
    auth,
    audit: auditLog,
    bots,
    deployed,
    attachWebSockets: (server) => sockets.attach(server),
    context,
    projectionsReady,
    close: async () => {
      await sockets.close();
      await bots.stop();
      await exportRunner.stop();
      await auditLog.flush();
      backfill.abort();
      await projectionsReady;
      await store.close();
    },
  };
}
