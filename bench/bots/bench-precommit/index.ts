/** Benchmark: a pre-commit bot that accepts every write (its overhead on a create). */
export async function handler(): Promise<undefined> {
  return undefined;
}
