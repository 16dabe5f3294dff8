import { badRequest } from '../errors';
import type { FhirRequest } from './types';

/**
 * Rejects query parameters an interaction does not understand (400 naming them), unless the client
 * asked for `Prefer: handling=lenient`, in which case they are ignored.
 */
export function checkParams(req: FhirRequest, allowed: readonly string[]): void {
  if (req.preferHandling === 'lenient') {
    return;
  }
  const unknown = Object.keys(req.query).filter((k) => !allowed.includes(k));
  if (unknown.length > 0) {
    throw badRequest(
      `Unknown parameter${unknown.length > 1 ? 's' : ''} ${unknown.map((u) => `'${u}'`).join(', ')} for this interaction (allowed: ${allowed.join(', ')})`,
    );
  }
}

/** Parameters every read-like interaction accepts. */
export const READ_PARAMS = ['_summary', '_elements', '_format', '_pretty'] as const;
