/**
 * Deploys a folder of bots: each `bots/<name>/` with an `index.ts` (the handler) and a `bot.json`
 * (its manifest) becomes a Library (`Library/bot-<name>`) and one Subscription per trigger
 * (`Subscription/bot-<name>-<n>`). Unchanged bots are left alone, so deploying twice writes
 * nothing; triggers dropped from the manifest are deleted.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Extension, Library, Subscription } from '@medplum/fhirtypes';
import type { ResourceLike, StoredVersion } from '../store/api';
import { BotCompileError, bundleBotDir } from './compile';
import { BOT_EXT, JAVASCRIPT, LIBRARY_TYPE_SYSTEM, SUBSCRIPTION_EXT, TYPESCRIPT } from './definition';
import type { BotRuntime } from './runtime';

/** A bot's `bot.json`. */
export interface BotManifest {
  /** Default: the folder's name. */
  name?: string;
  description?: string;
  /** SMART scopes the bot acts with, e.g. `system/Observation.rs system/Task.cu`. */
  scope: string;
  /** Cron expression for scheduled runs (UTC). */
  schedule?: string;
  timeoutMs?: number;
  memoryMb?: number;
  maxAttempts?: number;
  /** `network`, `env:NAME`. */
  grants?: string[];
  config?: unknown;
  /** `false` deploys the bot retired (it does not run). */
  active?: boolean;
  triggers?: {
    /** `Observation?code=...` */
    criteria: string;
    interactions?: ('create' | 'update' | 'delete')[];
    phase?: 'pre-commit' | 'post-commit';
    /** FHIRPath with %current and %previous. */
    condition?: string;
    maxAttempts?: number;
  }[];
}

export type Change = 'created' | 'updated' | 'unchanged' | 'removed';

/** What deploying one bot did. */
export interface DeployReport {
  name: string;
  library: Change;
  triggers: { id: string; change: Change }[];
}

/** A problem in a bot folder (message names the bot and the problem). */
export class DeployError extends Error {}

const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');

