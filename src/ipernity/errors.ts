/**
 * Errors of the ipernity protocol layer. Every error carries a stable `code`
 * (tests and callers branch on it, never on the wording) and the HTTP status
 * a web front end should answer with when the error reaches a visitor.
 */

/** Stable codes of the errors raised by the protocol layer. */
export const ErrorCodes = {
  IPERNITY_API_ERROR: 'IPERNITY_API_ERROR',
  UPSTREAM_TIMEOUT: 'UPSTREAM_TIMEOUT',
  UPSTREAM_NETWORK: 'UPSTREAM_NETWORK',
  UPSTREAM_HTTP_STATUS: 'UPSTREAM_HTTP_STATUS',
  UPSTREAM_BAD_RESPONSE: 'UPSTREAM_BAD_RESPONSE',
  FROB_MISSING: 'FROB_MISSING',
  FROB_MALFORMED: 'FROB_MALFORMED',
  FROB_REPEATED: 'FROB_REPEATED',
  PERMISSION_INVALID: 'PERMISSION_INVALID',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/** Base class: a protocol error with a stable code and an HTTP status. */
export class IpernityError extends Error {
  override readonly name: string = 'IpernityError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly status: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
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
    super(ErrorCodes.IPERNITY_API_ERROR, `ipernity ${method} failed with code ${apiCode}: ${apiMessage}`, 502);
  }
}

/** The call did not finish within the configured timeout. */
export class UpstreamTimeoutError extends IpernityError {
  override readonly name = 'UpstreamTimeoutError';
  constructor(readonly method: string, readonly timeoutMs: number, options?: { cause?: unknown }) {
    super(ErrorCodes.UPSTREAM_TIMEOUT, `ipernity ${method} did not answer within ${timeoutMs} ms`, 504, options);
  }
}

/** The connection could not be made, or was dropped before an answer came. */
export class UpstreamNetworkError extends IpernityError {
  override readonly name = 'UpstreamNetworkError';
  constructor(readonly method: string, options?: { cause?: unknown }) {
    super(ErrorCodes.UPSTREAM_NETWORK, `ipernity ${method} could not be reached`, 502, options);
  }
}

/** ipernity answered with an HTTP status other than 2xx. */
export class UpstreamHttpError extends IpernityError {
  override readonly name = 'UpstreamHttpError';
  constructor(readonly method: string, readonly httpStatus: number) {
    super(ErrorCodes.UPSTREAM_HTTP_STATUS, `ipernity ${method} answered HTTP ${httpStatus}`, 502);
  }
}

/** ipernity answered 2xx with a body that is not the documented JSON. */
export class UpstreamBadResponseError extends IpernityError {
  override readonly name = 'UpstreamBadResponseError';
  constructor(readonly method: string, detail: string, options?: { cause?: unknown }) {
    super(ErrorCodes.UPSTREAM_BAD_RESPONSE, `ipernity ${method} answered with an unexpected body: ${detail}`, 502, options);
  }
}

/** A parameter given to the protocol layer (a frob, a permission) is not acceptable. */
export class InputError extends IpernityError {
  override readonly name = 'InputError';
  constructor(code: ErrorCode, message: string, readonly parameter: string) {
    super(code, message, 400);
  }
}
