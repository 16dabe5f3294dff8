/**
 * `continuum import`: loads transaction/batch Bundles (.json, .json.gz) and NDJSON files straight
 * into the store through the FHIR core (the same validation and transaction rules as `POST /`).
 */
import type { Bundle, Resource } from '@medplum/fhirtypes';
import { FhirError } from '../errors';
import { handle } from '../fhir/router';
import type { RequestContext } from '../fhir/types';
import { type WriteItem, writeMany, writeRequest, WRITE_GROUP } from '../fhir/write-many';
import { parseJsonText } from '../util/json';
import { fileSize, isNdjson, listFiles, readLines, readText } from './sources';
import { Progress } from './progress';

export interface ImportSummary {
  files: number;
  bundles: number;
  resources: number;
  failed: number;
  /** The first failures, each naming the file (and line or entry). */
  errors: string[];
  seconds: number;
}

export interface ImportOptions {
  /** Receives progress; defaults to a bar on stderr. Pass null for silence. */
  progress?: Progress | null;
  /** Files imported at once (default: 4 on a PostgreSQL server, 1 on the embedded store). */
  concurrency?: number;
}

const MAX_REPORTED_ERRORS = 20;

/**
 * The resource types an EHR or Synthea export is mostly made of (US Core's, the CCM types, and the
 * CARIN claims types): `continuum import` compiles their validators while the store starts
 * (warmUpValidators), instead of within the import as each first appears. The Synthea import
 * spent ~0.4 s of its ~6 s compiling its 16 types there.
 */
export const COMMON_IMPORT_TYPES: readonly string[] = [
  'Patient', 'Observation', 'Encounter', 'Condition', 'Procedure', 'MedicationRequest', 'Immunization',
  'DiagnosticReport', 'CarePlan', 'Goal', 'CareTeam', 'AllergyIntolerance', 'Organization', 'Practitioner',
  'PractitionerRole', 'Location', 'Device', 'Medication', 'DocumentReference', 'Provenance', 'ImagingStudy',
  'ServiceRequest', 'QuestionnaireResponse', 'Consent', 'Task', 'Claim', 'ExplanationOfBenefit', 'Coverage',
];

/** Share of the input's bytes done when the final ANALYZE is asked for (see importPaths). */
const ANALYZE_AT = 0.9;

function message(err: unknown): string {
  if (err instanceof FhirError) {
    return (err.outcome.issue ?? []).map((i) => i.diagnostics ?? i.details?.text).join('; ');
  }
  return err instanceof Error ? err.message : String(err);
}

