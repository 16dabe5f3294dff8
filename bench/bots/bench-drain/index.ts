/** Benchmark: a post-commit bot that does nothing (queue drain rate). */
export async function handler(): Promise<undefined> {
  return undefined;
}
