#!/usr/bin/env node
/**
 * The `continuum` command: `serve` (what `npm start` runs) and `import`.
 * Configuration is read here, once, and passed down.
 */
// First: it caps V8's young generation before the modules below are loaded (see the module).
import { YOUNG_GENERATION_MB, youngGenerationCap } from './util/heap-cap';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { DEFAULT_LIMITS, DEFAULT_PORT } from './config';
import { COMMON_IMPORT_TYPES, formatSummary, importPaths } from './import/importer';
import { Progress } from './import/progress';
import { type Continuum, createContinuum, type ContinuumOptions } from './server';
import { RegistrationError } from './auth/accounts';
import type { JWK } from './auth/jose';
import { parseScopes } from './auth/scopes';
import type { TrustedIssuer } from './auth/external';
import { botsCommand, formatDeploy } from './bots/cli';
import { BotCompileError } from './bots/compile';
import { DeployError } from './bots/deploy';
import { projectRoot } from './util/root';
import { sharedBuffersFromEnv } from './store/open';
import { warmUpValidators } from './validation/schema';

const HELP = `continuum: a FHIR R4 server for Chronic Care Management

Usage:
  continuum serve [options]            Serve the FHIR API (default command)
  continuum import <paths...> [options]
                                       Load transaction/batch Bundles (.json, .json.gz) and
                                       NDJSON (.ndjson, .ndjson.gz) files or folders of them
  continuum reindex [--type <Type>]    Rebuild the search index (after adding SearchParameters)
  continuum token [options]            Print an access token for local development
  continuum clients add <id> [options] Register an OAuth client (SMART app or backend service)
  continuum clients list | remove <id>
  continuum users add <name> --fhir-user <Patient/id|Practitioner/id> --password <pw>
  continuum users list | remove <name>
  continuum keys rotate                New signing key; the old one verifies for another day
  continuum bots deploy [dir]          Compile the bots in dir (default ./bots) and create or update
                                       their Libraries and Subscriptions; reports what changed
  continuum bots list                  Bots, their scopes, schedules and triggers
  continuum bots run <name> [--input <file.json>]
                                       Run a bot now (Library/{id}/$execute); prints its result
  continuum bots logs <name> [--follow] [--count <n>]
                                       A bot's recent runs: trigger, outcome, duration, log lines
  continuum --help                     Show this help

The embedded store is one process's: run token, clients, users, keys and bots while the server
is stopped (or against a PostgreSQL server, at any time). Against a running server, bots commands
take --server <url> --token <token> (or CONTINUUM_TOKEN) and go through its FHIR API.

Store options (serve and import):
  --data-dir <dir>       Embedded PostgreSQL (PGlite) folder (default: ./data)
  --memory               Embedded store in memory only; everything is gone at exit
  --database-url <url>   A PostgreSQL server instead (also: DATABASE_URL)

Serve options:
  --port <n>             Port to listen on (default: ${DEFAULT_PORT}; also: PORT)
  --host <addr>          Address to bind (default: 127.0.0.1; also: HOST)
  --base-url <url>       Public base URL (default: from each request's Host header)
  --max-body <bytes>     Largest request body (default: ${DEFAULT_LIMITS.maxBodyBytes})
  --export-retention <s> Seconds a completed $export's files stay available (default: 3600)
  --trusted-issuers <f>  JSON file: external identity providers whose tokens are accepted,
                         [{"issuer", "jwksUri", "audience"?, "scopeClaim"?, "scopeMap"?,
                           "patientClaim"?, "fhirUserClaim"?, "clientIdClaim"?}]

Token options:
  --scope <scopes>       Scopes (default: "system/*.cruds")
  --patient <id>         Patient in context (for patient/ scopes)
  --fhir-user <ref>      The user (Patient/id or Practitioner/id) for user/ scopes
  --client-id <id>       Client the token names (default: continuum-cli)
  --lifetime <seconds>   Validity, at most an hour (default: 3600)
  --base-url <url>       The server's base URL, the token's audience
                         (default: http://127.0.0.1:<port>)

Bots options:
  --server <url>         A running server's base URL (bots commands go through its API)
  --token <token>        Its access token, system/*.cruds (also: CONTINUUM_TOKEN)
  --input <file.json>    bots run: the input (a Parameters or any resource)
  --follow               bots logs: keep printing new runs
  --count <n>            bots logs: how many recent runs (default: 20)
  --no-bots              serve: do not deploy ./bots at start

Client options:
  --type <type>          public | confidential-symmetric | confidential-asymmetric
  --scope <scopes>       The most the client may be granted
  --redirect-uri <uri>   Registered redirect URI (repeat for several)
  --name <text>          Shown on the sign-in page
  --secret <secret>      Symmetric clients: use this secret (default: generated, printed once)
  --jwks-url <url>       Asymmetric clients: where their public keys are
  --jwks-file <file>     Asymmetric clients: a JWKS file

Examples:
  npm start                                  # serve on http://127.0.0.1:${DEFAULT_PORT} with ./data
  continuum serve --memory --port 9000
  continuum import ../shared/data/synthea
  DATABASE_URL=postgres://postgres@127.0.0.1:5432/test continuum serve
`;

