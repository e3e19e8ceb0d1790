/**
 * Errors of the ipernity protocol layer. Every error carries a stable `code`
 * (tests and callers branch on it, never on the wording) and the HTTP status
 * a web front end should answer with when the error reaches a visitor.
 */

import { Codes, statusOf, type ErrorCode } from '../errors';

// the codes live in the one registry of the server's errors (src/errors.ts); the protocol layer raises these
export { Codes, type ErrorCode } from '../errors';

/** Base class: a protocol error with a stable code and an HTTP status. */
export class IpernityError extends Error {
  override readonly name: string = 'IpernityError';
  /** The HTTP status a web front end answers with, from the registry. */
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.status = statusOf(code);
  }
}

/** ipernity answered with `status: error`; `apiCode` is ipernity's numeric code. */
export class IpernityApiError extends IpernityError {
  override readonly name = 'IpernityApiError';
  constructor(
    readonly method: string,
    readonly apiCode: number,
    readonly apiMessage: string,
  ) {
    super(Codes.IPERNITY_API_ERROR, `ipernity ${method} failed with code ${apiCode}: ${apiMessage}`);
  }
}

/** The call did not finish within the configured timeout. */
export class UpstreamTimeoutError extends IpernityError {
  override readonly name = 'UpstreamTimeoutError';
  constructor(readonly method: string, readonly timeoutMs: number, options?: { cause?: unknown }) {
    super(Codes.UPSTREAM_TIMEOUT, `ipernity ${method} did not answer within ${timeoutMs} ms`, options);
  }
}

/** The connection could not be made, or was dropped before an answer came. */
export class UpstreamNetworkError extends IpernityError {
  override readonly name = 'UpstreamNetworkError';
  constructor(readonly method: string, options?: { cause?: unknown }) {
    super(Codes.UPSTREAM_NETWORK, `ipernity ${method} could not be reached`, options);
  }
}

/** ipernity answered with an HTTP status other than 2xx. */
export class UpstreamHttpError extends IpernityError {
  override readonly name = 'UpstreamHttpError';
  constructor(readonly method: string, readonly httpStatus: number) {
    super(Codes.UPSTREAM_HTTP_STATUS, `ipernity ${method} answered HTTP ${httpStatus}`);
  }
}

/** ipernity answered 2xx with a body that is not the documented JSON. */
export class UpstreamBadResponseError extends IpernityError {
  override readonly name = 'UpstreamBadResponseError';
  constructor(readonly method: string, detail: string, options?: { cause?: unknown }) {
    super(Codes.UPSTREAM_BAD_RESPONSE, `ipernity ${method} answered with an unexpected body: ${detail}`, options);
  }
}

/** A parameter given to the protocol layer (a frob, a permission) is not acceptable. */
export class InputError extends IpernityError {
  override readonly name = 'InputError';
  constructor(code: ErrorCode, message: string, readonly parameter: string) {
    super(code, message);
  }
}
