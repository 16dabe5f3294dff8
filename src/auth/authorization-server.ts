/**
 * The built-in SMART App Launch 2.x / Backend Services authorization server:
 *
 *   GET  /.well-known/smart-configuration, /.well-known/openid-configuration   discovery
 *   GET|POST /auth/authorize   authorization request -> sign-in page
 *   POST /auth/login           sign-in (and patient picker) -> redirect with code
 *   POST /auth/token           authorization_code (PKCE S256), refresh_token, client_credentials
 *   POST /auth/introspect      RFC 7662
 *   POST /auth/revoke          RFC 7009
 *   GET  /auth/jwks            the server's public keys
 *   POST /auth/launch          an EHR launch context (`launch` parameter) for a patient
 *
 * Token and refresh lifetimes, rate limits and the base URL come from AuthOptions. Everything
 * persistent (clients, users, keys, codes, refresh tokens, revocations, assertion ids) is in the
 * store's auth records, so several processes against one database act as one server.
 */
import { createHash, randomBytes } from 'node:crypto';
import express, { type Request, type Response, type Router } from 'express';
import type { AuditRow, Store } from '../store/api';
import type { AuditLog } from '../audit/audit-log';
import { type ClientRegistration, Clients, Users } from './accounts';
import { ClientAuthenticator, OAuthError, ASSERTION_ALGS } from './client-auth';
import { ExternalIssuers, type TrustedIssuer } from './external';
import { KeyRing } from './keys';
import { errorPage, loginPage, managePage, pickerPage } from './pages';
import type { Principal } from './policy';
import { RateLimiter } from './rate-limit';
import { narrowScopes, parseScopes } from './scopes';
import { TokenError, Tokens } from './tokens';

export interface AuthOptions {
  /** Access token lifetime for apps acting for a user (seconds, at most 3600). */
  accessTokenSeconds: number;
  /** Access token lifetime for backend services (seconds, at most 300). */
  backendTokenSeconds: number;
  /** Refresh token lifetime with offline_access (seconds). */
  offlineRefreshSeconds: number;
  /** Refresh token lifetime with online_access (seconds). */
  onlineRefreshSeconds: number;
  /** Requests per client address per minute on /auth/*. */
  authRequestsPerMinute: number;
  /** External identity providers whose access tokens are accepted too. */
  trustedIssuers: TrustedIssuer[];
}

export const DEFAULT_AUTH_OPTIONS: AuthOptions = {
  accessTokenSeconds: 3600,
  backendTokenSeconds: 300,
  offlineRefreshSeconds: 30 * 24 * 3600,
  onlineRefreshSeconds: 12 * 3600,
  authRequestsPerMinute: 300,
  trustedIssuers: [],
};

const CODE_SECONDS = 120;
const PENDING_SECONDS = 600;
const LAUNCH_SECONDS = 3600;

interface PendingAuthorization {
  clientId: string;
  redirectUri: string;
  scope: string;
  state?: string;
  nonce?: string;
  codeChallenge: string;
  launchPatient?: string;
  launchEncounter?: string;
  /** Set once the user signed in (the picker step). */
  username?: string;
  fhirUser?: string;
}

interface CodeGrant {
  clientId: string;
  redirectUri: string;
  scope: string;
  codeChallenge: string;
  nonce?: string;
  patient?: string;
  encounter?: string;
  fhirUser: string;
}

interface RefreshGrant {
  clientId: string;
  scope: string;
  patient?: string;
  fhirUser?: string;
}

const sha256 = (s: string): string => createHash('sha256').update(s).digest('base64url');
const randomToken = (): string => randomBytes(32).toString('base64url');

/** RFC 7636 S256: BASE64URL(SHA256(verifier)). */
export function pkceChallenge(verifier: string): string {
  return createHash('sha256').update(verifier, 'ascii').digest('base64url');
}

function formValue(body: unknown, name: string): string | undefined {
  const v = (body as Record<string, unknown> | undefined)?.[name];
  return typeof v === 'string' ? v : undefined;
}

export class AuthorizationServer {
  readonly clients: Clients;
  readonly users: Users;
  readonly keys: KeyRing;
  readonly tokens: Tokens;
  private readonly clientAuth: ClientAuthenticator;
  private readonly limiter: RateLimiter;
  private readonly external: ExternalIssuers;

