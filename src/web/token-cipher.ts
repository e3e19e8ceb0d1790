import { createCipheriv, createDecipheriv } from 'node:crypto';
import type { TokenKey } from '../config';
import { randomBuffer } from './random';

const VERSION = 'v1';

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
  readonly code = 'TOKEN_UNREADABLE';
}

/**
 * Encrypts ipernity tokens for the session store, and pending attempts for
 * their cookie, with AES-256-GCM. The first key encrypts; every key listed
 * can decrypt, found by the key id written beside the ciphertext, so keys
 * can rotate without disconnecting anyone.
 */
export class TokenCipher {
  readonly #keys: ReadonlyMap<string, Buffer>;
  readonly #current: { id: string; key: Buffer };

  constructor(keys: readonly TokenKey[]) {
    const first = keys[0];
    if (!first) throw new TypeError('TokenCipher needs at least one key');
    this.#current = first;
    this.#keys = new Map(keys.map((k) => [k.id, k.key]));
  }

  /** `v1.<key id>.<iv>.<tag>.<ciphertext>`, base64url parts. */
  encrypt(plaintext: string, purpose: SealPurpose = 'token'): string {
    const iv = randomBuffer(12); // a random 96-bit nonce: NIST SP 800-38D allows 2^32 messages per key this way
    const cipher = createCipheriv('aes-256-gcm', this.#current.key, iv);
    cipher.setAAD(AAD[purpose]);
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return [VERSION, this.#current.id, iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), ciphertext.toString('base64url')].join('.');
  }

  decrypt(sealed: string, purpose: SealPurpose = 'token'): string {
    const [version, id, iv, tag, ciphertext] = sealed.split('.');
    const key = id === undefined ? undefined : this.#keys.get(id);
    if (version !== VERSION || !key || iv === undefined || tag === undefined || ciphertext === undefined) {
      throw new TokenUnreadableError('the stored token was sealed with an unknown key or format');
    }
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
      decipher.setAAD(AAD[purpose]);
      decipher.setAuthTag(Buffer.from(tag, 'base64url'));
      return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]).toString('utf8');
    } catch (error) {
      throw new TokenUnreadableError('the stored token does not decrypt', { cause: error });
    }
  }
}
