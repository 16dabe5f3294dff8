/**
 * SMART on FHIR end to end, in a real browser: headless Chromium (Debian's /usr/bin/chromium, driven
 * by playwright-core) runs the real `fhirclient` library in a small app page
 * (test/e2e/smart-app/index.html). The app makes a standalone launch with PKCE (S256) against
 * Continuum, the test signs in on the server's login page as a Patient user, and the app reads the
 * Patient and pages through its Observations with the token it obtained.
 *
 * Two HTTP servers on loopback, on different ports (so every call from the app is cross-origin and
 * needs CORS, as for a real app): Continuum itself, and a static server for the app page, the
 * fhirclient browser bundle and the app's config. Loopback http is a secure context, so the
 * browser's crypto.subtle (which fhirclient needs for PKCE) is available.
 *
 * The test fails (it never skips) when Chromium is missing.
 */
import { createHash } from 'node:crypto';
import { accessSync, constants, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Observation, Patient } from '@medplum/fhirtypes';
import { type Browser, chromium, type Page, type Request } from 'playwright-core';
import { observation, patient } from '../support/builders';
import { FHIR_JSON, startTestServer, type TestServer } from '../support/server';

jest.setTimeout(60_000);

const CHROMIUM = '/usr/bin/chromium';
const CLIENT_ID = 'browser-app';
const SCOPE = 'openid fhirUser launch/patient offline_access patient/*.rs';
const USERNAME = 'pat';
const PASSWORD = 'correct horse';
const OBSERVATIONS = 12;
const PAGE_SIZE = 5;

const APP_HTML = join(__dirname, 'smart-app', 'index.html');
const FHIR_CLIENT_JS = require.resolve('fhirclient/build/fhir-client.js');

/** What the app writes into <pre id="result">. */
interface AppResult {
  patientId: string | null;
  patient: { resourceType: string; id: string };
  observationIds: string[];
  observationTypes: string[];
  observationSubjects: (string | undefined)[];
  unfilteredObservationIds: string[];
  otherObservationRead: { status: number | null; id?: string; message?: string };
  token: {
    token_type?: string;
    scope?: string;
    patient?: string;
    expires_in?: number;
    hasRefreshToken: boolean;
    hasIdToken: boolean;
  };
  locationAfterReady: string;
}

let server: TestServer | undefined;
let fhirHttp: Server | undefined;
let appHttp: Server | undefined;
let browser: Browser | undefined;

let baseUrl = '';
let appUrl = '';
let patientId = '';
let observationIds: string[] = [];
let otherPatientId = '';
let otherObservationId = '';

function listen(srv: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => resolve((srv.address() as AddressInfo).port));
  });
}

function closeServer(srv: Server | undefined): Promise<void> {
  if (!srv?.listening) {
    return Promise.resolve();
  }
  srv.closeAllConnections();
  return new Promise((resolve, reject) => srv.close((err) => (err ? reject(err) : resolve())));
}

/** The app: its page, the fhirclient browser bundle, and config.js naming the server under test. */
function serveApp(req: IncomingMessage, res: ServerResponse): void {
  const path = new URL(req.url ?? '/', 'http://app.invalid').pathname;
  const send = (type: string, body: string | Buffer): void => {
    res.writeHead(200, { 'Content-Type': type, 'Cache-Control': 'no-store' });
    res.end(body);
  };
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405).end();
  } else if (path === '/' || path === '/index.html') {
    send('text/html; charset=utf-8', readFileSync(APP_HTML));
  } else if (path === '/fhir-client.js') {
    send('text/javascript; charset=utf-8', readFileSync(FHIR_CLIENT_JS));
  } else if (path === '/config.js') {
    const config = { iss: baseUrl, clientId: CLIENT_ID, scope: SCOPE, redirectUri: appUrl, probe: { otherObservationId } };
    send('text/javascript; charset=utf-8', `window.SMART_TEST_CONFIG = ${JSON.stringify(config)};\n`);
  } else {
    res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
  }
}

async function create<T extends Patient | Observation>(resource: T): Promise<T> {
  const res = await server!.request().post(`/${resource.resourceType}`).set('Content-Type', FHIR_JSON).send(resource);
  if (res.status !== 201) {
    throw new Error(`creating a ${resource.resourceType} answered ${res.status}: ${JSON.stringify(res.body)}`);
  }
  return res.body as T;
}

function heartRate(subject: string, i: number): Observation {
  return observation(subject, {
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'vital-signs' }] }],
    code: { coding: [{ system: 'http://loinc.org', code: '8867-4', display: 'Heart rate' }] },
    effectiveDateTime: `2024-03-${String(i + 1).padStart(2, '0')}T08:00:00Z`,
    valueQuantity: { value: 60 + i, unit: 'beats/minute', system: 'http://unitsofmeasure.org', code: '/min' },
  });
}

