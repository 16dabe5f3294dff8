/**
 * Measurement script (not a test): registry load time and memory, compile time, and the cost of
 * extracting every index value of a typical Observation and Patient after warm-up.
 *
 *   npx tsc -p tsconfig.json --outDir /tmp/continuum-measure &&
 *     NODE_PATH=$PWD/node_modules node --expose-gc /tmp/continuum-measure/test/unit/search/measure.js
 */
import { baseSearchParameters, createRegistry } from '../../../src/search/definitions';
import { extractIndexValues, type IndexRows } from '../../../src/search/extract';
import { compiledCount } from '../../../src/search/fhirpath';
import { bloodPressure, glucose, patient } from './fixtures';

function ms(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e6;
}

function heapMb(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().heapUsed / 1024 / 1024;
}

function rowCount(rows: IndexRows): number {
  return Object.values(rows).reduce((n, list: unknown[]) => n + list.length, 0);
}

const heap0 = heapMb();
let t = process.hrtime.bigint();
const base = baseSearchParameters();
const parseMs = ms(t);
t = process.hrtime.bigint();
const registry = createRegistry();
const indexMs = ms(t);
const heap1 = heapMb();
console.log(`load: parse+keep ${base.length} SearchParameters ${parseMs.toFixed(1)} ms, index by type ${indexMs.toFixed(1)} ms, heap +${(heap1 - heap0).toFixed(1)} MB`);

t = process.hrtime.bigint();
let failures = 0;
const types = registry.baseTypes().filter((b) => b !== 'Resource' && b !== 'DomainResource');
for (const type of types) {
  failures += registry.precompile(type).length;
}
console.log(`compile: ${compiledCount()} expressions for ${types.length} types in ${ms(t).toFixed(0)} ms, ${failures} failures, heap now +${(heapMb() - heap0).toFixed(1)} MB`);

for (const [name, resource] of [
  ['Observation (blood pressure, 2 components)', bloodPressure],
  ['Observation (glucose, valueQuantity)', glucose],
  ['Patient (example)', patient],
] as const) {
  const first = process.hrtime.bigint();
  const rows = extractIndexValues(resource, registry);
  const firstMs = ms(first);
  for (let i = 0; i < 500; i++) {
    extractIndexValues(resource, registry);
  }
  const n = 5000;
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const s = process.hrtime.bigint();
    extractIndexValues(resource, registry);
    samples.push(Number(process.hrtime.bigint() - s) / 1e3);
  }
  samples.sort((a, b) => a - b);
  const mean = samples.reduce((a, b) => a + b, 0) / n;
  const params = registry.forType(resource.resourceType).filter((d) => d.indexed).length;
  console.log(
    `${name}: ${params} params, ${rowCount(rows)} rows; first call ${firstMs.toFixed(2)} ms; ` +
      `warm mean ${mean.toFixed(1)} us, p50 ${samples[n / 2].toFixed(1)} us, p99 ${samples[Math.floor(n * 0.99)].toFixed(1)} us`,
  );
}
