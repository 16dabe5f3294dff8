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
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      req.resume();
      throw tooLarge(limit);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}

function tooLarge(limit: number): FhirError {
  return new FhirError('too-large', `The request body is larger than the limit of ${limit} bytes`);
}
