/**
 * The baseline: a bare Express 5 app serving a fixed Patient, run as its own process like the
 * Continuum server. Usage: node dist/bench/bare.js <port>
 *
 * Like Continuum's app it disables ETag generation and X-Powered-By, so the ratio to it measures
 * what Continuum adds (routing, negotiation, the store), not Express defaults Continuum turns off.
 */
import express, { type Request, type Response } from 'express';
import { STORED_PATIENT_JSON } from './fixtures';

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) {
  console.error('usage: node dist/bench/bare.js <port>');
  process.exit(2);
}

const app = express();
app.disable('x-powered-by');
app.set('etag', false);

app.get('/metadata', (_req: Request, res: Response) => {
  res.type('application/fhir+json').send('{"resourceType":"CapabilityStatement","status":"active"}');
});

app.get('/Patient/:id', (_req: Request, res: Response) => {
  res.type('application/fhir+json').send(STORED_PATIENT_JSON);
});

// Express 5 passes a listen error to this callback.
const server = app.listen(port, '127.0.0.1', (err?: Error) => {
  if (err) {
    console.error(`bare: cannot listen on 127.0.0.1:${port}: ${err.message}`);
    process.exit(1);
  }
  console.log(`bare Express baseline on http://127.0.0.1:${port}`);
});
const stop = (): void => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
