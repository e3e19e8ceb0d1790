import { createHmac, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { parse as parseCookies } from 'cookie';
import { randomValue } from './random';
import { Codes, statusOf } from '../errors';

/** The values of `Sec-Fetch-Site` (Fetch Metadata): a request with one of them comes from a browser that sends it. */
const FETCH_SITES = new Set(['same-origin', 'same-site', 'cross-site', 'none']);

/**
 * True when the browser says (Fetch Metadata) the request comes from this
 * site itself (`same-origin`) or from the visitor's own hand (`none`: the
 * address bar, a bookmark); false for another site, a sibling host, or a
 * browser that sends no Fetch Metadata.
 */
export function fromThisSiteOrTyped(req: Request): boolean {
  const site = req.headers['sec-fetch-site'];
  return site === 'same-origin' || site === 'none';
}

/** The form field that carries the CSRF token. */
export const CSRF_FIELD = '_csrf';
/** The header a script's request carries the token in, when it has no form field (`X-CSRF-Token`). */
export const CSRF_HEADER = 'x-csrf-token';

/** A state-changing request came without a valid CSRF token or from another site. */
export class CsrfError extends Error {
  override readonly name = 'CsrfError';
  readonly code = Codes.CSRF_INVALID;
  readonly status = statusOf(Codes.CSRF_INVALID);
}

export interface CsrfOptions {
  /** Secrets that sign tokens, newest first. */
  secrets: readonly string[];
  cookieName: string;
  secure: boolean;
  /** The site's origin: a POST whose Origin header names another is refused. */
  origin: string;
  /**
   * The session id the browser's cookie carries: a token is bound to it as well as to the CSRF cookie, so that
   * a page that can set cookies for this host (on plain http) cannot pair a cookie of its own with a token.
   */
  sessionIdOf?: (req: Request) => string | undefined;
}

export interface Csrf {
  /**
   * The token for this browser's forms (sets the browser's CSRF cookie when it
   * has none), or `undefined` for a browser that sends `Sec-Fetch-Site`: its
   * forms are checked by that header and need no token.
   */
  token(req: Request, res: Response): string | undefined;
  /** Middleware refusing a form sent from another site, or without a token matching the browser's cookie. */
  verify: RequestHandler;
}

/**
 * CSRF protection in two ways, chosen by what the browser can do.
 *
 * A browser that sends Fetch Metadata (every current one, on https and on
 * localhost) says in `Sec-Fetch-Site` where a request comes from, and no page
 * can forge that header. Its POSTs are accepted when they come from this
 * origin (`same-origin`) or from the visitor's own hand (`none`: the address
 * bar, a bookmark), refused when from another site (`cross-site`), and need a
 * token when from a sibling host (`same-site`). Its pages carry no token and
 * set no cookie.
 *
 * Any other client gets signed double submit: a random value in an HttpOnly
 * cookie, and forms carrying an HMAC of it and of the session id, when the
 * browser has a session. The cookie works before a session exists, so
 * reading the warning page creates no session. A POST whose `Origin` names
 * another site is refused in either case.
 */
export function createCsrf(options: CsrfOptions): Csrf {
  const secrets = options.secrets.map((secret) => Buffer.from(secret, 'utf8'));
  const sessionIdOf = options.sessionIdOf ?? (() => undefined);
  // the session id ends the signed text: a token is good for this cookie and this session (or none) only
  const sign = (secret: Buffer, value: string, req: Request): Buffer => createHmac('sha256', secret).update(`${value}:${sessionIdOf(req) ?? ''}`).digest();

  function browserValue(req: Request): string | undefined {
    const header = req.headers.cookie;
    if (!header || !header.includes(options.cookieName)) return undefined;
    const value = parseCookies(header)[options.cookieName];
    return value && /^[A-Za-z0-9_-]{43}$/.test(value) ? value : undefined;
  }

  function token(req: Request, res: Response): string | undefined {
    // the POST from this page will carry Sec-Fetch-Site too: the page's own origin is all it needs
    if (FETCH_SITES.has(req.headers['sec-fetch-site'] as string)) return undefined;
    let value = browserValue(req) ?? (res.locals.csrfValue as string | undefined);
    if (!value) {
      value = randomValue();
      res.locals.csrfValue = value;
      res.cookie(options.cookieName, value, { httpOnly: true, sameSite: 'lax', secure: options.secure, path: '/' });
    }
    return sign(secrets[0] as Buffer, value, req).toString('base64url');
  }

  function verify(req: Request, _res: Response, next: NextFunction): void {
    const origin = req.headers.origin;
    if (origin !== undefined && origin !== 'null' && origin !== options.origin) {
      next(new CsrfError('the form was sent from another site'));
      return;
    }
    if (fromThisSiteOrTyped(req)) {
      next();
      return;
    }
    const site = req.headers['sec-fetch-site'];
    if (site === 'cross-site') {
      next(new CsrfError('the form was sent from another site'));
      return;
    }
    // same-site (a sibling host) or no Fetch Metadata at all: the token decides
    const value = browserValue(req);
    const body = (req.body ?? {}) as Record<string, unknown>;
    // a form's field, or the header a script sends with its fetch
    const sent = body[CSRF_FIELD] ?? req.headers[CSRF_HEADER];
    if (!value || typeof sent !== 'string' || sent.length > 100) {
      next(new CsrfError('the form is missing its security token'));
      return;
    }
    const given = Buffer.from(sent, 'base64url');
    const valid = secrets.some((secret) => {
      const expected = sign(secret, value, req);
      return given.length === expected.length && timingSafeEqual(given, expected);
    });
    next(valid ? undefined : new CsrfError('the form security token does not match'));
  }

  return { token, verify };
}
