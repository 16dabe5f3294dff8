/**
 * Configuration, read once at the edge (CLI or test) and passed down explicitly.
 */

/** Guards against hostile or accidental input. All configurable. */
export interface Limits {
  /** Largest accepted request body in bytes (413 above). */
  maxBodyBytes: number;
  /** Deepest accepted JSON nesting (400 above); checked without recursion. */
  maxJsonDepth: number;
  /** Most entries accepted in one batch or transaction Bundle. */
  maxBundleEntries: number;
  /** Default and maximum page sizes for history and search. */
  defaultCount: number;
  maxCount: number;
}

export const DEFAULT_LIMITS: Limits = {
  maxBodyBytes: 16 * 1024 * 1024,
  maxJsonDepth: 64,
  maxBundleEntries: 10_000,
  defaultCount: 20,
  maxCount: 1000,
};

export interface ServerConfig {
  port: number;
  host: string;
  /** Public base URL; when absent it is derived from each request's Host header. */
  baseUrl?: string;
  databaseUrl?: string;
  dataDir: string;
  memory: boolean;
  limits: Limits;
}

export const DEFAULT_PORT = 8080;
