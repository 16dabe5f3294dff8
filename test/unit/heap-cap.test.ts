/**
 * The young-generation cap (src/util/heap.ts, started by src/util/heap-cap.ts for the CLI). V8's
 * flags are process-wide, so each case runs in a child Node process of its own on the compiled
 * code (built by `npm test` before jest).
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from '../support/process';

const HEAP = join(ROOT, 'dist', 'src', 'util', 'heap.js');
const HEAP_CAP = join(ROOT, 'dist', 'src', 'util', 'heap-cap.js');
const SERVER = join(ROOT, 'dist', 'src', 'server.js');

jest.setTimeout(60_000);

/**
 * Allocation that survives young collections (a sliding window of 40,000 objects), in slices
 * with the event loop turning between them, as a server's requests do. Prints the largest young
 * generation seen, in MB.
 */
const WORKLOAD = `
const { youngGenerationBytes } = require(${JSON.stringify(HEAP)});
async function churn(rounds) {
  const keep = [];
  let max = 0;
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < 2000; k++) {
      keep.push({ a: k, b: 'x' + k + r, c: [k, r] });
      if (keep.length > 40000) keep.splice(0, 20000);
    }
    max = Math.max(max, youngGenerationBytes());
    await new Promise((resolve) => setImmediate(resolve));
  }
  return max / 1048576;
}
`;

function run(script: string, env: NodeJS.ProcessEnv = {}): string {
  return execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, ...env } }).trim();
}

describe('capYoungGeneration', () => {
  test('V8 alone grows the young generation past 8 MB under this load; capped at 4 MB, it stays within 8', () => {
    const free = Number(run(`${WORKLOAD} churn(600).then((mb) => console.log(mb));`));
    expect(free).toBeGreaterThan(8);
    const capped = Number(run(`${WORKLOAD} require(${JSON.stringify(HEAP)}).capYoungGeneration(4); churn(600).then((mb) => console.log(mb));`));
    // One doubling may land before the observer runs again: at most twice the cap.
    expect(capped).toBeLessThanOrEqual(8);
  });

  test('lift() gives growth back to V8', () => {
    const mb = Number(run(`${WORKLOAD} const cap = require(${JSON.stringify(HEAP)}).capYoungGeneration(4); churn(100).then(() => { cap.lift(); return churn(600); }).then((mb) => console.log(mb));`));
    expect(mb).toBeGreaterThan(8);
  });
});

describe('the CLI cap (heap-cap, imported first)', () => {
  test("loading the server's modules after it leaves the young generation small (V8 alone: 32 MB)", () => {
    const script = (first: string): string =>
      `${first} require(${JSON.stringify(SERVER)}); const s = require('node:v8').getHeapSpaceStatistics().find((x) => x.space_name === 'new_space'); console.log(s.space_size / 1048576);`;
    expect(Number(run(script('')))).toBeGreaterThan(8);
    expect(Number(run(script(`require(${JSON.stringify(HEAP_CAP)});`)))).toBeLessThanOrEqual(4);
  });

  test('CONTINUUM_YOUNG_GENERATION_MB=0 leaves V8 its own policy', () => {
    const script = `require(${JSON.stringify(HEAP_CAP)}); require(${JSON.stringify(SERVER)}); const s = require('node:v8').getHeapSpaceStatistics().find((x) => x.space_name === 'new_space'); console.log(s.space_size / 1048576);`;
    expect(Number(run(script, { CONTINUUM_YOUNG_GENERATION_MB: '0' }))).toBeGreaterThan(8);
  });
});
