/**
 * Client authentication at the token, introspection and revocation endpoints:
 * - `client_secret_basic` (confidential symmetric clients): HTTP Basic with the client id and secret;
 * - `private_key_jwt` (confidential asymmetric clients, SMART Backend Services): a signed JWT
 *   assertion, RS384 or ES384, whose key is picked by `kid` from the client's JWKS (inline or URL);
 *   `iss` = `sub` = client id, `aud` = the token endpoint, `exp` at most five minutes ahead, and a
 *   `jti` never seen before (the replay cache is in the store, shared by all processes);
 * - public clients: just `client_id`.
 */
import { jose, type JWTVerifyGetKey } from './jose';
import type { AuthStore } from '../store/api';
import type { ClientRegistration, Clients } from './accounts';

export const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
export const ASSERTION_ALGS = ['RS384', 'ES384'];
const MAX_ASSERTION_LIFETIME_S = 300;

/** An OAuth error response (RFC 6749 section 5.2). */
export class OAuthError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    description: string,
  ) {
    super(description);
  }
}

export const invalidClient = (why: string): OAuthError => new OAuthError(401, 'invalid_client', why);

export interface ClientCredentials {
  authorization?: string;
  body: Record<string, string | undefined>;
}

export class ClientAuthenticator {
  private readonly remote = new Map<string, JWTVerifyGetKey>();

  constructor(
    private readonly clients: Clients,
    private readonly auth: AuthStore,
    private readonly now: () => Date,
  ) {}

  /**
   * The calling client, authenticated as its registration requires. `publicAllowed`: whether a
   * public client naming itself by `client_id` is acceptable here.
   */
  async authenticate(creds: ClientCredentials, tokenUrl: string, publicAllowed: boolean): Promise<ClientRegistration> {
    const { body } = creds;
    if (creds.authorization?.startsWith('Basic ')) {
      const decoded = Buffer.from(creds.authorization.slice(6), 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon < 0) {
        throw invalidClient('Basic credentials must be client_id:client_secret');
      }
      // RFC 6749 section 2.3.1: both parts are form-urlencoded.
      const formDecode = (v: string): string => {
        try {
          return decodeURIComponent(v.replace(/\+/g, ' '));
        } catch {
          throw invalidClient('Basic credentials are not valid form-urlencoding');
        }
      };
      const id = formDecode(decoded.slice(0, colon));
      const secret = formDecode(decoded.slice(colon + 1));
      if (body.client_id !== undefined && body.client_id !== id) {
        throw invalidClient('client_id in the body does not match the Basic credentials');
      }
      const client = await this.clients.checkSecret(id, secret);
      if (!client) {
        throw invalidClient('Unknown client or wrong client secret');
      }
      return client;
    }
    if (body.client_assertion !== undefined || body.client_assertion_type !== undefined) {
      return this.assertion(body, tokenUrl);
    }
    const id = body.client_id;
    if (!id) {
      throw invalidClient('No client authentication: send client_id, HTTP Basic credentials or a client assertion');
    }
    const client = await this.clients.get(id);
    if (!client) {
      throw invalidClient(`Unknown client '${id}'`);
    }
    if (client.type !== 'public') {
      throw invalidClient(`Client '${id}' is confidential and must authenticate`);
    }
    if (!publicAllowed) {
      throw invalidClient('This endpoint needs an authenticated (confidential) client');
    }
    return client;
  }

  private async assertion(body: Record<string, string | undefined>, tokenUrl: string): Promise<ClientRegistration> {
    if (body.client_assertion_type !== ASSERTION_TYPE) {
      throw invalidClient(`client_assertion_type must be ${ASSERTION_TYPE}`);
    }
    const jwt = body.client_assertion ?? '';
    let header: ReturnType<typeof jose.decodeProtectedHeader>;
    let claims: ReturnType<typeof jose.decodeJwt>;
    try {
      header = jose.decodeProtectedHeader(jwt);
      claims = jose.decodeJwt(jwt);
    } catch {
      throw invalidClient('client_assertion is not a JWT');
    }
    if (!header.alg || !ASSERTION_ALGS.includes(header.alg)) {
      throw invalidClient(`client_assertion must be signed with ${ASSERTION_ALGS.join(' or ')}, not ${header.alg ?? 'nothing'}`);
    }
    if (!header.kid) {
      throw invalidClient('client_assertion has no kid in its header');
    }
    const clientId = typeof claims.iss === 'string' ? claims.iss : '';
    const client = await this.clients.get(clientId);
    if (!client || client.type !== 'confidential-asymmetric') {
      throw invalidClient(`Unknown asymmetric client '${clientId}'`);
    }
    if (body.client_id !== undefined && body.client_id !== clientId) {
      throw invalidClient('client_id does not match the assertion issuer');
    }
    const keys = this.keySet(client);
    let payload: Awaited<ReturnType<typeof jose.jwtVerify>>['payload'];
    try {
      ({ payload } = await jose.jwtVerify(jwt, keys, {
        issuer: clientId,
        subject: clientId,
        audience: tokenUrl,
        algorithms: ASSERTION_ALGS,
        currentDate: this.now(),
        requiredClaims: ['exp', 'jti'],
      }));
    } catch (err) {
      throw invalidClient(`client_assertion rejected: ${(err as Error).message}`);
    }
    const nowS = Math.floor(this.now().getTime() / 1000);
    if ((payload.exp as number) > nowS + MAX_ASSERTION_LIFETIME_S) {
      throw invalidClient('client_assertion exp is more than five minutes in the future');
    }
    const fresh = await this.auth.insertOnce('jti', `${clientId}:${String(payload.jti)}`, {}, new Date((payload.exp as number) * 1000 + 60_000));
    if (!fresh) {
      throw invalidClient('client_assertion jti was already used');
    }
    return client;
  }

  private keySet(client: ClientRegistration): JWTVerifyGetKey {
    if (client.jwks) {
      return jose.createLocalJWKSet(client.jwks);
    }
    const url = client.jwksUrl as string;
    let set = this.remote.get(url);
    if (!set) {
      set = jose.createRemoteJWKSet(new URL(url), { cacheMaxAge: 5 * 60_000, timeoutDuration: 5000 });
      this.remote.set(url, set);
    }
    return set;
  }
}