  constructor(
    private readonly store: Store,
    readonly options: AuthOptions,
    private readonly now: () => Date,
    private readonly logError: (err: unknown, where: string) => void = (err) => console.error('[continuum] auth:', err),
    private readonly audit?: AuditLog,
  ) {
    this.clients = new Clients(store.auth);
    this.users = new Users(store.auth);
    this.keys = new KeyRing(store.auth, now);
    this.tokens = new Tokens(this.keys, store.auth, now);
    this.clientAuth = new ClientAuthenticator(this.clients, store.auth, now);
    this.limiter = new RateLimiter(options.authRequestsPerMinute, 60_000);
    this.external = new ExternalIssuers(options.trustedIssuers, now);
  }

  async init(): Promise<void> {
    await this.keys.load();
  }

  /** Verifies a bearer token for a FHIR request (ours, or a trusted issuer's); throws TokenError. */
  async authenticate(token: string, baseUrl: string): Promise<Principal> {
    const trusted = this.external.issuerOf(token);
    if (trusted && trusted.issuer !== baseUrl) {
      return this.external.verify(trusted, token, baseUrl);
    }
    return (await this.tokens.verify(token, baseUrl)).principal;
  }

  /** A token for local development and tests (`continuum token`). */
  async issueToken(baseUrl: string, principal: Omit<Principal, 'jti'>, lifetime = this.options.accessTokenSeconds): Promise<string> {
    return (await this.tokens.issueAccess(principal, baseUrl, lifetime)).token;
  }

