/**
 * `continuum bots deploy | list | run | logs`: in process against the configured store, or, with
 * `--server <url> --token <t>`, through a running server's FHIR API (needed for the embedded store,
 * whose data directory belongs to the server process while it runs).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { AuditEvent, Bundle, Library, Resource, Subscription } from '@medplum/fhirtypes';
import type { AuditRow } from '../store/api';
import { botFolders, type DeployReport, deployBots, resourcesFor } from './deploy';
import type { BotRuntime } from './runtime';

/** How the CLI reaches the server: in process or over HTTP. */
export type BotTarget = { kind: 'local'; runtime: BotRuntime; flushAudit: () => Promise<void> } | { kind: 'remote'; server: string; token: string };

const out = (line: string): void => {
  console.log(line);
};

async function http(t: Extract<BotTarget, { kind: 'remote' }>, method: string, path: string, body?: unknown): Promise<{ status: number; body: Resource | undefined }> {
  const res = await fetch(`${t.server.replace(/\/+$/, '')}/${path}`, {
    method,
    headers: { Authorization: `Bearer ${t.token}`, Accept: 'application/fhir+json', ...(body === undefined ? {} : { 'Content-Type': 'application/fhir+json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Resource) : undefined };
}

const problem = (r: { status: number; body: Resource | undefined }): string =>
  `HTTP ${r.status}${r.body?.resourceType === 'OperationOutcome' ? `: ${r.body.issue.map((i) => i.diagnostics ?? i.details?.text ?? i.code).join('; ')}` : ''}`;

const comparable = (r: object): string => {
  const { meta: _m, ...rest } = r as { meta?: unknown };
  return JSON.stringify(rest);
};

/** Deploys a folder of bots over HTTP (same result as the in-process deploy). */
async function deployRemote(dir: string, t: Extract<BotTarget, { kind: 'remote' }>): Promise<DeployReport[]> {
  const reports: DeployReport[] = [];
  // Everything is compiled first: a broken bot stops the deploy before anything is written.
  const prepared = botFolders(dir).map((folder) => resourcesFor(join(dir, folder), folder));
  for (const { library, subscriptions } of prepared) {
    const upsert = async (r: Library | Subscription): Promise<DeployReport['library']> => {
      const path = `${r.resourceType}/${r.id as string}`;
      const current = await http(t, 'GET', path);
      if (current.status === 200 && current.body && comparable(current.body) === comparable(JSON.parse(JSON.stringify(r)) as object)) {
        return 'unchanged';
      }
      const put = await http(t, 'PUT', path, r);
      if (put.status !== 200 && put.status !== 201) {
        throw new Error(`PUT ${path}: ${problem(put)}`);
      }
      return put.status === 201 ? 'created' : 'updated';
    };
    const report: DeployReport = { name: library.name as string, library: await upsert(library), triggers: [] };
    for (const s of subscriptions) {
      report.triggers.push({ id: s.id as string, change: await upsert(s) });
    }
    const existing = await http(t, 'GET', `Subscription?url=${encodeURIComponent(`Library/${library.id as string}`)}&_count=1000`);
    const wanted = new Set(subscriptions.map((s) => s.id));
    for (const e of (existing.body as Bundle | undefined)?.entry ?? []) {
      const id = e.resource?.id as string;
      if (!wanted.has(id)) {
        await http(t, 'DELETE', `Subscription/${id}`);
        report.triggers.push({ id, change: 'removed' });
      }
    }
    reports.push(report);
  }
  return reports;
}

/** One line per bot and trigger change. */
export function formatDeploy(reports: DeployReport[]): string {
  if (reports.length === 0) {
    return 'No bots found (a bot is a folder with index.ts and bot.json).';
  }
  const lines: string[] = [];
  for (const r of reports) {
    const changed = r.triggers.filter((t) => t.change !== 'unchanged');
    const live = r.triggers.filter((t) => t.change !== 'removed').length;
    lines.push(`${r.name}: ${r.library}${live > 0 ? `, ${live} trigger(s)` : ''}`);
    for (const t of changed) {
      lines.push(`  Subscription/${t.id}: ${t.change}`);
    }
  }
  return lines.join('\n');
}

async function libraryIdOf(name: string, t: BotTarget): Promise<string> {
  if (t.kind === 'local') {
    const bot = t.runtime.botNamed(name);
    if (!bot) {
      throw new Error(`no bot named '${name}' (see 'continuum bots list')`);
    }
    return bot.id;
  }
  const found = await http(t, 'GET', `Library?name:exact=${encodeURIComponent(name)}&type=logic-library&_count=2`);
  const entry = (found.body as Bundle | undefined)?.entry?.[0]?.resource;
  if (!entry?.id) {
    throw new Error(`no bot named '${name}' on ${t.server}`);
  }
  return entry.id;
}

interface RunDetail {
  trigger?: string;
  durationMs?: number;
  focus?: string;
  attempt?: number;
  error?: string;
  log?: string[];
  touched?: string[];
}

/** One run as a few lines of text. */
function formatRun(recorded: string, outcome: string, d: RunDetail): string {
  const status = outcome === '0' ? 'ok' : 'FAILED';
  const head = `${recorded}  ${(d.trigger ?? '').padEnd(16)} ${status.padEnd(6)} ${String(d.durationMs ?? '-').padStart(8)} ms${d.focus ? `  ${d.focus}` : ''}${d.attempt && d.attempt > 1 ? `  attempt ${d.attempt}` : ''}`;
  const lines = [head];
  if (d.error) {
    lines.push(`    error: ${d.error}`);
  }
  for (const l of d.log ?? []) {
    lines.push(`    ${l}`);
  }
  return lines.join('\n');
}

const detailOf = (text: string | undefined): RunDetail => {
  try {
    return JSON.parse(text ?? '{}') as RunDetail;
  } catch {
    return { error: text };
  }
};

/** Prints a bot's runs (newest last); with `follow`, keeps printing new ones until interrupted. */
async function logs(name: string, t: BotTarget, follow: boolean, count: number): Promise<void> {
  const clientId = `bot:${name}`;
  let after: string | undefined;
  const printed: string[] = [];
  const page = async (): Promise<void> => {
    if (t.kind === 'local') {
      await t.flushAudit();
      const rows: AuditRow[] = await t.runtime.auditRows(clientId, after, follow && after ? 1000 : 100_000);
      for (const r of rows) {
        after = r.seq;
        if (r.category === 'bot') {
          printed.push(formatRun(r.recorded, r.outcome, detailOf(r.detail)));
        }
      }
      return;
    }
    for (;;) {
      const res = await http(t, 'GET', `$audit-log?client=${encodeURIComponent(clientId)}&_count=1000${after ? `&_cursor=${after}` : ''}`);
      if (res.status !== 200) {
        throw new Error(`$audit-log: ${problem(res)}`);
      }
      const bundle = res.body as Bundle<AuditEvent>;
      for (const e of bundle.entry ?? []) {
        const ev = e.resource as AuditEvent;
        after = ev.id;
        if (ev.subtype?.some((s) => s.system?.endsWith('/bot-event'))) {
          printed.push(formatRun(ev.recorded ?? '', ev.outcome ?? '', detailOf(ev.outcomeDesc)));
        }
      }
      if (!bundle.link?.some((l) => l.relation === 'next')) {
        return;
      }
    }
  };
  await page();
  for (const line of printed.splice(0).slice(-count)) {
    out(line);
  }
  while (follow) {
    await new Promise((r) => setTimeout(r, 1000));
    await page();
    for (const line of printed.splice(0)) {
      out(line);
    }
  }
}

/** Runs `continuum bots <sub> ...`; returns the exit code. */
export async function botsCommand(
  sub: string | undefined,
  args: string[],
  options: { input?: string; follow?: boolean; count?: number },
  target: () => Promise<{ target: BotTarget; close: () => Promise<void> }>,
): Promise<number> {
  const { target: t, close } = await target();
  try {
    switch (sub ?? '') {
      case 'deploy': {
        const dir = resolve(args[0] ?? 'bots');
        if (!existsSync(dir)) {
          throw new Error(`no such folder: ${dir}`);
        }
        const reports = t.kind === 'local' ? await deployBots(dir, t.runtime) : await deployRemote(dir, t);
        out(formatDeploy(reports));
        return 0;
      }
      case 'list': {
        if (t.kind === 'remote') {
          const res = await http(t, 'GET', 'Library?type=logic-library&_count=1000');
          for (const e of (res.body as Bundle<Library>).entry ?? []) {
            out(`${e.resource?.name ?? ''}  Library/${e.resource?.id ?? ''}  ${e.resource?.status ?? ''}`);
          }
          return 0;
        }
        const triggers = t.runtime.triggers();
        for (const b of t.runtime.bots().sort((a, c) => a.name.localeCompare(c.name))) {
          const mine = triggers.filter((x) => x.bot === `Library/${b.id}`);
          out(`${b.name}  Library/${b.id}  ${b.active ? 'active' : 'inactive'}  scope="${b.scope}"${b.schedule ? `  schedule="${b.schedule.source}"` : ''}`);
          for (const x of mine) {
            out(`  Subscription/${x.id}: ${x.phase} ${[...x.interactions].join('|')} ${x.resourceType}${x.query ? `?${x.query}` : ''}${x.condition ? ` where ${x.condition}` : ''}`);
          }
        }
        return 0;
      }
      case 'run': {
        const name = args[0];
        if (!name) {
          throw new Error('bots run needs a bot name');
        }
        const input: unknown = options.input ? JSON.parse(readFileSync(options.input, 'utf8')) : { resourceType: 'Parameters' };
        const id = await libraryIdOf(name, t);
        if (t.kind === 'remote') {
          const res = await http(t, 'POST', `Library/${id}/$execute`, input);
          if (res.status >= 300) {
            console.error(`error: ${problem(res)}`);
            return 1;
          }
          out(JSON.stringify(res.body, null, 2));
          return 0;
        }
        const bot = t.runtime.botNamed(name);
        if (!bot?.active) {
          throw new Error(`bot ${name} is not active (its Library is not status active), so it does not run`);
        }
        const run = await t.runtime.run(bot, { trigger: 'manual', input }, t.runtime.storeAt(1), { trigger: 'manual' });
        for (const l of run.log) {
          console.error(l);
        }
        if (!run.ok) {
          console.error(`error: ${run.error?.message ?? ''}`);
          return 1;
        }
        out(run.value === undefined ? `(no result; ${run.durationMs} ms)` : JSON.stringify(run.value, null, 2));
        return 0;
      }
      case 'logs': {
        const name = args[0];
        if (!name) {
          throw new Error('bots logs needs a bot name');
        }
        await libraryIdOf(name, t); // an unknown bot is an error, not an empty log
        await logs(name, t, options.follow ?? false, options.count ?? 20);
        return 0;
      }
      default:
        throw new Error(`unknown bots command '${sub ?? ''}' (deploy, list, run, logs)`);
    }
  } finally {
    await close();
  }
}