function readManifest(dir: string, folder: string): BotManifest {
  const file = join(dir, 'bot.json');
  if (!existsSync(file)) {
    throw new DeployError(`bot ${folder}: bot.json is missing (it declares the bot's scopes and triggers)`);
  }
  let m: BotManifest;
  try {
    m = JSON.parse(readFileSync(file, 'utf8')) as BotManifest;
  } catch (err) {
    throw new DeployError(`bot ${folder}: bot.json is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof m !== 'object' || m === null || typeof m.scope !== 'string') {
    throw new DeployError(`bot ${folder}: bot.json needs "scope" (the SMART scopes the bot acts with)`);
  }
  return m;
}

/** The Library and Subscriptions for a bot folder. */
export function resourcesFor(dir: string, folder: string): { library: Library; subscriptions: Subscription[] } {
  const m = readManifest(dir, folder);
  const name = m.name ?? folder;
  let bundled: { code: string; files: Record<string, string> };
  try {
    bundled = bundleBotDir(dir);
  } catch (err) {
    if (err instanceof BotCompileError) {
      throw new DeployError(`bot ${folder}: ${err.message.replace(/\n/g, `\nbot ${folder}: `)}`);
    }
    throw err;
  }
  const { code, files } = bundled;
  const exts: Extension[] = [{ url: BOT_EXT.scope, valueString: m.scope }];
  if (m.schedule) {
    exts.push({ url: BOT_EXT.schedule, valueString: m.schedule });
  }
  if (m.timeoutMs !== undefined) {
    exts.push({ url: BOT_EXT.timeout, valueInteger: m.timeoutMs });
  }
  if (m.memoryMb !== undefined) {
    exts.push({ url: BOT_EXT.memory, valueInteger: m.memoryMb });
  }
  if (m.maxAttempts !== undefined) {
    exts.push({ url: BOT_EXT.maxAttempts, valueInteger: m.maxAttempts });
  }
  for (const g of m.grants ?? []) {
    exts.push({ url: BOT_EXT.grant, valueString: g });
  }
  if (m.config !== undefined) {
    exts.push({ url: BOT_EXT.config, valueString: JSON.stringify(m.config) });
  }
  const id = `bot-${name}`;
  const library: Library = {
    resourceType: 'Library',
    id,
    extension: exts,
    name,
    title: name,
    status: m.active === false ? 'retired' : 'active',
    type: { coding: [{ system: LIBRARY_TYPE_SYSTEM, code: 'logic-library' }] },
    description: m.description,
    content: [
      ...Object.keys(files)
        .sort()
        .map((path) => ({ contentType: TYPESCRIPT, title: path, data: b64(files[path]) })),
      { contentType: JAVASCRIPT, title: 'bundle.js', data: b64(code) },
    ],
  };
  const subscriptions = (m.triggers ?? []).map((t, i): Subscription => {
    const sx: Extension[] = (t.interactions ?? []).map((c) => ({ url: SUBSCRIPTION_EXT.interaction, valueCode: c }));
    if (t.phase) {
      sx.push({ url: SUBSCRIPTION_EXT.phase, valueCode: t.phase });
    }
    if (t.condition) {
      sx.push({ url: SUBSCRIPTION_EXT.condition, valueString: t.condition });
    }
    if (t.maxAttempts !== undefined) {
      sx.push({ url: SUBSCRIPTION_EXT.maxAttempts, valueInteger: t.maxAttempts });
    }
    return {
      resourceType: 'Subscription',
      id: `${id}-${i + 1}`,
      extension: sx.length > 0 ? sx : undefined,
      status: 'active',
      reason: `Runs bot ${name}`,
      criteria: t.criteria,
      channel: { type: 'message', endpoint: `Library/${id}` },
    };
  });
  return { library, subscriptions };
}

/** Content without server-managed meta and undefined members, for comparison. */
function comparable(r: object): string {
  const { meta: _m, ...rest } = r as ResourceLike;
  return JSON.stringify(rest);
}

async function upsert(runtime: BotRuntime, resource: Library | Subscription): Promise<Change> {
  const store = runtime.store;
  const current = await store.read(resource.resourceType, resource.id as string);
  if (current?.json && comparable(JSON.parse(current.json) as object) === comparable(JSON.parse(JSON.stringify(resource)) as object)) {
    return 'unchanged';
  }
  const { created } = await store.transaction((w) => w.update(JSON.parse(JSON.stringify(resource)) as ResourceLike));
  return created || !current?.json ? 'created' : 'updated';
}

/** The bot folders under `dir` (folders with an index.ts), in name order. */
export function botFolders(dir: string): string[] {
  if (!existsSync(dir)) {
    return [];
  }
  return readdirSync(dir)
    .filter((f) => statSync(join(dir, f)).isDirectory() && existsSync(join(dir, f, 'index.ts')))
    .sort();
}

/**
 * Deploys every bot folder under `dir`. All are compiled and checked first, so a broken bot stops
 * the deploy before anything is written.
 */
export async function deployBots(dir: string, runtime: BotRuntime): Promise<DeployReport[]> {
  const prepared = botFolders(dir).map((folder) => resourcesFor(join(dir, folder), folder));
  const reports: DeployReport[] = [];
  for (const p of prepared) {
    reports.push(await deployResources(p, runtime));
  }
  return reports;
}

/** Deploys one bot folder. Several processes deploying together converge (a lost race is retried). */
export function deployBot(path: string, folder: string, runtime: BotRuntime): Promise<DeployReport> {
  return deployResources(resourcesFor(path, folder), runtime);
}

async function deployResources({ library, subscriptions }: { library: Library; subscriptions: Subscription[] }, runtime: BotRuntime): Promise<DeployReport> {
  const attempt = async (): Promise<DeployReport> => {
    const report: DeployReport = { name: library.name as string, library: await upsert(runtime, library), triggers: [] };
    const wanted = new Set(subscriptions.map((s) => s.id));
    for (const s of subscriptions) {
      report.triggers.push({ id: s.id as string, change: await upsert(runtime, s) });
    }
    // Triggers of this bot that the manifest no longer lists.
    const existing = await runtime.store.search({
      resourceType: 'Subscription',
      filters: [{ kind: 'uri', code: 'url', mode: 'exact', values: [`Library/${library.id as string}`] }],
      count: 1000,
    });
    for (const v of existing.versions as StoredVersion[]) {
      if (!wanted.has(v.id)) {
        await runtime.store.transaction((w) => w.delete('Subscription', v.id));
        report.triggers.push({ id: v.id, change: 'removed' });
      }
    }
    return report;
  };
  try {
    return await attempt();
  } catch (err) {
    // Another process deploying the same bot at the same moment: its write won; compare again.
    if ((err as { category?: string }).category === 'conflict') {
      return attempt();
    }
    throw err;
  }
}
