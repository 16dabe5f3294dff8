/**
 * A test harness for bots: an in-memory Continuum (embedded store, nothing on disk) where a bot
 * can be run two ways.
 *
 * - `run(handler, event)`: calls the handler in this process, with a context bound to the bot's
 *   scopes over the test store. Breakpoints and stack traces work as in any unit test.
 * - `deploy(dir)` then writes through `fhir` and `settle()`: the real path (bundle, sandbox,
 *   triggers, queue), for what only the server can show (criteria, conditions, retries).
 *
 * `fhir` is an all-access client to arrange data and check results.
 */
import type { Principal } from '../auth/policy';
import { createContinuum, type Continuum } from '../server';
import { FhirClientError, inProcessClient } from './client';
import { deployBot, type DeployReport } from './deploy';
import type { BotContext, BotEvent, BotFhirClient, BotHandler } from './types';
import { basename, resolve } from 'node:path';

export interface BotHarness {
  /** All-access client (system/*.cruds) over the test store. */
  fhir: BotFhirClient;
  /** The server under the harness (store, runtime, audit). */
  continuum: Continuum;
  /**
   * Runs `handler` in process as the bot `name` with `scope`. Log lines are collected in `log`; a
   * pre-commit refusal is the returned OperationOutcome, as the server would see it.
   */
  run<C = Record<string, unknown>>(
    handler: BotHandler<C>,
    event: Partial<BotEvent> & { trigger: BotEvent['trigger'] },
    options?: { scope?: string; name?: string; config?: C; env?: Record<string, string> },
  ): Promise<{ value: unknown; log: string[] }>;
  /** Deploys a bot folder (bundle, Library, Subscriptions) into the test server. */
  deploy(dir: string): Promise<DeployReport>;
  /** Waits until every queued post-commit run has finished. */
  settle(): Promise<void>;
  close(): Promise<void>;
}

/** Starts a harness; `now` fixes the clock the server and the bots see. */
export async function createBotHarness(options: { now?: () => Date } = {}): Promise<BotHarness> {
  const baseUrl = 'http://bots.test';
  const continuum = await createContinuum({ memory: true, baseUrl, now: options.now, bots: { retryBaseMs: 10, pollMs: 50, scheduler: false } });
  const admin = inProcessClient({ ...continuum.context(baseUrl, { clientId: 'harness', scope: 'system/*.cruds' }), audit: continuum.audit });
  return {
    fhir: admin,
    continuum,
    async run(handler, event, runOptions = {}) {
      const name = runOptions.name ?? 'test-bot';
      const principal: Principal = { clientId: `bot:${name}`, scope: runOptions.scope ?? 'system/*.cruds' };
      const log: string[] = [];
      const line =
        (level: string) =>
        (...args: unknown[]): void => {
          log.push(`${level} ${args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' ')}`);
        };
      const bot = { id: `bot-${name}`, name };
      const now = (options.now ?? ((): Date => new Date()))();
      const ctx: BotContext<NonNullable<typeof runOptions.config>> = {
        bot,
        config: (runOptions.config ?? {}) as NonNullable<typeof runOptions.config>,
        env: Object.freeze({ ...(runOptions.env ?? {}) }),
        now: () => new Date(now),
        log: { debug: line('debug'), info: line('info'), warn: line('warn'), error: line('error') },
        fhir: inProcessClient({ ...continuum.context(baseUrl, principal), audit: continuum.audit }),
      };
      // The event crosses a JSON boundary in the server too: the handler gets plain data.
      const value = await handler(JSON.parse(JSON.stringify({ ...event, bot })) as BotEvent, ctx);
      return { value, log };
    },
    deploy: (dir) => deployBot(resolve(dir), basename(resolve(dir)), continuum.bots),
    settle: () => continuum.bots.idle(),
    close: () => continuum.close(),
  };
}

export { FhirClientError };
