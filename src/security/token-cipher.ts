import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import type { TokenKey } from './keys';
import { Codes } from '../errors';

const VERSION = 'v2';
/** Values sealed before subkeys: the configured key itself, a random nonce. Still read, never written. */
const VERSION_1 = 'v1';
const SUBKEY_INFO = 'ipernity-connect seal subkey';
/**
 * Messages sealed under one subkey before the next is drawn. With random
 * 96-bit nonces, NIST SP 800-38D allows 2^32 messages per key; at 2^30 the
 * chance that two of them share a nonce stays below 2^-37.
 */
const MESSAGES_PER_SUBKEY = 2 ** 30;
/** Subkeys kept for reading; the cache starts over when full (salts come from the values visitors send). */
const MAX_CACHED_SUBKEYS = 256;
/** GCM tags are 16 bytes; fixed, so that a value with a shortened tag (easier to forge) is refused. */
const TAG_LENGTH = 16;

/**
 * What a sealed value is for, bound into its tag: a value sealed for one
 * purpose never decrypts as another (a sealed token pasted into the
 * attempts cookie is refused).
 */
export type SealPurpose = 'token' | 'attempts';
const AAD: Record<SealPurpose, Buffer> = {
  token: Buffer.from('ipernity-connect token'),
  attempts: Buffer.from('ipernity-connect attempts'),
};

/** A stored token could not be decrypted (its key is gone, or it was altered). */
export class TokenUnreadableError extends Error {
  override readonly name = 'TokenUnreadableError';
  readonly code = Codes.TOKEN_UNREADABLE;
}

export interface TokenCipherOptions {
  /** Messages sealed under one subkey before a new one is drawn (tests lower it). */
  messagesPerSubkey?: number;
}

/** A key derived from a configured key and a random salt, and the salt as written in sealed values. */
interface Subkey {
  salt: string;
  key: Buffer;
}

const deriveSubkey = (key: Buffer, salt: Buffer): Buffer => Buffer.from(hkdfSync('sha256', key, salt, SUBKEY_INFO, 32));

/**
 * Encrypts ipernity tokens for the session store, and pending attempts for
 * their cookie, with AES-256-GCM. The first key encrypts; every key listed
 * can decrypt, found by the key id written beside the ciphertext, so keys
 * can rotate without disconnecting anyone.
 *
 * Each value is sealed under a subkey (HKDF-SHA256 of the configured key
 * and a random 128-bit salt written in the value), not under the key itself.
 * A process draws its salt when it starts and draws again every 2^30
 * values, so the per-key budget of random GCM nonces (2^32 values) bounds
 * no site, however many flows its instances seal over the key's life.
 * Reading derives a value's subkey once per salt.
 */
export class TokenCipher {
  readonly #keys: ReadonlyMap<string, Buffer>;
  readonly #current: { id: string; key: Buffer };
  readonly #messagesPerSubkey: number;
  #subkey: Subkey;
  #sealed = 0;
  readonly #subkeys = new Map<string, Buffer>();

  constructor(keys: readonly TokenKey[], options: TokenCipherOptions = {}) {
    const first = keys[0];
    if (!first) throw new TypeError('TokenCipher needs at least one key');
    this.#current = first;
    this.#keys = new Map(keys.map((k) => [k.id, k.key]));
    this.#messagesPerSubkey = options.messagesPerSubkey ?? MESSAGES_PER_SUBKEY;
    this.#subkey = this.#newSubkey();
  }

  #newSubkey(): Subkey {
    const salt = randomBytes(16);
    return { salt: salt.toString('base64url'), key: deriveSubkey(this.#current.key, salt) };
  }

  /** `v2.<key id>.<salt>.<iv>.<tag>.<ciphertext>`, base64url parts. */
  encrypt(plaintext: string, purpose: SealPurpose = 'token'): string {
    if (this.#sealed >= this.#messagesPerSubkey) {
      this.#subkey = this.#newSubkey();
      this.#sealed = 0;
    }
    this.#sealed += 1;
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#subkey.key, iv, { authTagLength: TAG_LENGTH });
    cipher.setAAD(AAD[purpose]);
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return `${VERSION}.${this.#current.id}.${this.#subkey.salt}.${iv.toString('base64url')}.${cipher.getAuthTag().toString('base64url')}.${ciphertext.toString('base64url')}`;
  }

  decrypt(sealed: string, purpose: SealPurpose = 'token'): string {
    const parts = sealed.split('.');
    const [version, id] = parts;
    const key = id === undefined ? undefined : this.#keys.get(id);
    let sealedKey: Buffer | undefined;
    let rest: (string | undefined)[] = [];
    if (key && version === VERSION && parts.length === 6) {
      sealedKey = this.#readingSubkey(id as string, key, parts[2] as string);
      rest = parts.slice(3);
    } else if (key && version === VERSION_1 && parts.length === 5) {
      sealedKey = key;
      rest = parts.slice(2);
    }
    const [iv, tag, ciphertext] = rest;
    if (!sealedKey || iv === undefined || tag === undefined || ciphertext === undefined) {
      throw new TokenUnreadableError('the stored token was sealed with an unknown key or format');
    }
    return this.#open(sealedKey, iv, tag, ciphertext, purpose);
  }

  /** The subkey a value names by its key id and salt; undefined for a salt that is not 16 bytes. */
  #readingSubkey(id: string, key: Buffer, salt: string): Buffer | undefined {
    if (id === this.#current.id && salt === this.#subkey.salt) return this.#subkey.key;
    const name = `${id}.${salt}`;
    let subkey = this.#subkeys.get(name);
    if (!subkey) {
      const bytes = Buffer.from(salt, 'base64url');
      if (bytes.length !== 16) return undefined;
      subkey = deriveSubkey(key, bytes);
      if (this.#subkeys.size >= MAX_CACHED_SUBKEYS) this.#subkeys.clear();
      this.#subkeys.set(name, subkey);
    }
    return subkey;
  }

  #open(key: Buffer, iv: string, tag: string, ciphertext: string, purpose: SealPurpose): string {
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'), { authTagLength: TAG_LENGTH });
      decipher.setAAD(AAD[purpose]);
      decipher.setAuthTag(Buffer.from(tag, 'base64url'));
      return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]).toString('utf8');
    } catch (error) {
      throw new TokenUnreadableError('the stored token does not decrypt', { cause: error });
    }
  }
}
