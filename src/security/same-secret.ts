import { timingSafeEqual } from 'node:crypto';

/** True when two secrets are equal, compared in constant time (their lengths aside). */
export function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given, 'utf8');
  const b = Buffer.from(expected, 'utf8');
  return a.length === b.length && timingSafeEqual(a, b);
}
