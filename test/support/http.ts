/** Small supertest helpers shared by the end-to-end tests. */
import type supertest from 'supertest';

/** Status and body together, so that a failed expectation shows what the server said. */
export const outcome = (res: supertest.Response): { status: number; body: unknown } => ({ status: res.status, body: res.body as unknown });

/** A supertest parser that reads any response body as text (superagent buffers only the types it knows, not NDJSON). */
export function asText(response: supertest.Response, done: (err: Error | null, body: string) => void): void {
  // In Node, superagent hands parsers the http.IncomingMessage.
  const res = response as unknown as NodeJS.ReadableStream & { setEncoding(e: string): void };
  let text = '';
  res.setEncoding('utf8');
  res.on('data', (chunk: string) => {
    text += chunk;
  });
  res.on('end', () => done(null, text));
  res.on('error', (err: Error) => done(err, text));
}