beforeAll(async () => {
  // Fail loudly (never skip) without a browser.
  try {
    accessSync(CHROMIUM, constants.X_OK);
  } catch {
    throw new Error(`Chromium is required for this test and was not found at ${CHROMIUM} (Debian package 'chromium')`);
  }

  // Continuum on a real port. The HTTP server listens first (port 0, so no race for a free port) and
  // hands requests to the app once it exists, because the app's base URL must name the port.
  fhirHttp = createServer((req, res) => {
    if (!server) {
      res.writeHead(503).end();
      return;
    }
    server.continuum.app(req, res);
  });
  baseUrl = `http://127.0.0.1:${await listen(fhirHttp)}`;
  server = await startTestServer({ baseUrl });

  appHttp = createServer(serveApp);
  appUrl = `http://127.0.0.1:${await listen(appHttp)}/index.html`;

  // The patient who signs in, with OBSERVATIONS heart rates; another patient with one of their own.
  const pat = await create(patient({ name: [{ family: 'Browser', given: ['Pat'] }] }));
  patientId = pat.id!;
  observationIds = [];
  for (let i = 0; i < OBSERVATIONS; i++) {
    observationIds.push((await create(heartRate(`Patient/${patientId}`, i))).id!);
  }
  const other = await create(patient({ name: [{ family: 'Other', given: ['Olive'] }] }));
  otherPatientId = other.id!;
  otherObservationId = (await create(heartRate(`Patient/${otherPatientId}`, 0))).id!;

  await server.continuum.auth.clients.add({
    clientId: CLIENT_ID,
    name: 'Browser test app',
    type: 'public',
    redirectUris: [appUrl],
    scope: SCOPE,
  });
  await server.continuum.auth.users.add({ username: USERNAME, password: PASSWORD, fhirUser: `Patient/${patientId}` });

  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
});

afterAll(async () => {
  await browser?.close();
  await closeServer(appHttp);
  await closeServer(fhirHttp);
  await server?.close();
});

/** Everything the page did, for failure messages. */
class Recorder {
  readonly requests: Request[] = [];
  private readonly lines: string[] = [];

