/**
 * `continuum import` refreshes the planner's statistics once, when nine tenths of its input is in
 * (src/import/importer.ts), and finishes only after that ANALYZE: the database runs it while the
 * last files are still being prepared, instead of after them with nothing else to do.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { importPaths } from '../../src/import/importer';
import { Progress } from '../../src/import/progress';
import { startTestServer, type TestServer } from '../support/server';

jest.setTimeout(120_000);

let server: TestServer;
let dir: string;

beforeAll(async () => {
  server = await startTestServer();
  dir = mkdtempSync(join(tmpdir(), 'continuum-import-analyze-'));
});

afterAll(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A Progress that records the bytes done at each update, without drawing. */
class Recorder extends Progress {
  done = 0;
  constructor(total: number) {
    super(total, { isTTY: false, write: () => true } as unknown as NodeJS.WriteStream);
  }
  override update(done: number): void {
    this.done = done;
  }
  override finish(): void {}
}

function writeFiles(name: string, count: number): { paths: string[]; bytes: number } {
  const paths: string[] = [];
  let bytes = 0;
  for (let f = 0; f < count; f++) {
    const lines = Array.from({ length: 5 }, (_, i) => JSON.stringify({ resourceType: 'Patient', id: `${name}-${f}-${i}`, name: [{ family: `F${f}x${i}` }] }));
    const text = lines.join('\n') + '\n';
    const path = join(dir, `${name}-${String(f).padStart(2, '0')}.ndjson`);
    writeFileSync(path, text);
    paths.push(path);
    bytes += Buffer.byteLength(text);
  }
  return { paths, bytes };
}

async function importRecording(paths: string[], bytes: number): Promise<{ calls: number[]; resources: number; analyzedBeforeEnd: boolean }> {
  const ctx = server.continuum.context();
  const progress = new Recorder(bytes);
  const calls: number[] = [];
  let finished = false;
  let analyzedBeforeEnd = false;
  const store = ctx.store;
  const spied = Object.create(store) as typeof store;
  spied.analyze = async () => {
    calls.push(progress.done);
    await store.analyze();
    analyzedBeforeEnd = !finished;
  };
  const summary = await importPaths(paths, { ...ctx, store: spied }, { progress, concurrency: 1 });
  finished = true;
  return { calls, resources: summary.resources, analyzedBeforeEnd };
}

test('twenty files: ANALYZE once, asked for at 90 % of the bytes, and done before the import returns', async () => {
  const { paths, bytes } = writeFiles('many', 20);
  const { calls, resources, analyzedBeforeEnd } = await importRecording(paths, bytes);
  expect(resources).toBe(100);
  expect(calls).toHaveLength(1);
  expect(calls[0]).toBeGreaterThanOrEqual(0.9 * bytes);
  expect(calls[0]).toBeLessThan(bytes);
  expect(analyzedBeforeEnd).toBe(true);
});

test('one file: ANALYZE once, after it', async () => {
  const { paths, bytes } = writeFiles('one', 1);
  const { calls, resources } = await importRecording(paths, bytes);
  expect(resources).toBe(5);
  expect(calls).toEqual([bytes]);
});
