/**
 * Access and ID tokens: signed JWTs (RS256, the KeyRing's active key), verified locally on every
 * request. Verified tokens are remembered until they expire, so a request pays one map lookup.
 *
 * Revocation: a revoked token's `jti` is recorded in the store; each process keeps the set in
 * memory and catches up with other processes' revocations at most every `REVOCATION_POLL_MS`.
 */
import { randomUUID } from 'node:crypto';
import { jose } from './jose';
import type { AuthStore } from '../store/api';
import type { KeyRing } from './keys';
import type { Principal } from './policy';

const REVOCATION_POLL_MS = 2000;
const VERIFIED_CACHE_MAX = 10_000;

/** The claims of a Continuum access token. */
export interface AccessClaims {
  iss: string;
  aud: string;
  sub: string;
  exp: number;
  iat: number;
  jti: string;
  client_id: string;
  scope: string;
  patient?: string;
  fhirUser?: string;
}

export class TokenError extends Error {}

export class Tokens {
  private readonly verified = new Map<string, { principal: Principal; claims: AccessClaims; aud: string }>();
  private revoked = new Set<string>();
  /** Revoked here since the last poll (kept across the reload in case the poll raced the write). */
  private readonly localRevocations = new Set<string>();
  private polledAt = 0;

  constructor(
    private readonly keys: KeyRing,
    private readonly auth: AuthStore,
    private readonly now: () => Date,
  ) {}

  private seconds(): number {
    return Math.floor(this.now().getTime() / 1000);
  }

  /** Signs an access token for `principal` valid `lifetime` seconds at `baseUrl` (the audience). */
  async issueAccess(principal: Omit<Principal, 'jti'>, baseUrl: string, lifetime: number): Promise<{ token: string; claims: AccessClaims }> {
    const key = this.keys.signing();
    const iat = this.seconds();
    const claims: AccessClaims = {
      iss: baseUrl,
      aud: baseUrl,
      sub: principal.fhirUser ?? principal.clientId,
      exp: iat + lifetime,
      iat,
      jti: randomUUID(),
      client_id: principal.clientId,
      scope: principal.scope,
    };
    if (principal.patient) {
      claims.patient = principal.patient;
    }
    if (principal.fhirUser) {
      claims.fhirUser = principal.fhirUser;
    }
    const token = await new jose.SignJWT({ ...claims }).setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'at+jwt' }).sign(key.privateKey);
    return { token, claims };
  }

  /** An OpenID Connect ID token for the client (`aud` = client id). */
  async issueId(baseUrl: string, clientId: string, subject: string, fhirUser: string | undefined, lifetime: number, nonce?: string): Promise<string> {
    const key = this.keys.signing();
    const iat = this.seconds();
    const payload: Record<string, unknown> = {};
    if (fhirUser) {
      payload.fhirUser = fhirUser;
    }
    if (nonce) {
      payload.nonce = nonce;
    }
    return new jose.SignJWT(payload)
      .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT' })
      .setIssuer(baseUrl)
      .setSubject(subject)
      .setAudience(clientId)
      .setIssuedAt(iat)
      .setExpirationTime(iat + lifetime)
      .sign(key.privateKey);
  }

  /** Verifies an access token for `baseUrl`; throws TokenError saying why it is not acceptable. */
  async verify(token: string, baseUrl: string): Promise<{ principal: Principal; claims: AccessClaims }> {
    await this.catchUpRevocations();
    const hit = this.verified.get(token);
    if (hit && hit.aud === baseUrl && hit.claims.exp > this.seconds() && !this.revoked.has(hit.claims.jti)) {
      return hit;
    }
    let kid: string | undefined;
    try {
      kid = jose.decodeProtectedHeader(token).kid;
    } catch {
      throw new TokenError('The access token is not a JWT');
    }
    const key = await this.keys.verifier(kid);
    if (!key) {
      throw new TokenError('The access token was not signed by this server');
    }
    let claims: AccessClaims;
    try {
      const result = await jose.jwtVerify(token, key, { audience: baseUrl, issuer: baseUrl, currentDate: this.now(), typ: 'at+jwt' });
      claims = result.payload as unknown as AccessClaims;
    } catch (err) {
      throw new TokenError(`The access token is not valid here: ${(err as Error).message}`);
    }
    if (this.revoked.has(claims.jti)) {
      throw new TokenError('The access token was revoked');
    }
    const principal: Principal = { clientId: claims.client_id, scope: claims.scope, patient: claims.patient, fhirUser: claims.fhirUser, jti: claims.jti };
    if (this.verified.size >= VERIFIED_CACHE_MAX) {
      this.verified.clear();
    }
    this.verified.set(token, { principal, claims, aud: baseUrl });
    return { principal, claims };
  }

  /** Decodes a token this server signed without checking audience or expiry (introspection reports those). */
  async inspect(token: string): Promise<AccessClaims | undefined> {
    try {
      const key = await this.keys.verifier(jose.decodeProtectedHeader(token).kid);
      if (!key) {
        return undefined;
      }
      const result = await jose.jwtVerify(token, key, { currentDate: this.now(), typ: 'at+jwt' });
      return result.payload as unknown as AccessClaims;
    } catch {
      return undefined;
    }
  }

  /** Whether the token was revoked (by this process or, as of the last poll, another). */
  async isRevoked(jti: string): Promise<boolean> {
    await this.catchUpRevocations();
    return this.revoked.has(jti);
  }

  /** Revokes an access token until it would have expired anyway. */
  async revoke(claims: Pick<AccessClaims, 'jti' | 'exp'>): Promise<void> {
    this.revoked.add(claims.jti);
    this.localRevocations.add(claims.jti);
    await this.auth.put('revoked', claims.jti, {}, new Date(claims.exp * 1000));
  }

  /**
   * Reloads the live revocations (they expire with the tokens, within an hour, so the set stays
   * small). Reading them all, rather than those after a sequence number, cannot miss one whose
   * transaction committed out of order.
   */
  private async catchUpRevocations(): Promise<void> {
    const t = Date.now();
    if (t - this.polledAt < REVOCATION_POLL_MS) {
      return;
    }
    this.polledAt = t;
    const live = new Set((await this.auth.list('revoked')).map((r) => r.id));
    for (const jti of this.localRevocations) {
      live.add(jti);
    }
    this.localRevocations.clear();
    this.revoked = live;
  }
}
