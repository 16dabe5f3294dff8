/**
 * The routes served before the FHIR API (the authorization server's) see only the requests under
 * their prefixes: a FHIR request skips their layers entirely (matching it against each of them
 * was ~15 % of what a one-hit search allocated). Paths match case-insensitively, as Express does.
 */
import express from 'express';
import request from 'supertest';
import { createApp } from '../../src/http/app';

function appSeeing(seen: string[]): express.Express {
  return createApp(
    () => {
      throw new Error('no FHIR request gets this far without a token');
    },
    {
      maxBodyBytes: 1_000_000,
      maxJsonDepth: 100,
      authenticate: () => Promise.reject(new Error('no tokens here')),
      routes: {
        prefixes: ['/auth', '/.well-known'],
        router: () => {
          const r = express.Router();
          r.use((req, _res, next) => {
            seen.push(req.path);
            next();
          });
          r.get('/auth/ping', (_req, res) => {
            res.send('pong');
          });
          r.get('/.well-known/thing', (_req, res) => {
            res.json({ ok: true });
          });
          return r;
        },
      },
    },
  );
}

test('FHIR requests never reach the prefixed routes; their own paths do, in any case', async () => {
  const seen: string[] = [];
  const app = appSeeing(seen);
  expect((await request(app).get('/Patient?name=smith')).status).toBe(401);
  expect((await request(app).get('/authx')).status).toBe(401); // a prefix is a whole segment
  expect((await request(app).get('/Patient/auth')).status).toBe(401);
  expect(seen).toEqual([]);
  const ping = await request(app).get('/AUTH/ping');
  expect({ status: ping.status, text: ping.text }).toEqual({ status: 200, text: 'pong' });
  expect((await request(app).get('/.well-known/thing')).body).toEqual({ ok: true });
  expect(seen).toEqual(['/AUTH/ping', '/.well-known/thing']);
  // Under a prefix but not one of its routes: the FHIR API answers after them, as before.
  expect((await request(app).get('/auth/nothing-here')).status).toBe(401);
  expect(seen).toEqual(['/AUTH/ping', '/.well-known/thing', '/auth/nothing-here']);
});
