/**
 * The server's signing keys: generated at first start, kept in the store (so every process against
 * one database signs and verifies with the same keys), rotated by `continuum keys rotate`. A retired
 * key stays published in the JWKS for a day, so tokens it signed verify until they expire.
 */
import { randomUUID } from 'node:crypto';
import { jose, type JWK } from './jose';
import type { AuthStore } from '../store/api';

type CryptoKey = Awaited<ReturnType<typeof jose.importJWK>>;

export const SIGNING_ALG = 'RS256';
/** How long a retired key stays in the JWKS (longer than any token or code lives). */
const RETIRED_KEEP_MS = 24 * 3600 * 1000;

interface KeyDoc {
  kid: string;
  alg: string;
  privateJwk: JWK;
  publicJwk: JWK;
  createdAt: string;
  retiredAt?: string;
}

export interface SigningKey {
  kid: string;
  alg: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
}

export class KeyRing {
  private active?: SigningKey;
  private published: JWK[] = [];
  private verifiers = new Map<string, CryptoKey>();
  private loadedAt = 0;

  constructor(
    private readonly auth: AuthStore,
    private readonly now: () => Date,
  ) {}

  /** Loads the keys, creating the first one on a fresh store. */
  async load(): Promise<void> {
    let docs = (await this.auth.list<KeyDoc>('key')).map((r) => r.doc);
    if (!docs.some((d) => !d.retiredAt)) {
      await this.create();
      docs = (await this.auth.list<KeyDoc>('key')).map((r) => r.doc);
    }
    const cutoff = this.now().getTime() - RETIRED_KEEP_MS;
    const live = docs.filter((d) => !d.retiredAt || Date.parse(d.retiredAt) > cutoff);
    // Several processes may have raced to create the first key: the newest active one signs.
    const current = live.filter((d) => !d.retiredAt).sort((a, b) => b.createdAt.localeCompare(a.createdAt))[0];
    this.active = {
      kid: current.kid,
      alg: current.alg,
      privateKey: await jose.importJWK(current.privateJwk, current.alg),
      publicJwk: current.publicJwk,
    };
    this.published = live.map((d) => ({ ...d.publicJwk, kid: d.kid, alg: d.alg, use: 'sig' }));
    this.verifiers = new Map();
    for (const d of live) {
      this.verifiers.set(d.kid, await jose.importJWK(d.publicJwk, d.alg));
    }
    this.loadedAt = Date.now();
  }

  private async create(): Promise<KeyDoc> {
    const { privateKey, publicKey } = await jose.generateKeyPair(SIGNING_ALG, { extractable: true, modulusLength: 2048 });
    const doc: KeyDoc = {
      kid: randomUUID(),
      alg: SIGNING_ALG,
      privateJwk: await jose.exportJWK(privateKey),
      publicJwk: await jose.exportJWK(publicKey),
      createdAt: this.now().toISOString(),
    };
    await this.auth.put('key', doc.kid, doc);
    return doc;
  }

  /** Makes a new signing key and retires the others; returns the new key id. */
  async rotate(): Promise<string> {
    const old = await this.auth.list<KeyDoc>('key');
    const created = await this.create();
    for (const r of old) {
      if (!r.doc.retiredAt) {
        await this.auth.put('key', r.id, { ...r.doc, retiredAt: this.now().toISOString() });
      }
    }
    await this.load();
    return created.kid;
  }

  signing(): SigningKey {
    if (!this.active) {
      throw new Error('KeyRing.load() was not called');
    }
    return this.active;
  }

  /** The public key for `kid`; reloads once (another process may have rotated) before giving up. */
  async verifier(kid: string | undefined): Promise<CryptoKey | undefined> {
    if (kid === undefined) {
      return undefined;
    }
    const hit = this.verifiers.get(kid);
    if (hit || Date.now() - this.loadedAt < 5000) {
      return hit;
    }
    await this.load();
    return this.verifiers.get(kid);
  }

  jwks(): { keys: JWK[] } {
    return { keys: this.published };
  }
}