const OPTIONS = {
  help: { type: 'boolean', short: 'h' },
  port: { type: 'string' },
  host: { type: 'string' },
  'base-url': { type: 'string' },
  'data-dir': { type: 'string' },
  memory: { type: 'boolean' },
  'database-url': { type: 'string' },
  'max-body': { type: 'string' },
  'trusted-issuers': { type: 'string' },
  'export-retention': { type: 'string' },
  type: { type: 'string' },
  scope: { type: 'string' },
  patient: { type: 'string' },
  'fhir-user': { type: 'string' },
  'client-id': { type: 'string' },
  lifetime: { type: 'string' },
  'redirect-uri': { type: 'string', multiple: true },
  name: { type: 'string' },
  secret: { type: 'string' },
  'jwks-url': { type: 'string' },
  'jwks-file': { type: 'string' },
  password: { type: 'string' },
  server: { type: 'string' },
  token: { type: 'string' },
  input: { type: 'string' },
  follow: { type: 'boolean' },
  count: { type: 'string' },
  'no-bots': { type: 'boolean' },
} as const;

class UsageError extends Error {}

function positiveInt(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) {
    return fallback;
  }
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) {
    throw new UsageError(`--${name} must be a positive integer, got '${raw}'`);
  }
  return n;
}

type Values = ReturnType<typeof parse>['values'];

type OptionValue<O> = O extends { type: 'boolean' } ? boolean : O extends { multiple: true } ? string[] : string;

