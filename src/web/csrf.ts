import { createHmac, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { parse as parseCookies } from 'cookie';
import { randomValue } from './random';

/** The form field that carries the CSRF token. */
export const CSRF_FIELD = '_csrf';

/** A state-changing request came without a valid CSRF token or from another site. */
export class CsrfError extends Error {
  override readonly name = 'CsrfError';
  readonly code = 'CSRF_INVALID';
  readonly status = 403;
}

export interface CsrfOptions {
  /** Secrets that sign tokens, newest first. */
  secrets: readonly string[];
  cookieName: string;
  secure: boolean;
  /** The site's origin: a POST whose Origin header names another is refused. */
  origin: string;
}

export interface Csrf {
  /** The token for this browser's forms (sets the browser's CSRF cookie when it has none). */
  token(req: Request, res: Response): string;
  /** Middleware refusing a request whose form token does not match the browser's cookie. */
  verify: RequestHandler;
}

/**
 * CSRF protection by signed double submit: each browser gets a random value in
 * an HttpOnly cookie, and forms carry an HMAC of it. The cookie works before a
 * session exists, so reading the warning page creates no session.
 */
export function createCsrf(options: CsrfOptions): Csrf {
  const secrets = options.secrets.map((secret) => Buffer.from(secret, 'utf8'));
  const sign = (secret: Buffer, value: string): Buffer => createHmac('sha256', secret).update(value).digest();

  function browserValue(req: Request): string | undefined {
    const header = req.headers.cookie;
    if (!header || !header.includes(options.cookieName)) return undefined;
    const value = parseCookies(header)[options.cookieName];
    return value && /^[A-Za-z0-9_-]{43}$/.test(value) ? value : undefined;
  }

  function token(req: Request, res: Response): string {
    let value = browserValue(req) ?? (res.locals.csrfValue as string | undefined);
    if (!value) {
      value = randomValue();
      res.locals.csrfValue = value;
      res.cookie(options.cookieName, value, { httpOnly: true, sameSite: 'lax', secure: options.secure, path: '/' });
    }
    return sign(secrets[0] as Buffer, value).toString('base64url');
  }

  function verify(req: Request, _res: Response, next: NextFunction): void {
    const origin = req.headers.origin;
    if (origin !== undefined && origin !== 'null' && origin !== options.origin) {
      next(new CsrfError('the form was sent from another site'));
      return;
    }
    const value = browserValue(req);
    const body = (req.body ?? {}) as Record<string, unknown>;
    const sent = body[CSRF_FIELD];
    if (!value || typeof sent !== 'string' || sent.length > 100) {
      next(new CsrfError('the form is missing its security token'));
      return;
    }
    const given = Buffer.from(sent, 'base64url');
    const valid = secrets.some((secret) => {
      const expected = sign(secret, value);
      return given.length === expected.length && timingSafeEqual(given, expected);
    });
    next(valid ? undefined : new CsrfError('the form security token does not match'));
  }

  return { token, verify };
}
