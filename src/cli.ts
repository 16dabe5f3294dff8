#!/usr/bin/env node
/**
 * The `continuum` command: `serve` (what `npm start` runs) and `import`.
 * Configuration is read here, once, and passed down.
 */
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { DEFAULT_LIMITS, DEFAULT_PORT } from './config';
import { formatSummary, importPaths } from './import/importer';
import { Progress } from './import/progress';
import { createContinuum, type ContinuumOptions } from './server';

const HELP = `continuum: a FHIR R4 server for Chronic Care Management

Usage:
  continuum serve [options]            Serve the FHIR API (default command)
  continuum import <paths...> [options]
                                       Load transaction/batch Bundles (.json, .json.gz) and
                                       NDJSON (.ndjson, .ndjson.gz) files or folders of them
  continuum reindex [--type <Type>]    Rebuild the search index (after adding SearchParameters)
  continuum --help                     Show this help

Store options (serve and import):
  --data-dir <dir>       Embedded PostgreSQL (PGlite) folder (default: ./data)
  --memory               Embedded store in memory only; everything is gone at exit
  --database-url <url>   A PostgreSQL server instead (also: DATABASE_URL)

Serve options:
  --port <n>             Port to listen on (default: ${DEFAULT_PORT}; also: PORT)
  --host <addr>          Address to bind (default: 127.0.0.1; also: HOST)
  --base-url <url>       Public base URL (default: from each request's Host header)
  --max-body <bytes>     Largest request body (default: ${DEFAULT_LIMITS.maxBodyBytes})

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
  type: { type: 'string' },
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

function parse(argv: string[]): { values: { [K in keyof typeof OPTIONS]?: (typeof OPTIONS)[K]['type'] extends 'boolean' ? boolean : string }; positionals: string[] } {
  try {
    return parseArgs({ args: argv, options: OPTIONS, allowPositionals: true }) as never;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

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
  return o.memory ? 'embedded PostgreSQL in memory (nothing is kept)' : `embedded PostgreSQL in ${o.dataDir}`;
}

async function serve(values: Values): Promise<void> {
  const options = storeOptions(values);
  const port = positiveInt('port', values.port ?? process.env.PORT, DEFAULT_PORT);
  const host = values.host ?? process.env.HOST ?? '127.0.0.1';
  const continuum = await createContinuum(options);
  const server = continuum.app.listen(port, host, (err?: Error) => {
    // Express 5 hands a listen error (port in use, no permission) to this callback.
    if (err) {
      console.error(`continuum: cannot listen on ${host}:${port}: ${err.message}`);
      process.exit(1);
    }
    const base = options.baseUrl ?? `http://${host}:${port}`;
    console.log(`Continuum serves FHIR R4 at ${base} (${describeStore(options)})`);
    console.log(`  Try: curl ${base}/metadata`);
  });
  const stop = (): void => {
    server.close();
    void continuum.close().then(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

async function runImport(values: Values, paths: string[]): Promise<number> {
  if (paths.length === 0) {
    throw new UsageError('import needs at least one file or folder');
  }
  for (const p of paths) {
    if (!existsSync(p)) {
      throw new UsageError(`no such file or folder: ${p}`);
    }
  }
  const options = storeOptions(values);
  const continuum = await createContinuum(options);
  try {
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
  const options = storeOptions(values);
  const continuum = await createContinuum(options);
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
