/**
 * A fixed-window request counter per key (client address): `take(key)` returns 0 when the request
 * may proceed, or the milliseconds until the window resets. In memory, per process: it blunts
 * password guessing and token-endpoint hammering; a deployment behind a proxy limits there too.
 */
export class RateLimiter {
  private windowStart = Date.now();
  private counts = new Map<string, number>();

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
  ) {}

  take(key: string): number {
    const now = Date.now();
    if (now - this.windowStart >= this.windowMs) {
      this.windowStart = now;
      this.counts = new Map();
    }
    const n = (this.counts.get(key) ?? 0) + 1;
    this.counts.set(key, n);
    return n > this.limit ? this.windowStart + this.windowMs - now : 0;
  }
}
