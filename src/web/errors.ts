import type { RequestHandler } from 'express';
import { Codes, statusOf, type ErrorCode } from '../errors';

/** An error a visitor sees as a page (or JSON), with its HTTP status. */
export class WebError extends Error {
  override readonly name = 'WebError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly extra: { allow?: string[]; retry?: boolean; details?: Record<string, unknown> } = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** The HTTP status, from the registry. */
  get status(): number {
    return statusOf(this.code);
  }
}

/** The session store could not be read or written (Redis down, disk full). */
export function storeUnavailable(cause: unknown): WebError {
  return new WebError(Codes.SESSION_STORE_UNAVAILABLE, 'the session store is unavailable', {}, { cause });
}

/** Answers 405 with an `Allow` header for a path that exists under other methods. */
export function methodNotAllowed(allow: string[]): RequestHandler {
  return function methodNotAllowedHandler(_req, _res, next) {
    next(new WebError(Codes.METHOD_NOT_ALLOWED, 'method not allowed', { allow }));
  };
}