function parse(argv: string[]): { values: { [K in keyof typeof OPTIONS]?: OptionValue<(typeof OPTIONS)[K]> }; positionals: string[] } {
  try {
    return parseArgs({ args: argv, options: OPTIONS, allowPositionals: true }) as never;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** Administrative commands neither run queued bot jobs nor schedules: the servers do. */
const QUIET_BOTS = { worker: false, scheduler: false } as const;

function storeOptions(values: Values): ContinuumOptions {
  const databaseUrl = values['database-url'] ?? process.env.DATABASE_URL;
  return {
    databaseUrl: databaseUrl || undefined,
    dataDir: values['data-dir'] ?? './data',
    memory: values.memory ?? false,
    baseUrl: values['base-url'],
    limits: { maxBodyBytes: positiveInt('max-body', values['max-body'], DEFAULT_LIMITS.maxBodyBytes) },
  };
}

function describeStore(o: ContinuumOptions): string {
  if (o.databaseUrl) {
    return `PostgreSQL at ${o.databaseUrl.replace(/\/\/[^@/]*@/, '//***@')}`;
  }
  const pool = o.sharedBuffers ? `, buffer pool ${o.sharedBuffers}` : '';
  return o.memory ? `embedded PostgreSQL in memory (nothing is kept${pool})` : `embedded PostgreSQL in ${o.dataDir}${pool ? ` (${pool.slice(2)})` : ''}`;
}

/** The --trusted-issuers file: a JSON array of issuers, each with an issuer URL and a JWKS URL. */
function trustedIssuers(file: string | undefined): TrustedIssuer[] {
  if (file === undefined) {
    return [];
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new UsageError(`--trusted-issuers: cannot read ${file}: ${(err as Error).message}`);
  }
  if (!Array.isArray(parsed) || parsed.some((t) => typeof t?.issuer !== 'string' || typeof t?.jwksUri !== 'string')) {
    throw new UsageError('--trusted-issuers must hold a JSON array of objects with "issuer" and "jwksUri" strings');
  }
  return parsed as TrustedIssuer[];
}

/**
 * The server's old-generation heap grows to 1.5x what was live after the last full collection
 * (V8 otherwise lets it reach 2-4x). A request's garbage that outlives two young collections
 * (requests waiting on the database under load) collects there: after 40,000 creates the heap
 * was ~120 MB with ~52 MB live. Measured on the create load (40 s, fresh stores, alternating):
 * RSS 479-518 -> 412-437 MB, peak 550-564 -> 418-437 MB, CPU per create unchanged (0.57-0.66 vs
 * 0.56-0.67 ms on the main thread). V8 reads this flag at every heap-limit computation, so setting
 * it at run time takes effect. CONTINUUM_HEAP_GROWING_PERCENT overrides it (0: V8's own policy).
 */
function tuneHeap(): void {
  const percent = wholeNumberFromEnv('CONTINUUM_HEAP_GROWING_PERCENT', 50);
  if (percent > 0) {
    setFlagsFromString(`--heap-growing-percent=${percent}`);
  }
  // Checked here so that a bad value is reported; the cap itself started with ./util/heap-cap.
  wholeNumberFromEnv('CONTINUUM_YOUNG_GENERATION_MB', YOUNG_GENERATION_MB);
}

function wholeNumberFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  const value = raw === undefined || raw === '' ? fallback : Number(raw);
  if (!Number.isInteger(value) || value < 0) {
    throw new UsageError(`${name} must be a whole number (0: V8's own policy), got '${raw}'`);
  }
  return value;
}

async function serve(values: Values): Promise<void> {
  tuneHeap();
  const options: ContinuumOptions = {
    ...storeOptions(values),
    auth: { trustedIssuers: trustedIssuers(values['trusted-issuers']) },
    export: { retentionMs: positiveInt('export-retention', values['export-retention'], 3600) * 1000 },
    // The bots in ./bots deploy at start; their log lines go to the console.
    deployBots: values['no-bots'] ? [] : [join(projectRoot(), 'bots')],
    bots: { echoLogs: true, leaseMs: positiveInt('CONTINUUM_BOT_LEASE_MS', process.env.CONTINUUM_BOT_LEASE_MS, 30_000) },
  };
  const port = positiveInt('port', values.port ?? process.env.PORT, DEFAULT_PORT);
  const host = values.host ?? process.env.HOST ?? '127.0.0.1';
  const continuum = await createContinuum(options);
  const devSecret = await ensureDevClient(continuum);
  const deployed = continuum.deployed.filter((r) => r.library !== 'unchanged' || r.triggers.some((t) => t.change !== 'unchanged'));
  if (deployed.length > 0) {
    console.log(`Bots deployed:\n${formatDeploy(deployed).replace(/^/gm, '  ')}`);
  }
  const server = continuum.app.listen(port, host, (err?: Error) => {
    // Express 5 hands a listen error (port in use, no permission) to this callback.
    if (err) {
      console.error(`continuum: cannot listen on ${host}:${port}: ${err.message}`);
      process.exit(1);
    }
    const base = options.baseUrl ?? `http://${host}:${port}`;
    console.log(`Continuum serves FHIR R4 at ${base} (${describeStore(options)})`);
    console.log(`  Try: curl ${base}/metadata`);
    if (devSecret) {
      console.log(devClientHelp(base, devSecret));
    }
  });
  continuum.attachWebSockets(server);
  const stop = (): void => {
    server.close();
    void continuum.close().then(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

/**
 * The embedded store's buffer pool while `continuum import` runs (a server keeps 16 MB, resident
 * for its whole life: pglite.ts). Loading writes index pages all over tables that soon outgrow
 * 16 MB, and each page pushed out dirty is written to its file, often again and again: with 96 MB
 * the Synthea import ran at 2,599-2,983 resources/s against 2,461-2,746 (three alternating runs
 * each), the process's whole run no longer (its pages are written once, at the checkpoint). The
 * command's memory goes when it ends.
 */
const IMPORT_SHARED_BUFFERS = '96MB';

async function runImport(values: Values, paths: string[]): Promise<number> {
  if (paths.length === 0) {
    throw new UsageError('import needs at least one file or folder');
  }
  for (const p of paths) {
    if (!existsSync(p)) {
      throw new UsageError(`no such file or folder: ${p}`);
    }
  }
  // A batch job: speed over memory, so V8's own young generation and (IMPORT_SHARED_BUFFERS) a
  // larger buffer pool than a server's unless CONTINUUM_SHARED_BUFFERS says.
  youngGenerationCap.lift();
  const options = { ...storeOptions(values), sharedBuffers: sharedBuffersFromEnv() ?? IMPORT_SHARED_BUFFERS };
  // This thread mostly waits while the embedded store starts on its own: compile the validators
  // the files will most likely need meanwhile.
  const warming = warmUpValidators(COMMON_IMPORT_TYPES);
  const continuum = await createContinuum({ ...options, bots: QUIET_BOTS });
  try {
    await warming;
    console.error(`Importing into ${describeStore(options)}`);
    const summary = await importPaths(paths, continuum.context());
    console.log(formatSummary(summary));
    return summary.failed > 0 ? 1 : 0;
  } finally {
    await continuum.close();
  }
}

async function runReindex(values: Values, rest: string[]): Promise<number> {
  if (rest.length > 0) {
    throw new UsageError(`reindex takes no arguments, got '${rest.join(' ')}'`);
  }
  youngGenerationCap.lift(); // a batch job: speed over memory
  const options = storeOptions(values);
  const continuum = await createContinuum({ ...options, bots: QUIET_BOTS });
  try {
    const started = Date.now();
    let progress: Progress | undefined;
    const count = await continuum.store.reindex({
      resourceType: values.type,
      onProgress: (done, total) => {
        progress ??= new Progress(total);
        progress.update(done, `${done} of ${total} resources`);
      },
    });
    progress?.finish();
    console.log(`Reindexed ${count} resources${values.type ? ` of type ${values.type}` : ''} in ${((Date.now() - started) / 1000).toFixed(1)} s.`);
    return 0;
  } finally {
    await continuum.close();
  }
}

const DEV_CLIENT = 'continuum-dev';

/** On a store without any client, registers a development client; returns its secret (once). */
async function ensureDevClient(continuum: Continuum): Promise<string | undefined> {
  if ((await continuum.auth.clients.list()).length > 0) {
    return undefined;
  }
  // Another process starting at the same time may register it first: then this one prints nothing.
  const { secret } = await continuum.auth.clients.add(
    { clientId: DEV_CLIENT, name: 'Continuum development client', type: 'confidential-symmetric', scope: 'system/*.cruds' },
    new Date(),
    { onlyIfAbsent: true },
  );
  return secret;
}

function devClientHelp(base: string, secret: string): string {
  return `
  This store had no OAuth client, so one was registered for development (the secret is shown once):
    client id:     ${DEV_CLIENT}
    client secret: ${secret}
  Get a backend token (5 minutes) and make a first request:
    TOKEN=$(curl -s -u ${DEV_CLIENT}:${secret} -d grant_type=client_credentials -d 'scope=system/*.rs' ${base}/auth/token | sed 's/.*"access_token":"\\([^"]*\\)".*/\\1/')
    curl -H "Authorization: Bearer $TOKEN" ${base}/Patient
  Register apps and users with 'continuum clients add' and 'continuum users add' (see --help).`;
}

/** Opens the store for an administrative command and closes it afterwards. */
async function withContinuum<T>(values: Values, fn: (c: Continuum) => Promise<T>): Promise<T> {
  const continuum = await createContinuum({ ...storeOptions(values), bots: QUIET_BOTS });
  try {
    return await fn(continuum);
  } finally {
    await continuum.close();
  }
}

async function runToken(values: Values, rest: string[]): Promise<number> {
  if (rest.length > 0) {
    throw new UsageError(`token takes no arguments, got '${rest.join(' ')}'`);
  }
  const scope = values.scope ?? 'system/*.cruds';
  const unknown = parseScopes(scope).unknown;
  if (unknown.length > 0) {
    throw new UsageError(`unknown scopes: ${unknown.join(' ')}`);
  }
  const port = positiveInt('port', values.port ?? process.env.PORT, DEFAULT_PORT);
  const baseUrl = (values['base-url'] ?? `http://127.0.0.1:${port}`).replace(/\/+$/, '');
  const lifetime = positiveInt('lifetime', values.lifetime, 3600);
  if (lifetime > 3600) {
    throw new UsageError('--lifetime is at most 3600 seconds (access tokens live an hour at most)');
  }
  const token = await withContinuum(values, (c) =>
    c.auth.issueToken(baseUrl, { clientId: values['client-id'] ?? 'continuum-cli', scope, patient: values.patient, fhirUser: values['fhir-user'] }, lifetime),
  );
  console.log(token);
  return 0;
}

/** A registration refused for its input is a usage error (exit 2, message on stderr). */
async function asUsage<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (err) {
    throw err instanceof RegistrationError ? new UsageError(err.message) : err;
  }
}

/** `clients remove <id>` / `users remove <name>`: exit 1 when there was none. */
async function removeRecord(what: 'client' | 'user', id: string | undefined, remove: (id: string) => Promise<boolean>): Promise<number> {
  if (!id) {
    throw new UsageError(`${what === 'client' ? 'clients remove needs a client id' : 'users remove needs a user name'}`);
  }
  if (!(await remove(id))) {
    console.error(`No ${what} '${id}'.`);
    return 1;
  }
  console.log(`Removed ${what} '${id}'.`);
  return 0;
}

async function runClients(values: Values, rest: string[]): Promise<number> {
  const [action, id, ...extra] = rest;
  if (extra.length > 0) {
    throw new UsageError(`clients ${action}: unexpected '${extra.join(' ')}'`);
  }
  return withContinuum(values, async (c) => {
    switch (action) {
      case 'add': {
        if (!id) {
          throw new UsageError('clients add needs a client id');
        }
        const type = values.type ?? 'public';
        if (type !== 'public' && type !== 'confidential-symmetric' && type !== 'confidential-asymmetric') {
          throw new UsageError(`--type must be public, confidential-symmetric or confidential-asymmetric, got '${type}'`);
        }
        if (!values.scope) {
          throw new UsageError('clients add needs --scope (the most the client may be granted)');
        }
        let jwks: { keys: JWK[] } | undefined;
        if (values['jwks-file']) {
          jwks = JSON.parse(readFileSync(values['jwks-file'], 'utf8')) as { keys: JWK[] };
        }
        const { client, secret } = await asUsage(
          c.auth.clients.add({ clientId: id, type, scope: values.scope, redirectUris: values['redirect-uri'], name: values.name, secret: values.secret, jwksUrl: values['jwks-url'], jwks }),
        );
        console.log(`Registered ${client.type} client '${client.clientId}' (scope: ${client.scope}).`);
        if (secret && !values.secret) {
          console.log(`Client secret (shown once): ${secret}`);
        }
        return 0;
      }
      case 'list':
        for (const client of await c.auth.clients.list()) {
          console.log(`${client.clientId}\t${client.type}\t${client.scope}\t${client.redirectUris.join(' ')}`);
        }
        return 0;
      case 'remove':
        return removeRecord('client', id, (x) => c.auth.clients.remove(x));
      default:
        throw new UsageError(`clients needs add, list or remove, got '${action ?? ''}'`);
    }
  });
}

async function runUsers(values: Values, rest: string[]): Promise<number> {
  const [action, name, ...extra] = rest;
  if (extra.length > 0) {
    throw new UsageError(`users ${action}: unexpected '${extra.join(' ')}'`);
  }
  return withContinuum(values, async (c) => {
    switch (action) {
      case 'add': {
        if (!name || !values['fhir-user'] || !values.password) {
          throw new UsageError('users add needs a user name, --fhir-user and --password');
        }
        const account = await asUsage(c.auth.users.add({ username: name, password: values.password, fhirUser: values['fhir-user'] }));
        console.log(`Added user '${account.username}' (${account.fhirUser}).`);
        return 0;
      }
      case 'list':
        for (const u of await c.auth.users.list()) {
          console.log(`${u.username}\t${u.fhirUser}`);
        }
        return 0;
      case 'remove':
        return removeRecord('user', name, (x) => c.auth.users.remove(x));
      default:
        throw new UsageError(`users needs add, list or remove, got '${action ?? ''}'`);
    }
  });
}

async function runKeys(values: Values, rest: string[]): Promise<number> {
  if (rest.length !== 1 || rest[0] !== 'rotate') {
    throw new UsageError('keys needs: rotate');
  }
  const kid = await withContinuum(values, (c) => c.auth.keys.rotate());
  console.log(`New signing key ${kid}; tokens signed with the previous key verify for another day.`);
  return 0;
}

async function runBots(values: Values, rest: string[]): Promise<number> {
  const [sub, ...args] = rest;
  const token = values.token ?? process.env.CONTINUUM_TOKEN;
  if (values.server && !token) {
    throw new UsageError('--server needs --token (or CONTINUUM_TOKEN): a system/*.cruds token of that server');
  }
  if (!['deploy', 'list', 'run', 'logs'].includes(sub ?? '')) {
    throw new UsageError(`bots needs one of deploy, list, run, logs${sub ? `, not '${sub}'` : ''}`);
  }
  const count = positiveInt('count', values.count, 20);
  try {
    return await botsCommand(sub, args, { input: values.input, follow: values.follow, count }, async () => {
      if (values.server) {
        return { target: { kind: 'remote', server: values.server, token: token as string }, close: async () => undefined };
      }
      const continuum = await createContinuum({ ...storeOptions(values), bots: QUIET_BOTS });
      return { target: { kind: 'local', runtime: continuum.bots, flushAudit: () => continuum.audit.flush() }, close: () => continuum.close() };
    });
  } catch (err) {
    if (err instanceof BotCompileError || err instanceof DeployError) {
      throw new UsageError(err.message);
    }
    throw err;
  }
}

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv);
  const [command = 'serve', ...rest] = positionals;
  if (values.help || command === 'help') {
    console.log(HELP);
    return 0;
  }
  switch (command) {
    case 'serve':
      if (rest.length > 0) {
        throw new UsageError(`serve takes no arguments, got '${rest.join(' ')}'`);
      }
      await serve(values);
      return -1; // keeps running
    case 'import':
      return runImport(values, rest);
    case 'reindex':
      return runReindex(values, rest);
    case 'token':
      return runToken(values, rest);
    case 'clients':
      return runClients(values, rest);
    case 'users':
      return runUsers(values, rest);
    case 'keys':
      return runKeys(values, rest);
    case 'bots':
      return runBots(values, rest);
    default:
      throw new UsageError(`unknown command '${command}'`);
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      if (code >= 0) {
        process.exitCode = code;
      }
    },
    (err: unknown) => {
      if (err instanceof UsageError) {
        console.error(`continuum: ${err.message}\nRun 'continuum --help' for usage.`);
        process.exitCode = 2;
      } else {
        console.error('continuum:', err instanceof Error ? err.message : err);
        process.exitCode = 1;
      }
    },
  );
}