  constructor(private readonly page: Page) {
    page.on('request', (r) => {
      this.requests.push(r);
      this.lines.push(`> ${r.method()} ${r.url()}`);
    });
    page.on('response', (r) => this.lines.push(`< ${r.status()} ${r.request().method()} ${r.url()}`));
    page.on('requestfailed', (r) => this.lines.push(`! ${r.method()} ${r.url()}: ${r.failure()?.errorText ?? 'failed'}`));
    page.on('console', (m) => this.lines.push(`console.${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => this.lines.push(`pageerror: ${e.stack ?? e.message}`));
  }

  async report(): Promise<string> {
    let body = '';
    try {
      body = (await this.page.locator('body').innerText({ timeout: 1_000 })).slice(0, 2_000);
    } catch {
      body = '(page body unavailable)';
    }
    return [`page URL: ${this.page.url()}`, 'page text:', body, 'browser log:', ...this.lines.slice(-80)].join('\n');
  }

  /** Runs one step; if it fails, the error says which step and what the browser saw. */
  async step<T>(name: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw new Error(`${name}: ${err instanceof Error ? err.message : String(err)}\n\n${await this.report()}`);
    }
  }

  /** Fails with the app's own error if it wrote one. */
  async checkAppError(): Promise<void> {
    const error = this.page.locator('#error');
    if ((await error.count()) > 0) {
      throw new Error(`the app failed:\n${await error.innerText()}\n\n${await this.report()}`);
    }
  }
}

const s256 = (verifier: string): string => createHash('sha256').update(verifier).digest('base64url');

test('fhirclient makes a standalone launch with PKCE, signs in, reads the Patient and pages through its Observations', async () => {
  const context = await browser!.newContext();
  try {
    const page = await context.newPage();
    const rec = new Recorder(page);

    // 1. The app starts the launch; the server shows its login page (or the app reports why not).
    await rec.step('open the app and reach the login page', async () => {
      await page.goto(appUrl);
      await page.locator('input[name="username"], #error').first().waitFor({ timeout: 20_000 });
    });
    await rec.checkAppError();

    // 2. Sign in as the Patient user; the server redirects back to the app with a code.
    await rec.step('sign in', async () => {
      await page.locator('input[name="username"]').fill(USERNAME);
      await page.locator('input[name="password"][type="password"]').fill(PASSWORD);
      await page.locator('button[type="submit"]', { hasText: /^\s*Sign in/ }).click();
    });

    // 3. The app exchanges the code and does its reads; it writes #result or #error.
    await rec.step('wait for the app to finish', () => page.locator('#result, #error').first().waitFor({ timeout: 30_000 }));
    await rec.checkAppError();
    const result = JSON.parse(await page.locator('#result').innerText()) as AppResult;
    const explain = `\napp result: ${JSON.stringify(result, null, 2)}\n\n${await rec.report()}`;
    const fail = (message: string): never => {
      throw new Error(message);
    };
    try {
      // The authorization request: code flow with PKCE S256, for this client, redirect URI and server.
      const authorize = rec.requests.find((r) => r.method() === 'GET' && r.url().startsWith(`${baseUrl}/auth/authorize?`)) ?? fail('no GET /auth/authorize request was made');
      const authParams = new URL(authorize.url()).searchParams;
      expect(authParams.get('response_type')).toBe('code');
      expect(authParams.get('client_id')).toBe(CLIENT_ID);
      expect(authParams.get('redirect_uri')).toBe(appUrl);
      expect(authParams.get('aud')).toBe(baseUrl);
      expect(authParams.get('scope')).toBe(SCOPE);
      expect(authParams.get('code_challenge_method')).toBe('S256');
      const challenge = authParams.get('code_challenge') ?? fail('the authorization request has no code_challenge');
      expect(challenge).toMatch(/^[A-Za-z0-9_-]{43}$/);
      const state = authParams.get('state') ?? fail('the authorization request has no state');

      // The sign-in ended in a 302/303 to the redirect URI carrying a code and the same state.
      const callback = rec.requests.find((r) => r.url().startsWith(`${appUrl}?`) && new URL(r.url()).searchParams.has('code')) ?? fail('the browser never came back to the app with a code');
      const callbackParams = new URL(callback.url()).searchParams;
      expect(callbackParams.get('state')).toBe(state);
      const redirect = callback.redirectedFrom() ?? fail('the return to the app was not an HTTP redirect');
      expect([302, 303]).toContain((await redirect.response())?.status());

      // The token request: the code, this client and the verifier that hashes to the challenge.
      const tokenRequest = rec.requests.find((r) => r.method() === 'POST' && r.url() === `${baseUrl}/auth/token`) ?? fail('no POST /auth/token request was made');
      const tokenForm = new URLSearchParams(tokenRequest.postData() ?? '');
      expect(tokenForm.get('grant_type')).toBe('authorization_code');
      expect(tokenForm.get('code')).toBe(callbackParams.get('code'));
      expect(tokenForm.get('client_id')).toBe(CLIENT_ID);
      expect(tokenForm.get('redirect_uri')).toBe(appUrl);
      expect(s256(tokenForm.get('code_verifier') ?? fail('the token request has no code_verifier'))).toBe(challenge);
      expect((await tokenRequest.response())?.status()).toBe(200);
      expect(result.token.token_type?.toLowerCase()).toBe('bearer');
      expect(result.token.patient).toBe(patientId);

      // The Patient in context is the one who signed in.
      expect(result.patientId).toBe(patientId);
      expect(result.patient).toEqual({ resourceType: 'Patient', id: patientId });

      // All of their Observations and nothing else, over several pages.
      expect([...result.observationIds].sort()).toEqual([...observationIds].sort());
      expect(result.observationIds).not.toContain(otherObservationId);
      expect(new Set(result.observationTypes)).toEqual(new Set(['Observation']));
      expect(new Set(result.observationSubjects)).toEqual(new Set([`Patient/${patientId}`]));
      const pageRequests = rec.requests.filter((r) => {
        const u = new URL(r.url());
        return r.method() === 'GET' && u.origin === baseUrl && u.pathname === '/Observation' && u.searchParams.get('_count') === String(PAGE_SIZE);
      });
      expect(pageRequests.length).toBeGreaterThanOrEqual(Math.ceil(OBSERVATIONS / PAGE_SIZE));
      expect(new Set(pageRequests.map((r) => r.url())).size).toBe(pageRequests.length);

      // The patient scope bounds what the token sees: a search without the patient finds only theirs,
      // and the other patient's Observation cannot be read.
      expect([...result.unfilteredObservationIds].sort()).toEqual([...observationIds].sort());
      const otherStatus = result.otherObservationRead.status;
      if (otherStatus === null || otherStatus < 400 || otherStatus >= 500) {
        fail(`reading the other patient's Observation/${otherObservationId} answered ${otherStatus}, expected a 4xx`);
      }

      // Every FHIR request the app made carried the bearer token.
      const fhirRequests = rec.requests.filter((r) => {
        const u = new URL(r.url());
        return u.origin === baseUrl && (u.pathname.startsWith('/Patient') || u.pathname.startsWith('/Observation'));
      });
      expect(fhirRequests.length).toBeGreaterThan(0);
      for (const r of fhirRequests) {
        expect((await r.allHeaders()).authorization).toMatch(/^Bearer \S+$/);
      }
    } catch (err) {
      // Every failed check also shows what the app returned and what the browser did.
      if (err instanceof Error) {
        err.message += explain;
      }
      throw err;
    }
  } finally {
    await context.close();
  }
});
