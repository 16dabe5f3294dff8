/**
 * Lets the event loop run (other requests, timers, sockets) from inside a long loop. The embedded
 * store answers queries without leaving the microtask queue, so a background job that only awaits
 * the store would otherwise hold the thread until it ends.
 */
export function breathe(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
