import { randomBytes } from 'node:crypto';

const POOL_SIZE = 32 * 128;
let pool = Buffer.alloc(0);
let offset = 0;

/**
 * The next `size` unused bytes of a pool of fresh random bytes, refilled
 * 4 KB at a time, as `crypto.randomUUID` does: one call into the
 * system's generator serves about a hundred values. No byte is handed
 * out twice.
 */
function take(size: number): { bytes: Buffer; start: number } {
  if (offset + size > pool.length) {
    pool = randomBytes(POOL_SIZE);
    offset = 0;
  }
  const start = offset;
  offset += size;
  return { bytes: pool, start };
}

/** 32 fresh random bytes as base64url (43 characters), for session ids, CSRF cookies and attempt nonces. */
export function randomValue(): string {
  const { bytes, start } = take(32);
  return bytes.toString('base64url', start, start + 32);
}

/** `size` fresh random bytes in a buffer of their own (an AES-GCM nonce, for one). */
export function randomBuffer(size: number): Buffer {
  const { bytes, start } = take(size);
  return Buffer.from(bytes.subarray(start, start + size));
}
