/**
 * A progress bar on a terminal, or a line every few seconds when output is a log or a pipe.
 */
export class Progress {
  private lastDraw = 0;
  private readonly start = Date.now();

  constructor(
    private readonly total: number,
    private readonly out: NodeJS.WriteStream = process.stderr,
  ) {}

  /** Reports `done` of `total` units with a short status text. */
  update(done: number, status: string, force = false): void {
    const now = Date.now();
    const interval = this.out.isTTY ? 100 : 5000;
    if (!force && now - this.lastDraw < interval) {
      return;
    }
    this.lastDraw = now;
    const ratio = this.total > 0 ? Math.min(1, done / this.total) : 1;
    const elapsed = (now - this.start) / 1000;
    const eta = ratio > 0 && ratio < 1 ? ` eta ${Math.round((elapsed / ratio) * (1 - ratio))}s` : '';
    if (this.out.isTTY) {
      const width = 30;
      const filled = Math.round(ratio * width);
      const bar = '#'.repeat(filled) + '-'.repeat(width - filled);
      this.out.write(`\r[${bar}] ${(ratio * 100).toFixed(0).padStart(3)}% ${status}${eta}\x1b[K`);
    } else {
      this.out.write(`${(ratio * 100).toFixed(0)}% ${status}${eta}\n`);
    }
  }

  finish(): void {
    if (this.out.isTTY) {
      this.out.write('\n');
    }
  }
}
