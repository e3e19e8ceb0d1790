import { randomBytes } from 'node:crypto';

const VALUE_BYTES = 32;
const VALUES_PER_REFILL = 128;
let pool = Buffer.alloc(0);
let offset = 0;

/**
 * 32 fresh random bytes as base64url (43 characters), for session ids, CSRF
 * cookies and attempt nonces. Drawn from a pool refilled 128 values at a
 * time, as `crypto.randomUUID` does; no value is ever handed out twice.
 */
export function randomValue(): string {
  if (offset + VALUE_BYTES > pool.length) {
    pool = randomBytes(VALUE_BYTES * VALUES_PER_REFILL);
    offset = 0;
  }
  const value = pool.toString('base64url', offset, offset + VALUE_BYTES);
  offset += VALUE_BYTES;
  return value;
}
