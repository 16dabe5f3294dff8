/**
 * Reading request bodies with a byte limit (413). Parsing the JSON safely is src/util/json.ts.
 */
import type { Request } from 'express';
import { FhirError } from '../errors';

/** Reads the raw body, refusing more than `limit` bytes (declared or actual). */
export async function readBody(req: Request, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume();
    throw tooLarge(limit);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > limit) {
        req.resume();
        throw tooLarge(limit);
      }
      chunks.push(chunk);
    }
  } catch (err) {
    if (err instanceof FhirError) {
      throw err;
    }
    // The client closed the connection before its body was complete: its request, not a fault
    // of the server (no one reads the answer, but the audit trail and the logs see a 400).
    throw new FhirError('invalid', `The request body ended after ${size} bytes: the client closed the connection (${(err as Error).message})`);
  }
  return Buffer.concat(chunks, size);
}

function tooLarge(limit: number): FhirError {
  return new FhirError('too-large', `The request body is larger than the limit of ${limit} bytes`);
}