  /** SMART configuration (App Launch 2.x, Conformance). */
  smartConfiguration(baseUrl: string): Record<string, unknown> {
    return {
      issuer: baseUrl,
      jwks_uri: `${baseUrl}/auth/jwks`,
      authorization_endpoint: `${baseUrl}/auth/authorize`,
      token_endpoint: `${baseUrl}/auth/token`,
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'private_key_jwt'],
      token_endpoint_auth_signing_alg_values_supported: ASSERTION_ALGS,
      grant_types_supported: ['authorization_code', 'refresh_token', 'client_credentials'],
      introspection_endpoint: `${baseUrl}/auth/introspect`,
      revocation_endpoint: `${baseUrl}/auth/revoke`,
      management_endpoint: `${baseUrl}/auth/manage`,
      scopes_supported: [
        'openid',
        'fhirUser',
        'launch',
        'launch/patient',
        'offline_access',
        'online_access',
        'patient/*.cruds',
        'user/*.cruds',
        'system/*.cruds',
        'patient/*.read',
        'patient/*.write',
        'user/*.read',
        'user/*.write',
        'system/*.read',
        'system/*.write',
        'patient/*.*',
        'user/*.*',
        'system/*.*',
      ],
      response_types_supported: ['code'],
      code_challenge_methods_supported: ['S256'],
      capabilities: [
        'launch-ehr',
        'launch-standalone',
        'authorize-post',
        'client-public',
        'client-confidential-symmetric',
        'client-confidential-asymmetric',
        'sso-openid-connect',
        'context-banner',
        'context-ehr-patient',
        'context-standalone-patient',
        'permission-offline',
        'permission-online',
        'permission-patient',
        'permission-user',
        'permission-v1',
        'permission-v2',
      ],
    };
  }

  /** OpenID Connect discovery (the subset a SMART server needs). */
  openidConfiguration(baseUrl: string): Record<string, unknown> {
    return {
      issuer: baseUrl,
      authorization_endpoint: `${baseUrl}/auth/authorize`,
      token_endpoint: `${baseUrl}/auth/token`,
      jwks_uri: `${baseUrl}/auth/jwks`,
      introspection_endpoint: `${baseUrl}/auth/introspect`,
      revocation_endpoint: `${baseUrl}/auth/revoke`,
      response_types_supported: ['code'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['RS256'],
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'private_key_jwt'],
      grant_types_supported: ['authorization_code', 'refresh_token', 'client_credentials'],
      code_challenge_methods_supported: ['S256'],
      scopes_supported: ['openid', 'fhirUser', 'launch', 'launch/patient', 'offline_access', 'online_access'],
      claims_supported: ['iss', 'sub', 'aud', 'exp', 'iat', 'nonce', 'fhirUser'],
    };
  }

  /** Where router() serves: every one of its paths is under one of these. */
  static readonly PATH_PREFIXES: readonly string[] = ['/auth', '/.well-known'];

  /** The Express routes: discovery documents and /auth/* (PATH_PREFIXES). */
  router(baseUrlOf: (req: Request) => string): Router {
    const r = express.Router();
    const form = express.urlencoded({ extended: false, limit: '64kb', parameterLimit: 100 });
    const json = express.json({ limit: '16kb' });
    const limited = (req: Request, res: Response, next: () => void): void => {
      const wait = this.limiter.take(req.ip ?? 'unknown');
      if (wait > 0) {
        res.setHeader('Retry-After', String(Math.ceil(wait / 1000)));
        res.status(429).json({ error: 'slow_down', error_description: 'Too many requests to the authorization server; retry later' });
        return;
      }
      next();
    };
    const wrap =
      (fn: (req: Request, res: Response) => Promise<void>) =>
      async (req: Request, res: Response): Promise<void> => {
        try {
          await fn(req, res);
        } catch (err) {
          if (err instanceof OAuthError) {
            if (err.status === 401 && req.headers.authorization?.startsWith('Basic ')) {
              res.setHeader('WWW-Authenticate', 'Basic realm="continuum"');
            }
            res.status(err.status).json({ error: err.error, error_description: err.message });
            return;
          }
          throw err;
        }
      };

    r.get('/.well-known/smart-configuration', (req, res) => {
      res.setHeader('Cache-Control', 'public, max-age=3600');
      res.json(this.smartConfiguration(baseUrlOf(req)));
    });
    r.get('/.well-known/openid-configuration', (req, res) => {
      res.setHeader('Cache-Control', 'public, max-age=3600');
      res.json(this.openidConfiguration(baseUrlOf(req)));
    });
    r.get('/auth/jwks', (_req, res) => {
      res.setHeader('Cache-Control', 'public, max-age=300');
      res.json(this.keys.jwks());
    });
    r.use('/auth', (_req: Request, res: Response, next: () => void) => {
      // The sign-in page must not be framed by another site (clickjacking, RFC 9700 section 4.16).
      res.setHeader('X-Frame-Options', 'DENY');
      res.setHeader('Content-Security-Policy', "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'");
      res.setHeader('Referrer-Policy', 'no-referrer');
      next();
    });
    r.use('/auth', limited);
    r.get('/auth/authorize', wrap((req, res) => this.authorize(req, res, new URL(req.originalUrl, 'http://x').searchParams, baseUrlOf(req))));
    r.post('/auth/authorize', form, wrap((req, res) => this.authorize(req, res, new URLSearchParams(req.body as Record<string, string>), baseUrlOf(req))));
    r.post('/auth/login', form, wrap((req, res) => this.login(req, res)));
    r.post('/auth/token', form, wrap((req, res) => this.token(req, res, baseUrlOf(req))));
    r.post('/auth/introspect', form, wrap((req, res) => this.introspect(req, res, baseUrlOf(req))));
    r.post('/auth/revoke', form, wrap((req, res) => this.revoke(req, res, baseUrlOf(req))));
    r.post('/auth/launch', json, form, wrap((req, res) => this.launch(req, res, baseUrlOf(req))));
    r.get('/auth/manage', (_req, res) => {
      res.status(200).type('html').send(managePage({}));
    });
    r.post('/auth/manage', form, wrap((req, res) => this.manage(req, res)));
    // Body-parser failures (bad JSON, too large) and anything else: an OAuth error, never a stack trace.
    r.use('/auth', (err: unknown, _req: Request, res: Response, next: (e?: unknown) => void) => {
      if (res.headersSent) {
        next(err);
        return;
      }
      const status = (err as { status?: number }).status;
      if (status !== undefined && status >= 400 && status < 500) {
        res.status(status).json({ error: 'invalid_request', error_description: (err as Error).message });
        return;
      }
      this.logError(err, 'auth');
      res.status(500).json({ error: 'server_error', error_description: 'Internal error; the incident was logged' });
    });
    return r;
  }

  /** An audit row for a sign-in or token request. */
  private record(interaction: string, action: AuditRow['action'], outcome: AuditRow['outcome'], rest: Partial<AuditRow>): void {
    this.audit?.record({ recorded: this.now().toISOString(), category: 'login', interaction, action, outcome, ...rest });
  }

  // -------------------------------------------------------------------------------------------
  // Authorization code flow

  private async authorize(_req: Request, res: Response, params: URLSearchParams, baseUrl: string): Promise<void> {
    const p = (name: string): string | undefined => params.get(name) ?? undefined;
    const clientId = p('client_id');
    const redirectUri = p('redirect_uri');
    const client = clientId ? await this.clients.get(clientId) : undefined;
    // Until the client and its redirect URI check out, errors are shown here, never redirected.
    if (!client) {
      res.status(400).type('html').send(errorPage('Unknown application', `No application is registered as '${clientId ?? ''}'.`));
      return;
    }
    if (!redirectUri || !client.redirectUris.includes(redirectUri)) {
      res.status(400).type('html').send(errorPage('Wrong redirect address', `The redirect_uri is not one registered for ${client.name ?? client.clientId}.`));
      return;
    }
    const state = p('state');
    const fail = (error: string, description: string): void => {
      const to = new URL(redirectUri);
      to.searchParams.set('error', error);
      to.searchParams.set('error_description', description);
      if (state !== undefined) {
        to.searchParams.set('state', state);
      }
      res.redirect(302, to.toString());
    };
    if (p('response_type') !== 'code') {
      return fail('unsupported_response_type', 'response_type must be code');
    }
    if (!state) {
      // SMART App Launch: state is required (it protects the app against cross-site request forgery).
      return fail('invalid_request', 'state is required');
    }
    if ((p('aud') ?? '').replace(/\/+$/, '') !== baseUrl) {
      return fail('invalid_request', `aud must be this FHIR server's base URL, ${baseUrl}`);
    }
    const challenge = p('code_challenge');
    if (!challenge || p('code_challenge_method') !== 'S256') {
      return fail('invalid_request', 'PKCE is required: send code_challenge with code_challenge_method=S256');
    }
    if (!/^[A-Za-z0-9_-]{43}$/.test(challenge)) {
      return fail('invalid_request', 'code_challenge must be a base64url SHA-256 digest (43 characters)');
    }
    const scope = narrowScopes(p('scope') ?? '', client.scope);
    if (!scope) {
      return fail('invalid_scope', `None of the requested scopes is allowed for ${client.clientId}`);
    }
    let launchPatient: string | undefined;
    let launchEncounter: string | undefined;
    const launch = p('launch');
    if (launch !== undefined) {
      // A launch id is good for one authorization.
      const ctx = await this.store.auth.consume<{ patient: string; encounter?: string }>('launch', launch);
      if (!ctx) {
        return fail('invalid_request', 'The launch parameter is unknown or expired');
      }
      launchPatient = ctx.doc.patient;
      launchEncounter = ctx.doc.encounter;
    }
    const pending: PendingAuthorization = { clientId: client.clientId, redirectUri, scope, state, nonce: p('nonce'), codeChallenge: challenge, launchPatient, launchEncounter };
    const requestId = randomToken();
    await this.store.auth.put('authz', requestId, pending, new Date(this.now().getTime() + PENDING_SECONDS * 1000));
    res.status(200).type('html').send(loginPage({ requestId, clientName: client.name ?? client.clientId, scopes: scope.split(' ') }));
  }

  private async login(req: Request, res: Response): Promise<void> {
    const body = req.body as unknown;
    const requestId = formValue(body, 'request') ?? '';
    const record = await this.store.auth.get<PendingAuthorization>('authz', requestId);
    if (!record || record.usedAt) {
      res.status(400).type('html').send(errorPage('Sign-in expired', 'This sign-in request is unknown or has expired. Start again from the application.'));
      return;
    }
    const pending = record.doc;
    const client = await this.clients.get(pending.clientId);
    if (!client) {
      res.status(400).type('html').send(errorPage('Unknown application', 'The application was removed.'));
      return;
    }
    const action = formValue(body, 'action') ?? 'allow';
    const redirect = (params: Record<string, string | undefined>): void => {
      const to = new URL(pending.redirectUri);
      for (const [k, v] of Object.entries(params)) {
        if (v !== undefined) {
          to.searchParams.set(k, v);
        }
      }
      res.redirect(302, to.toString());
    };
    if (action === 'deny') {
      await this.store.auth.consume('authz', requestId);
      return redirect({ error: 'access_denied', error_description: 'The user denied the request', state: pending.state });
    }
    let fhirUser = pending.fhirUser;
    if (!pending.username) {
      const account = await this.users.verify(formValue(body, 'username') ?? '', formValue(body, 'password') ?? '');
      if (!account) {
        this.record('login', 'E', '4', { clientId: pending.clientId, detail: 'sign-in failed: wrong user name or password' });
        res
          .status(401)
          .type('html')
          .send(loginPage({ requestId, clientName: client.name ?? client.clientId, scopes: pending.scope.split(' '), error: 'Wrong user name or password.', username: formValue(body, 'username') }));
        return;
      }
      this.record('login', 'E', '0', { clientId: pending.clientId, fhirUser: account.fhirUser, detail: `sign-in of ${account.username}` });
      fhirUser = account.fhirUser;
      pending.username = account.username;
      pending.fhirUser = account.fhirUser;
    }
    const scopes = parseScopes(pending.scope);
    let patient = pending.launchPatient;
    if (fhirUser?.startsWith('Patient/')) {
      patient = fhirUser.slice('Patient/'.length);
    } else if (!patient && scopes.other.has('launch/patient')) {
      const picked = formValue(body, 'patient');
      if (action === 'pick' && picked && (await this.store.read('Patient', picked))?.json) {
        patient = picked;
      } else {
        await this.store.auth.put('authz', requestId, pending, record.expiresAt ? new Date(record.expiresAt) : undefined);
        const filter = formValue(body, 'filter');
        res.status(200).type('html').send(pickerPage({ requestId, clientName: client.name ?? client.clientId, patients: await this.patientChoices(filter), filter }));
        return;
      }
    }
    if (!(await this.store.auth.consume('authz', requestId))) {
      res.status(400).type('html').send(errorPage('Sign-in expired', 'This sign-in request was already used.'));
      return;
    }
    const code = randomToken();
    const grant: CodeGrant = {
      clientId: pending.clientId,
      redirectUri: pending.redirectUri,
      scope: pending.scope,
      codeChallenge: pending.codeChallenge,
      nonce: pending.nonce,
      patient,
      encounter: patient === pending.launchPatient ? pending.launchEncounter : undefined,
      fhirUser: fhirUser as string,
    };
    await this.store.auth.put('code', sha256(code), grant, new Date(this.now().getTime() + CODE_SECONDS * 1000));
    redirect({ code, state: pending.state });
  }

  private async patientChoices(filter: string | undefined): Promise<{ id: string; label: string }[]> {
    const filters = filter ? [{ kind: 'string' as const, code: 'family', mode: 'starts' as const, values: [filter] }] : [];
    const page = await this.store.search({ resourceType: 'Patient', filters, count: 50, sort: [{ kind: 'param', table: 'string', code: 'family', descending: false }] });
    return page.versions.map((v) => {
      const p = JSON.parse(v.json as string) as { name?: { family?: string; given?: string[]; text?: string }[]; birthDate?: string };
      const n = p.name?.[0];
      const name = n?.text ?? [n?.given?.join(' '), n?.family].filter(Boolean).join(' ');
      return { id: v.id, label: `${name || '(no name)'}${p.birthDate ? `, born ${p.birthDate}` : ''} (Patient/${v.id})` };
    });
  }

  // -------------------------------------------------------------------------------------------
  // Token endpoint

  private async token(req: Request, res: Response, baseUrl: string): Promise<void> {
    const body = (req.body ?? {}) as Record<string, string | undefined>;
    const tokenUrl = `${baseUrl}/auth/token`;
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('Pragma', 'no-cache');
    const grantType = body.grant_type;
    try {
      await this.grant(req, res, body, baseUrl, tokenUrl);
    } catch (err) {
      if (err instanceof OAuthError) {
        this.record('token', 'E', '4', { clientId: body.client_id, detail: `${grantType ?? 'no grant_type'}: ${err.error}: ${err.message}` });
      }
      throw err;
    }
  }

  private async grant(req: Request, res: Response, body: Record<string, string | undefined>, baseUrl: string, tokenUrl: string): Promise<void> {
    const grantType = body.grant_type;
    if (grantType === 'authorization_code') {
      const client = await this.clientAuth.authenticate({ authorization: req.headers.authorization, body }, tokenUrl, true);
      res.json(await this.exchangeCode(client, body, baseUrl));
    } else if (grantType === 'refresh_token') {
      const client = await this.refreshingClient(req, body, tokenUrl);
      res.json(await this.refresh(client, body, baseUrl));
    } else if (grantType === 'client_credentials') {
      const client = await this.clientAuth.authenticate({ authorization: req.headers.authorization, body }, tokenUrl, false);
      res.json(await this.clientCredentials(client, body, baseUrl));
    } else {
      throw new OAuthError(400, 'unsupported_grant_type', `grant_type must be authorization_code, refresh_token or client_credentials`);
    }
  }

  private async exchangeCode(client: ClientRegistration, body: Record<string, string | undefined>, baseUrl: string): Promise<Record<string, unknown>> {
    if (!body.code) {
      throw new OAuthError(400, 'invalid_request', 'code is required');
    }
    if (body.code_verifier === undefined || body.code_verifier === '') {
      throw new OAuthError(400, 'invalid_request', 'code_verifier is required (PKCE)');
    }
    // A code is single-use: any attempt, right or wrong, spends it.
    const record = await this.store.auth.consume<CodeGrant>('code', sha256(body.code));
    if (!record) {
      throw new OAuthError(400, 'invalid_grant', 'The code is unknown, expired or already used');
    }
    const grant = record.doc;
    if (grant.clientId !== client.clientId) {
      throw new OAuthError(400, 'invalid_grant', 'The code was issued to another client');
    }
    if (body.redirect_uri !== grant.redirectUri) {
      throw new OAuthError(400, 'invalid_grant', 'redirect_uri does not match the authorization request');
    }
    if (!/^[A-Za-z0-9._~-]{43,128}$/.test(body.code_verifier) || pkceChallenge(body.code_verifier) !== grant.codeChallenge) {
      throw new OAuthError(400, 'invalid_grant', 'code_verifier does not match the code_challenge');
    }
    const out = await this.tokenResponse({ clientId: client.clientId, scope: grant.scope, patient: grant.patient, fhirUser: grant.fhirUser }, baseUrl, grant.nonce);
    if (grant.encounter) {
      out.encounter = grant.encounter; // EHR launch context
    }
    return out;
  }

  private async refresh(client: ClientRegistration, body: Record<string, string | undefined>, baseUrl: string): Promise<Record<string, unknown>> {
    if (!body.refresh_token) {
      throw new OAuthError(400, 'invalid_request', 'refresh_token is required');
    }
    const record = await this.store.auth.get<RefreshGrant>('refresh', sha256(body.refresh_token));
    if (!record || record.doc.clientId !== client.clientId) {
      throw new OAuthError(400, 'invalid_grant', 'The refresh token is unknown, expired, revoked or issued to another client');
    }
    let scope = record.doc.scope;
    if (body.scope !== undefined && body.scope.trim() !== '') {
      const narrowed = narrowScopes(body.scope, record.doc.scope);
      if (narrowed.split(' ').filter(Boolean).length !== new Set(body.scope.split(/\s+/).filter(Boolean)).size) {
        throw new OAuthError(400, 'invalid_scope', 'A refresh may only ask for scopes the original grant covers');
      }
      scope = narrowed;
    }
    const principal = { clientId: client.clientId, scope, patient: record.doc.patient, fhirUser: record.doc.fhirUser };
    const out = await this.tokenResponse(principal, baseUrl, undefined, false);
    if (client.type === 'public') {
      // RFC 9700 section 4.14.2: a public client's refresh token is rotated (the old one stops working),
      // with the original grant's scope and lifetime.
      await this.store.auth.remove('refresh', sha256(body.refresh_token));
      const next = randomToken();
      await this.store.auth.put('refresh', sha256(next), record.doc, record.expiresAt ? new Date(record.expiresAt) : undefined);
      out.refresh_token = next;
    } else {
      out.refresh_token = body.refresh_token;
    }
    return out;
  }

  /**
   * The client of a refresh request: authenticated as usual, or, for a public client that sends
   * neither credentials nor client_id (fhirclient does not by default), the client the refresh
   * token was issued to.
   */
  private async refreshingClient(req: Request, body: Record<string, string | undefined>, tokenUrl: string): Promise<ClientRegistration> {
    const anonymous = !req.headers.authorization && body.client_id === undefined && body.client_assertion === undefined && body.client_assertion_type === undefined;
    if (anonymous && body.refresh_token) {
      const record = await this.store.auth.get<RefreshGrant>('refresh', sha256(body.refresh_token));
      const client = record && (await this.clients.get(record.doc.clientId));
      if (client?.type === 'public') {
        return client;
      }
    }
    return this.clientAuth.authenticate({ authorization: req.headers.authorization, body }, tokenUrl, true);
  }

  private async clientCredentials(client: ClientRegistration, body: Record<string, string | undefined>, baseUrl: string): Promise<Record<string, unknown>> {
    const requested = (body.scope ?? '').split(/\s+/).filter((s) => s.startsWith('system/'));
    const scope = narrowScopes(requested.join(' '), client.scope);
    if (!scope) {
      throw new OAuthError(400, 'invalid_scope', `Ask for system/ scopes within this client's registration (${client.scope})`);
    }
    const { token } = await this.tokens.issueAccess({ clientId: client.clientId, scope }, baseUrl, this.options.backendTokenSeconds);
    this.record('token', 'E', '0', { clientId: client.clientId, detail: `client_credentials: ${scope}` });
    return { access_token: token, token_type: 'Bearer', expires_in: this.options.backendTokenSeconds, scope };
  }

  private async tokenResponse(principal: Omit<Principal, 'jti'>, baseUrl: string, nonce: string | undefined, withRefresh = true): Promise<Record<string, unknown>> {
    const { token } = await this.tokens.issueAccess(principal, baseUrl, this.options.accessTokenSeconds);
    this.record('token', 'E', '0', { clientId: principal.clientId, fhirUser: principal.fhirUser, patient: principal.patient, detail: `token: ${principal.scope}` });
    const scopes = parseScopes(principal.scope);
    const out: Record<string, unknown> = {
      access_token: token,
      token_type: 'Bearer',
      expires_in: this.options.accessTokenSeconds,
      scope: principal.scope,
    };
    if (principal.patient) {
      out.patient = principal.patient;
      out.need_patient_banner = true;
    }
    if (scopes.other.has('openid') && principal.fhirUser) {
      // OpenID Connect: an ID token whenever openid was granted; the fhirUser claim only with fhirUser.
      const fhirUser = scopes.other.has('fhirUser') ? `${baseUrl}/${principal.fhirUser}` : undefined;
      out.id_token = await this.tokens.issueId(baseUrl, principal.clientId, principal.fhirUser, fhirUser, this.options.accessTokenSeconds, nonce);
    }
    const offline = scopes.other.has('offline_access');
    if (withRefresh && (offline || scopes.other.has('online_access'))) {
      const refresh = randomToken();
      const seconds = offline ? this.options.offlineRefreshSeconds : this.options.onlineRefreshSeconds;
      const grant: RefreshGrant = { clientId: principal.clientId, scope: principal.scope, patient: principal.patient, fhirUser: principal.fhirUser };
      await this.store.auth.put('refresh', sha256(refresh), grant, new Date(this.now().getTime() + seconds * 1000));
      out.refresh_token = refresh;
    }
    return out;
  }

  // -------------------------------------------------------------------------------------------
  // Introspection, revocation, launch

  /** The caller of introspection: a client authenticating itself, or any valid bearer token. */
  private async introspectionCaller(req: Request, baseUrl: string): Promise<string | undefined> {
    const auth = req.headers.authorization;
    if (auth?.startsWith('Bearer ')) {
      try {
        const { principal } = await this.tokens.verify(auth.slice(7), baseUrl);
        return parseScopes(principal.scope).grants.some((g) => g.context === 'system') ? undefined : principal.clientId;
      } catch (err) {
        if (err instanceof TokenError) {
          throw new OAuthError(401, 'invalid_token', err.message);
        }
        throw err;
      }
    }
    const client = await this.clientAuth.authenticate({ authorization: auth, body: (req.body ?? {}) as Record<string, string | undefined> }, `${baseUrl}/auth/token`, true);
    // An authenticated (confidential) client may act as a resource server; a public one asks only about its own tokens.
    return client.type === 'public' ? client.clientId : undefined;
  }

  private async introspect(req: Request, res: Response, baseUrl: string): Promise<void> {
    res.setHeader('Cache-Control', 'no-store');
    // Confidential clients and backend services may introspect any token; others only their own.
    const caller = await this.introspectionCaller(req, baseUrl);
    const token = formValue(req.body, 'token');
    if (!token) {
      throw new OAuthError(400, 'invalid_request', 'token is required');
    }
    const claims = await this.tokens.inspect(token);
    if (claims && !(await this.tokens.isRevoked(claims.jti)) && claims.aud === baseUrl && (caller === undefined || caller === claims.client_id)) {
      res.json({ active: true, token_type: 'Bearer', ...claims });
      return;
    }
    const refresh = await this.store.auth.get<RefreshGrant>('refresh', sha256(token));
    if (refresh && (caller === undefined || caller === refresh.doc.clientId)) {
      const exp = refresh.expiresAt ? Math.floor(Date.parse(refresh.expiresAt) / 1000) : undefined;
      res.json({ active: true, token_type: 'refresh_token', client_id: refresh.doc.clientId, scope: refresh.doc.scope, patient: refresh.doc.patient, fhirUser: refresh.doc.fhirUser, exp });
      return;
    }
    res.json({ active: false });
  }

  private async revoke(req: Request, res: Response, baseUrl: string): Promise<void> {
    res.setHeader('Cache-Control', 'no-store');
    const client = await this.clientAuth.authenticate({ authorization: req.headers.authorization, body: (req.body ?? {}) as Record<string, string | undefined> }, `${baseUrl}/auth/token`, true);
    const token = formValue(req.body, 'token');
    if (!token) {
      throw new OAuthError(400, 'invalid_request', 'token is required');
    }
    const claims = await this.tokens.inspect(token);
    if (claims) {
      if (claims.client_id === client.clientId) {
        await this.tokens.revoke(claims);
      }
    } else {
      const refresh = await this.store.auth.get<RefreshGrant>('refresh', sha256(token));
      if (refresh?.doc.clientId === client.clientId) {
        await this.store.auth.remove('refresh', sha256(token));
      }
    }
    // RFC 7009: 200 whether or not the token was valid (nothing to learn from the answer).
    res.status(200).json({});
  }

  /**
   * The management endpoint: a user signs in and sees the grants that outlive a session (refresh
   * tokens issued for them), and revokes any of them. The signed-in state is a short-lived record
   * named by an unguessable id in the page's forms.
   */
  private async manage(req: Request, res: Response): Promise<void> {
    const action = formValue(req.body, 'action');
    let fhirUser: string | undefined;
    let session = formValue(req.body, 'session');
    let notice: string | undefined;
    if (action === 'login') {
      const account = await this.users.verify(formValue(req.body, 'username') ?? '', formValue(req.body, 'password') ?? '');
      if (!account) {
        this.record('login', 'E', '4', { detail: 'management sign-in failed' });
        res.status(401).type('html').send(managePage({ error: 'Wrong user name or password.' }));
        return;
      }
      this.record('login', 'E', '0', { fhirUser: account.fhirUser, detail: `management sign-in of ${account.username}` });
      session = randomToken();
      await this.store.auth.put('authz', `manage:${session}`, { fhirUser: account.fhirUser }, new Date(this.now().getTime() + PENDING_SECONDS * 1000));
      fhirUser = account.fhirUser;
    } else {
      fhirUser = session ? (await this.store.auth.get<{ fhirUser: string }>('authz', `manage:${session}`))?.doc.fhirUser : undefined;
      if (!fhirUser || !session) {
        res.status(401).type('html').send(managePage({ error: 'Your session expired; sign in again.' }));
        return;
      }
      if (action === 'revoke') {
        const grant = formValue(req.body, 'grant') ?? '';
        const record = await this.store.auth.get<RefreshGrant>('refresh', grant);
        if (record?.doc.fhirUser === fhirUser) {
          await this.store.auth.remove('refresh', grant);
          this.record('token', 'D', '0', { clientId: record.doc.clientId, fhirUser, detail: 'refresh token revoked by its user' });
          notice = `Access of ${record.doc.clientId} revoked.`;
        }
      }
    }
    const grants = (await this.store.auth.list<RefreshGrant>('refresh'))
      .filter((r) => r.doc.fhirUser === fhirUser)
      .map((r) => ({ id: r.id, client: r.doc.clientId, scope: r.doc.scope, patient: r.doc.patient, expires: r.expiresAt }));
    res.status(200).type('html').send(managePage({ session, grants, notice }));
  }

  /** EHR launch: a practitioner's app (user/ token) or a backend asks for a launch id for a patient. */
  private async launch(req: Request, res: Response, baseUrl: string): Promise<void> {
    const auth = req.headers.authorization;
    let principal: Principal;
    try {
      principal = await this.authenticate(auth?.startsWith('Bearer ') ? auth.slice(7) : '', baseUrl);
    } catch {
      res.setHeader('WWW-Authenticate', 'Bearer realm="continuum", error="invalid_token"');
      throw new OAuthError(401, 'invalid_token', 'A valid bearer token is required to create a launch');
    }
    const isPractitioner = principal.fhirUser !== undefined && !principal.fhirUser.startsWith('Patient/');
    const isSystem = parseScopes(principal.scope).grants.some((g) => g.context === 'system');
    if (!isPractitioner && !isSystem) {
      throw new OAuthError(403, 'insufficient_scope', 'Only a practitioner or a backend service can create an EHR launch');
    }
    const patient = formValue(req.body, 'patient');
    if (!patient || !(await this.store.read('Patient', patient))?.json) {
      throw new OAuthError(400, 'invalid_request', 'patient must be the id of an existing Patient');
    }
    const encounter = formValue(req.body, 'encounter');
    if (encounter !== undefined && !(await this.store.read('Encounter', encounter))?.json) {
      throw new OAuthError(400, 'invalid_request', 'encounter must be the id of an existing Encounter');
    }
    const launch = randomToken();
    await this.store.auth.put('launch', launch, { patient, encounter }, new Date(this.now().getTime() + LAUNCH_SECONDS * 1000));
    res.status(201).json({ launch, patient, encounter, expires_in: LAUNCH_SECONDS });
  }
}
