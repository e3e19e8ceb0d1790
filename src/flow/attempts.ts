import type { Request, Response } from 'express';
import { parse as parseCookies, serialize } from 'cookie';
import { ATTEMPT_TTL_MS } from '../config';
import type { PendingAttempt } from '../sessions/session-data';
import type { TokenCipher } from '../security/token-cipher';

/** Attempts kept per browser (several tabs may each start one). */
const MAX_ATTEMPTS = 5;
/** Longest sealed value written: the oldest attempts give way first, so the cookie stays well under browsers' 4 KB. */
const MAX_VALUE_LENGTH = 3500;
/**
 * How long the browser keeps the cookie: longer than an attempt lives, so a
 * visitor who comes back late is told the attempt expired rather than that
 * there was none.
 */
const COOKIE_MAX_AGE_SECONDS = 24 * 60 * 60;

export interface AttemptCookieOptions {
  cipher: TokenCipher;
  cookieName: string;
  secure: boolean;
}

/**
 * The connection attempts a browser started, kept in that browser: an
 * HttpOnly cookie sealed with the token keys (AES-256-GCM), so it cannot
 * be read or altered there, and a desktop attempt's frob is not shown.
 * (nor an OAuth attempt's request token secret).
 * Starting a flow therefore writes nothing to the session store: only a
 * visitor who ends up connected has a stored session.
 */
export interface AttemptCookie {
  /** The attempts this browser carries, oldest first, expired ones included; none when the cookie is absent or unreadable. */
  read(req: Request): PendingAttempt[];
  /** Keeps these attempts (the live ones, newest last) in the browser; an empty list removes the cookie. */
  write(res: Response, attempts: readonly PendingAttempt[]): void;
  /** Removes the cookie when the browser sent one, readable or not, without opening it. */
  clear(req: Request, res: Response): void;
}

/** The attempts still honoured (younger than `ATTEMPT_TTL_MS`). */
export function liveAttempts(attempts: readonly PendingAttempt[], now = Date.now()): PendingAttempt[] {
  return attempts.filter((attempt) => now - attempt.startedAt <= ATTEMPT_TTL_MS);
}

function isAttempt(value: unknown): value is PendingAttempt {
  const attempt = value as Partial<PendingAttempt> | null;
  return (
    typeof attempt === 'object' &&
    attempt !== null &&
    typeof attempt.nonce === 'string' &&
    typeof attempt.returnTo === 'string' &&
    typeof attempt.startedAt === 'number' &&
    typeof attempt.permissions === 'object' &&
    attempt.permissions !== null &&
    (attempt.frob === undefined || typeof attempt.frob === 'string') &&
    (attempt.requestToken === undefined || (typeof attempt.requestToken === 'string' && typeof attempt.requestSecret === 'string'))
  );
}

export function createAttemptCookie(options: AttemptCookieOptions): AttemptCookie {
  const { cipher, cookieName, secure } = options;
  const attributes = { httpOnly: true, sameSite: 'lax', secure, path: '/' } as const;
  // the attributes never change, and a sealed value is base64url and dots, which a cookie carries as is
  const kept = serialize(cookieName, '', { ...attributes, maxAge: COOKIE_MAX_AGE_SECONDS }).slice(cookieName.length + 1);

  /** The sealed value the browser sent, if any. */
  function sealedIn(req: Request): string | undefined {
    const header = req.headers.cookie;
    return header && header.includes(cookieName) ? parseCookies(header)[cookieName] : undefined;
  }

  function read(req: Request): PendingAttempt[] {
    const sealed = sealedIn(req);
    if (!sealed) return [];
    try {
      const attempts: unknown = JSON.parse(cipher.decrypt(sealed, 'attempts'));
      return Array.isArray(attempts) ? attempts.filter(isAttempt) : [];
    } catch {
      // sealed with a key since removed, or altered: as if the browser had started nothing
      return [];
    }
  }

  function write(res: Response, attempts: readonly PendingAttempt[]): void {
    let list = liveAttempts(attempts).slice(-MAX_ATTEMPTS);
    while (list.length) {
      const sealed = cipher.encrypt(JSON.stringify(list), 'attempts');
      if (sealed.length <= MAX_VALUE_LENGTH || list.length === 1) {
        res.append('Set-Cookie', `${cookieName}=${sealed}${kept}`);
        return;
      }
      list = list.slice(1);
    }
    res.clearCookie(cookieName, attributes);
  }

  function clear(req: Request, res: Response): void {
    if (sealedIn(req)) res.clearCookie(cookieName, attributes);
  }

  return { read, write, clear };
}
