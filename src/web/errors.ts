import type { RequestHandler } from 'express';

/** Stable codes of the errors the web layer answers with (beyond the protocol's own). */
export const WebErrorCodes = {
  NOT_FOUND: 'NOT_FOUND',
  METHOD_NOT_ALLOWED: 'METHOD_NOT_ALLOWED',
  ATTEMPT_MISSING: 'ATTEMPT_MISSING',
  ATTEMPT_EXPIRED: 'ATTEMPT_EXPIRED',
  FROB_MISMATCH: 'FROB_MISMATCH',
  NOT_AUTHORIZED_YET: 'NOT_AUTHORIZED_YET',
  SESSION_STORE_UNAVAILABLE: 'SESSION_STORE_UNAVAILABLE',
  RATE_LIMITED: 'RATE_LIMITED',
  NOT_CONNECTED: 'NOT_CONNECTED',
  URI_TOO_LONG: 'URI_TOO_LONG',
  /** PUBLIC_URL is https but requests reach the server as http: the proxy in front of it is not trusted. */
  TRUST_PROXY_NEEDED: 'TRUST_PROXY_NEEDED',
} as const;

export type WebErrorCode = (typeof WebErrorCodes)[keyof typeof WebErrorCodes];

/** An error a visitor sees as a page (or JSON), with its HTTP status. */
export class WebError extends Error {
  override readonly name = 'WebError';
  constructor(
    readonly code: WebErrorCode,
    readonly status: number,
    message: string,
    readonly extra: { allow?: string[]; retry?: boolean } = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The session store could not be read or written (Redis down, disk full). */
export function storeUnavailable(cause: unknown): WebError {
  return new WebError(WebErrorCodes.SESSION_STORE_UNAVAILABLE, 503, 'the session store is unavailable', {}, { cause });
}

/** Answers 405 with an `Allow` header for a path that exists under other methods. */
export function methodNotAllowed(allow: string[]): RequestHandler {
  return function methodNotAllowedHandler(_req, _res, next) {
    next(new WebError(WebErrorCodes.METHOD_NOT_ALLOWED, 405, 'method not allowed', { allow }));
  };
}
