/**
 * Wires the layers together: store -> FHIR core -> HTTP edge. Used by the CLI and by tests.
 */
import type { Express } from 'express';
import { DEFAULT_LIMITS, type Limits } from './config';
import type { RequestContext } from './fhir/types';
import { createApp } from './http/app';
import type { Store } from './store/api';
import { openStore, type StoreConfig } from './store/open';
import { createProfileValidator } from './validation/profiles';
import { warmUpSchema } from './validation/schema';

export interface ContinuumOptions extends StoreConfig {
  baseUrl?: string;
  limits?: Partial<Limits>;
  now?: () => Date;
  logError?: (err: unknown, where: string) => void;
}

export interface Continuum {
  app: Express;
  store: Store;
  /** A request context for in-process calls (import, bots, tests). */
  context(baseUrl?: string): RequestContext;
  close(): Promise<void>;
}

/** Opens the store, loads validation and returns the HTTP app and an in-process context. */
export async function createContinuum(options: ContinuumOptions): Promise<Continuum> {
  const store = await openStore(options);
  warmUpSchema();
  const limits: Limits = { ...DEFAULT_LIMITS, ...(options.limits ?? {}) };
  const profiles = createProfileValidator();
  const now = options.now ?? ((): Date => new Date());
  const context = (baseUrl = options.baseUrl ?? 'http://localhost'): RequestContext => ({
    store,
    baseUrl,
    limits,
    now,
    validateProfiles: (r) => profiles.validate(r),
  });
  const app = createApp(context, {
    baseUrl: options.baseUrl,
    maxBodyBytes: limits.maxBodyBytes,
    maxJsonDepth: limits.maxJsonDepth,
    logError: options.logError ?? ((err, where) => console.error(`[continuum] 500 on ${where}:`, err)),
  });
  return { app, store, context, close: () => store.close() };
}
