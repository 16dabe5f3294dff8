/**
 * V8 heap settings the server applies to itself at run time (flags given at launch would need every
 * way of starting it, `npm start`, the `continuum` bin, a container, to pass them).
 */
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';
import { PerformanceObserver } from 'node:perf_hooks';

/** The young generation's size in bytes now (both semi-spaces). */
export function youngGenerationBytes(): number {
  return getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0;
}

/**
 * Keeps V8's young generation at or under `maxMb` (both semi-spaces together).
 *
 * V8 fixes the young generation's maximum when the process starts (`--max-semi-space-size`, 16 MB
 * a semi-space on 64-bit), and a server under load grows it there: 32 MB resident, nearly all of it
 * garbage between collections. What it reads at every growth step is the growth factor, so after
 * each collection this sets the factor to 2 (the default) while doubling stays within the cap and
 * to 1 (no growth) once it would not. V8 still shrinks the space when allocation slows, and it
 * grows again up to the cap. `lift()` ends the cap (V8's own growth from then on).
 */
export function capYoungGeneration(maxMb: number): { lift(): void } {
  const cap = maxMb * 1024 * 1024;
  // The observer runs between tasks, so a long synchronous stretch (loading modules, compiling
  // a schema) may collect several times before it does: growth starts off, and is allowed one
  // doubling at a time from there.
  let factor = 1;
  setFlagsFromString('--semi-space-growth-factor=1');
  const observer = new PerformanceObserver(() => {
    const wanted = youngGenerationBytes() * 2 <= cap ? 2 : 1;
    if (wanted !== factor) {
      factor = wanted;
      setFlagsFromString(`--semi-space-growth-factor=${wanted}`);
    }
  });
  observer.observe({ entryTypes: ['gc'] });
  return {
    lift(): void {
      observer.disconnect();
      setFlagsFromString('--semi-space-growth-factor=2');
    },
  };
}
