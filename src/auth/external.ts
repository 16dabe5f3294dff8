/**
 * Trusting an external identity provider (an EHR vendor's own authorization server): its access
 * tokens are accepted when they are JWTs signed by a key of its JWKS, with its issuer and this
 * server's audience. Its claims map onto a Continuum principal: scopes from a claim (a string or a
 * list; values listed in `scopeMap` are translated, SMART scopes pass through, others are dropped),
 * the patient, the user and the client from configurable claims.
 */
import { jose, type JWTVerifyGetKey } from './jose';
import type { Principal } from './policy';
import { parseResourceScope, parseScopes } from './scopes';
import { TokenError } from './tokens';

export interface TrustedIssuer {
  /** The `iss` of its tokens. */
  issuer: string;
  /** Where its public keys are. */
  jwksUri: string;
  /** The `aud` its tokens carry for this server (default: this server's FHIR base URL). */
  audience?: string;
  /** The claim with the granted scopes (default: `scope`, then `scp`). */
  scopeClaim?: string;
  /** External scope or role values and the SMART scopes they stand for. */
  scopeMap?: Record<string, string>;
  /** Claims naming the patient in context, the user and the client (defaults: patient, fhirUser, client_id or azp). */
  patientClaim?: string;
  fhirUserClaim?: string;
  clientIdClaim?: string;
}

const CACHE_MAX = 10_000;

export class ExternalIssuers {
  private readonly keySets = new Map<string, JWTVerifyGetKey>();
  private readonly verified = new Map<string, { principal: Principal; exp: number }>();

  constructor(
    private readonly issuers: readonly TrustedIssuer[],
    private readonly now: () => Date,
  ) {}

  /** The trusted issuer that names itself in `token`, if any. */
  issuerOf(token: string): TrustedIssuer | undefined {
    if (this.issuers.length === 0) {
      return undefined;
    }
    try {
      const iss = jose.decodeJwt(token).iss;
      return this.issuers.find((t) => t.issuer === iss);
    } catch {
      return undefined;
    }
  }

  async verify(trusted: TrustedIssuer, token: string, baseUrl: string): Promise<Principal> {
    const hit = this.verified.get(token);
    if (hit && hit.exp * 1000 > this.now().getTime()) {
      return hit.principal;
    }
    let keys = this.keySets.get(trusted.jwksUri);
    if (!keys) {
      keys = jose.createRemoteJWKSet(new URL(trusted.jwksUri), { cacheMaxAge: 10 * 60_000, timeoutDuration: 5000 });
      this.keySets.set(trusted.jwksUri, keys);
    }
    let claims: Record<string, unknown>;
    try {
      const result = await jose.jwtVerify(token, keys, { issuer: trusted.issuer, audience: trusted.audience ?? baseUrl, currentDate: this.now(), requiredClaims: ['exp'] });
      claims = result.payload as Record<string, unknown>;
    } catch (err) {
      throw new TokenError(`The access token from ${trusted.issuer} is not valid here: ${(err as Error).message}`);
    }
    const str = (name: string | undefined): string | undefined => {
      const v = name === undefined ? undefined : claims[name];
      return typeof v === 'string' && v !== '' ? v : undefined;
    };
    const raw = claims[trusted.scopeClaim ?? 'scope'] ?? (trusted.scopeClaim ? undefined : claims.scp);
    const values = Array.isArray(raw) ? raw.filter((v): v is string => typeof v === 'string') : typeof raw === 'string' ? raw.split(/\s+/) : [];
    const scopes = new Set<string>();
    for (const v of values.filter(Boolean)) {
      const mapped = trusted.scopeMap?.[v];
      if (mapped !== undefined) {
        mapped.split(/\s+/).filter(Boolean).forEach((s) => scopes.add(s));
      } else if (parseResourceScope(v) || parseScopes(v).other.size > 0) {
        scopes.add(v);
      }
    }
    let fhirUser = str(trusted.fhirUserClaim ?? 'fhirUser');
    // fhirUser may be an absolute URL of this server's resource.
    if (fhirUser?.startsWith(`${baseUrl}/`)) {
      fhirUser = fhirUser.slice(baseUrl.length + 1);
    }
    const principal: Principal = {
      clientId: str(trusted.clientIdClaim ?? 'client_id') ?? str('azp') ?? `${trusted.issuer}#${str('sub') ?? 'unknown'}`,
      scope: [...scopes].join(' '),
      patient: str(trusted.patientClaim ?? 'patient'),
      fhirUser,
      jti: str('jti'),
    };
    if (this.verified.size >= CACHE_MAX) {
      this.verified.clear();
    }
    this.verified.set(token, { principal, exp: claims.exp as number });
    return principal;
  }
}
