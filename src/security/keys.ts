import { createHash, hkdfSync } from 'node:crypto';

/** A token-encryption key and the short id sealed values name it by. */
export interface TokenKey {
  id: string;
  key: Buffer;
}

function withId(key: Buffer): TokenKey {
  return { id: createHash('sha256').update(key).digest('hex').slice(0, 8), key };
}

/** The token key derived from a session secret (HKDF-SHA256), when TOKEN_ENCRYPTION_KEY is not set. */
export function keyFromSecret(secret: string): TokenKey {
  return withId(Buffer.from(hkdfSync('sha256', secret, 'ipernity-connect', 'token-encryption-v1', 32)));
}

/** A TOKEN_ENCRYPTION_KEY entry: 32 bytes as 64 hex digits or base64; undefined for anything else. */
export function parseKey(text: string): TokenKey | undefined {
  if (/^[0-9a-fA-F]{64}$/.test(text)) return withId(Buffer.from(text, 'hex'));
  const decoded = Buffer.from(text, 'base64');
  return decoded.length === 32 ? withId(decoded) : undefined;
}
