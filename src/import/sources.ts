/**
 * Finding and reading import files: folders are walked, `.json` / `.ndjson` may be gzipped.
 */
import { createReadStream, readdirSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { createGunzip, gunzipSync } from 'node:zlib';

const IMPORTABLE = /\.(json|ndjson)(\.gz)?$/i;

/** Expands files and folders into the importable files they contain, sorted by path. */
export function listFiles(paths: string[]): string[] {
  const out: string[] = [];
  for (const p of paths) {
    const st = statSync(p); // throws ENOENT with the path in the message
    if (st.isDirectory()) {
      const children = readdirSync(p).map((c) => join(p, c));
      out.push(...listFiles(children.filter((c) => statSync(c).isDirectory() || IMPORTABLE.test(c))));
    } else {
      out.push(p);
    }
  }
  return out.sort();
}

export function isNdjson(file: string): boolean {
  return /\.ndjson(\.gz)?$/i.test(file);
}

/** The whole text of a .json or .json.gz file. */
export async function readText(file: string): Promise<string> {
  const raw = await readFile(file);
  return (file.toLowerCase().endsWith('.gz') ? gunzipSync(raw) : raw).toString('utf8');
}

/** The non-empty lines of an NDJSON file, streamed. */
export async function* readLines(file: string): AsyncGenerator<{ line: string; number: number }> {
  const input = createReadStream(file);
  const stream = file.toLowerCase().endsWith('.gz') ? input.pipe(createGunzip()) : input;
  const rl = createInterface({ input: stream, crlfDelay: Infinity });
  let number = 0;
  for await (const line of rl) {
    number++;
    if (line.trim() !== '') {
      yield { line, number };
    }
  }
}

/** Bytes on disk, for the progress bar. */
export function fileSize(file: string): number {
  return statSync(file).size;
}
