/**
 * Registered OAuth clients and the users who sign in (Practitioners and Patients), kept in the
 * store's auth records. Secrets and passwords are stored only as scrypt hashes.
 */
import { randomBytes, scrypt as scryptCb, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import type { JWK } from 'jose';
import type { AuthStore } from '../store/api';
import { parseScopes } from './scopes';

const scrypt = promisify(scryptCb) as (password: string, salt: Buffer, keylen: number) => Promise<Buffer>;

export type ClientType = 'public' | 'confidential-symmetric' | 'confidential-asymmetric';

export interface ClientRegistration {
  clientId: string;
  name?: string;
  type: ClientType;
  /** Exact redirect URIs (authorization code flow). */
  redirectUris: string[];
  /** The most this client may be granted, as a scope string. */
  scope: string;
  /** confidential-symmetric: scrypt hash of the secret. */
  secretHash?: string;
  /** confidential-asymmetric: where its public keys are, or the keys themselves. */
  jwksUrl?: string;
  jwks?: { keys: JWK[] };
  createdAt: string;
}

export interface NewClient {
  clientId: string;
  name?: string;
  type: ClientType;
  redirectUris?: string[];
  scope: string;
  /** confidential-symmetric: the secret (generated when omitted, returned once). */
  secret?: string;
  jwksUrl?: string;
  jwks?: { keys: JWK[] };
}

export interface UserAccount {
  username: string;
  /** `Patient/123` or `Practitioner/abc`. */
  fhirUser: string;
  passwordHash: string;
  createdAt: string;
}

async function hashSecret(secret: string): Promise<string> {
  const salt = randomBytes(16);
  const hash = await scrypt(secret, salt, 32);
  return `scrypt$${salt.toString('base64url')}$${hash.toString('base64url')}`;
}

async function checkSecret(secret: string, stored: string | undefined): Promise<boolean> {
  const [scheme, salt, hash] = (stored ?? '').split('$');
  if (scheme !== 'scrypt' || !salt || !hash) {
    // Spend the same time as a real check, so unknown names cannot be told apart by timing.
    await scrypt(secret, Buffer.alloc(16), 32);
    return false;
  }
  const expected = Buffer.from(hash, 'base64url');
  const actual = await scrypt(secret, Buffer.from(salt, 'base64url'), expected.length);
  return timingSafeEqual(expected, actual);
}

export class RegistrationError extends Error {}

const CLIENT_ID = /^[A-Za-z0-9._~-]{1,128}$/;
const FHIR_USER = /^(Patient|Practitioner|PractitionerRole|RelatedPerson|Person)\/[A-Za-z0-9\-.]{1,64}$/;

export class Clients {
  constructor(private readonly auth: AuthStore) {}

  /**
   * Registers (or replaces) a client; returns it and, for a symmetric client, its secret. With
   * `onlyIfAbsent`, an existing client of that id is kept and `undefined` returned (several
   * processes starting at once register a client once).
   */
  async add(input: NewClient, now = new Date(), options: { onlyIfAbsent?: boolean } = {}): Promise<{ client: ClientRegistration; secret?: string }> {
    if (!CLIENT_ID.test(input.clientId)) {
      throw new RegistrationError(`client id '${input.clientId}' must be 1-128 of A-Z a-z 0-9 . _ ~ -`);
    }
    const scopes = parseScopes(input.scope);
    if (scopes.unknown.length > 0) {
      throw new RegistrationError(`unknown scopes: ${scopes.unknown.join(' ')}`);
    }
    for (const uri of input.redirectUris ?? []) {
      let u: URL;
      try {
        u = new URL(uri);
      } catch {
        throw new RegistrationError(`redirect URI '${uri}' is not an absolute URL`);
      }
      if (u.hash) {
        throw new RegistrationError(`redirect URI '${uri}' must not have a fragment`);
      }
    }
    const client: ClientRegistration = {
      clientId: input.clientId,
      name: input.name,
      type: input.type,
      redirectUris: input.redirectUris ?? [],
      scope: input.scope,
      createdAt: now.toISOString(),
    };
    let secret: string | undefined;
    if (input.type === 'confidential-symmetric') {
      secret = input.secret ?? randomBytes(24).toString('base64url');
      client.secretHash = await hashSecret(secret);
    } else if (input.type === 'confidential-asymmetric') {
      if (!input.jwksUrl && !input.jwks) {
        throw new RegistrationError('an asymmetric client needs a JWKS URL or inline JWKS');
      }
      client.jwksUrl = input.jwksUrl;
      client.jwks = input.jwks;
    }
    if (options.onlyIfAbsent) {
      if (!(await this.auth.insertOnce('client', client.clientId, client))) {
        return { client: (await this.get(client.clientId)) ?? client };
      }
      return { client, secret };
    }
    await this.auth.put('client', client.clientId, client);
    return { client, secret };
  }

  async get(clientId: string): Promise<ClientRegistration | undefined> {
    return (await this.auth.get<ClientRegistration>('client', clientId))?.doc;
  }

  async list(): Promise<ClientRegistration[]> {
    return (await this.auth.list<ClientRegistration>('client')).map((r) => r.doc);
  }

  remove(clientId: string): Promise<boolean> {
    return this.auth.remove('client', clientId);
  }

  /** The client if `secret` is its secret (symmetric clients only). */
  async checkSecret(clientId: string, secret: string): Promise<ClientRegistration | undefined> {
    const client = await this.get(clientId);
    const ok = await checkSecret(secret, client?.type === 'confidential-symmetric' ? client.secretHash : undefined);
    return ok ? client : undefined;
  }
}

export class Users {
  constructor(private readonly auth: AuthStore) {}

  async add(input: { username: string; password: string; fhirUser: string }, now = new Date()): Promise<UserAccount> {
    if (!/^[A-Za-z0-9._@+-]{1,128}$/.test(input.username)) {
      throw new RegistrationError(`username '${input.username}' must be 1-128 of A-Z a-z 0-9 . _ @ + -`);
    }
    if (input.password.length < 8) {
      throw new RegistrationError('a password needs at least 8 characters');
    }
    if (!FHIR_USER.test(input.fhirUser)) {
      throw new RegistrationError(`fhirUser '${input.fhirUser}' must be a reference like Patient/123 or Practitioner/abc`);
    }
    const account: UserAccount = { username: input.username, fhirUser: input.fhirUser, passwordHash: await hashSecret(input.password), createdAt: now.toISOString() };
    await this.auth.put('user', account.username, account);
    return account;
  }

  async list(): Promise<UserAccount[]> {
    return (await this.auth.list<UserAccount>('user')).map((r) => r.doc);
  }

  remove(username: string): Promise<boolean> {
    return this.auth.remove('user', username);
  }

  /** The account if the password is right; undefined otherwise (same time either way). */
  async verify(username: string, password: string): Promise<UserAccount | undefined> {
    const account = (await this.auth.get<UserAccount>('user', username))?.doc;
    const ok = await checkSecret(password, account?.passwordHash);
    return ok ? account : undefined;
  }
}
