/**
 * Lets the event loop run (other requests, timers, sockets) from inside a long loop. The embedded
 * store answers queries without leaving the microtask queue, so a background job that only awaits
 * the store would otherwise hold the thread until it ends.
 */
import { performance } from 'node:perf_hooks';

export function breathe(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * A `pause()` to await at each step of a loop of promise-only work (a transaction Bundle's entries):
 * it breathes once `budgetMs` of work has passed since it last did, and returns at once otherwise.
 * Without it such a loop holds the thread to its end: other requests wait, and so do the PGlite
 * thread's answers to writes already sent (messages, read only from the event loop), which leaves
 * the database idle.
 */
export function breather(budgetMs = 5): () => Promise<void> {
  let since = performance.now();
  return async () => {
    if (performance.now() - since >= budgetMs) {
      await breathe();
      since = performance.now();
    }
  };
}
