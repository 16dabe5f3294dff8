/** Benchmark: a bot that does nothing ($execute throughput). */
export async function handler(): Promise<undefined> {
  return undefined;
}