/** Imports every file under `paths`. Failures are counted and reported, never fatal to the run. */
export async function importPaths(paths: string[], ctx: RequestContext, options: ImportOptions = {}): Promise<ImportSummary> {
  const files = listFiles(paths);
  const totalBytes = files.reduce((n, f) => n + fileSize(f), 0);
  const progress = options.progress === undefined ? new Progress(totalBytes) : options.progress;
  const summary: ImportSummary = { files: files.length, bundles: 0, resources: 0, failed: 0, errors: [], seconds: 0 };
  const started = Date.now();
  const fail = (where: string, err: unknown, count = 1): void => {
    summary.failed += count;
    if (summary.errors.length < MAX_REPORTED_ERRORS) {
      summary.errors.push(`${where}: ${message(err)}`);
    }
  };
  let doneBytes = 0;
  // Fresh statistics, so the first searches over what was loaded get good plans. Asked for once
  // nine tenths of the bytes are in, not after the last: the database thread runs it while this
  // thread prepares the files still in flight (the ANALYZE was ~0.8 s at the end of the Synthea
  // import, this thread idle), and statistics that miss at most a tenth of the rows are as fresh
  // as PostgreSQL's autovacuum keeps them (it analyzes a table again once a tenth has changed).
  let analyzed: Promise<void> | undefined;
  const analyzeWhenMostlyIn = (): void => {
    if (analyzed === undefined && doneBytes >= ANALYZE_AT * totalBytes) {
      analyzed = ctx.store.analyze();
      analyzed.catch(() => undefined); // awaited (and reported) below
    }
  };
  const importFile = async (file: string): Promise<void> => {
    if (isNdjson(file)) {
      // Lines are written in groups (one transaction each, src/fhir/write-many.ts).
      // A line that does not parse waits in its group, so failures are reported in line order.
      let group: { item: WriteItem; number: number }[] = [];
      const writeGroup = async (): Promise<void> => {
        const outcomes = await writeMany(group.map((g) => g.item), ctx, handle);
        for (const [k, o] of outcomes.entries()) {
          if (o.ok) {
            summary.resources++;
          } else {
            fail(`${file}:${group[k].number}`, o.error);
          }
        }
        group = [];
      };
      for await (const { line, number } of readLines(file)) {
        try {
          group.push({ item: { resource: parseJsonText(line, ctx.limits.maxJsonDepth) as Resource }, number });
        } catch (error) {
          group.push({ item: { error }, number });
        }
        if (group.length >= WRITE_GROUP) {
          await writeGroup();
        }
      }
      await writeGroup();
    } else {
      try {
        const body = parseJsonText(await readText(file), ctx.limits.maxJsonDepth) as Resource;
        if (body?.resourceType === 'Bundle' && (body.type === 'transaction' || body.type === 'batch')) {
          summary.bundles++;
          const out = await handle({ method: 'POST', path: '', query: {}, body, preferReturn: 'minimal' }, ctx);
          const entries = (out.resource as Bundle).entry ?? [];
          for (const [i, e] of entries.entries()) {
            if (e.response?.status?.startsWith('2')) {
              summary.resources++;
            } else {
              fail(`${file} entry ${i}`, new FhirError('invalid', e.response?.outcome ?? 'failed'));
            }
          }
        } else if (body?.resourceType === 'Bundle') {
          summary.bundles++;
          const entries = (body.entry ?? []).map((e, i) => ({ resource: e.resource, i })).filter((e): e is { resource: Resource; i: number } => e.resource !== undefined);
          for (let start = 0; start < entries.length; start += WRITE_GROUP) {
            const group = entries.slice(start, start + WRITE_GROUP);
            const outcomes = await writeMany(group.map((e) => ({ resource: e.resource })), ctx, handle);
            for (const [k, o] of outcomes.entries()) {
              if (o.ok) {
                summary.resources++;
              } else {
                fail(`${file} entry ${group[k].i}`, o.error);
              }
            }
          }
        } else {
          await handle(writeRequest(body), ctx);
          summary.resources++;
        }
      } catch (err) {
        fail(file, err, 1);
      }
    }
    doneBytes += fileSize(file);
    progress?.update(doneBytes, `${summary.resources} resources, ${summary.failed} failed`);
    analyzeWhenMostlyIn();
  };
  // Several files at once keep the database busy while this thread prepares the next bundle: a
  // PostgreSQL server has connections to spare; the embedded store has one thread of its own, so
  // two files are enough to keep it and this thread both working.
  const concurrency = options.concurrency ?? (ctx.store.kind === 'postgres' ? 4 : 2);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, files.length) }, async () => {
      while (next < files.length) {
        await importFile(files[next++]);
      }
    }),
  );
  await (analyzed ?? ctx.store.analyze());
  progress?.update(totalBytes, `${summary.resources} resources, ${summary.failed} failed`, true);
  progress?.finish();
  summary.seconds = (Date.now() - started) / 1000;
  return summary;
}

export function formatSummary(s: ImportSummary): string {
  const rate = s.seconds > 0 ? Math.round(s.resources / s.seconds) : s.resources;
  const lines = [
    `Imported ${s.resources} resources from ${s.files} file(s) (${s.bundles} bundle(s)) in ${s.seconds.toFixed(1)} s (${rate} resources/s); ${s.failed} failed.`,
  ];
  for (const e of s.errors) {
    lines.push(`  - ${e}`);
  }
  if (s.failed > s.errors.length) {
    lines.push(`  ... and ${s.failed - s.errors.length} more`);
  }
  return lines.join('\n');
}
