import { randomBytes } from 'node:crypto';

/** 32 fresh random bytes as base64url (43 characters), for session ids, CSRF cookies and attempt nonces. */
export function randomValue(): string {
  return randomBytes(32).toString('base64url');
}
