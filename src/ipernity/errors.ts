/**
 * Errors of the ipernity protocol layer. Every error carries a stable `code`
 * (tests and callers branch on it, never on the wording) and the HTTP status
 * a web front end should answer with when the error reaches a visitor.
 */

import { Codes, statusOf, type ErrorCode } from '../errors';
import type { MethodPermission } from './catalogue';
import type { RequestedPermissions } from './permissions';

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

/**
 * ipernity answered with `status: error`; `apiCode` is ipernity's numeric code.
 * The codes a connection meets in use (110, 112, 113, 120) are subclasses with
 * codes of their own; every other code is `IPERNITY_API_ERROR`.
 */
export class IpernityApiError extends IpernityError {
  override readonly name: string = 'IpernityApiError';
  constructor(
    readonly method: string,
    readonly apiCode: number,
    readonly apiMessage: string,
    code: ErrorCode = Codes.IPERNITY_API_ERROR,
  ) {
    super(code, `ipernity ${method} failed with code ${apiCode}: ${apiMessage}`);
  }
}

/** ipernity's 110: the token lacks the permission the method needs (`permission`, from the catalogue; undefined for an unlisted method). */
export class IpernityPermissionError extends IpernityApiError {
  override readonly name = 'IpernityPermissionError';
  /** The same permission as a set, for `missing`, `toParams` or `createPermissionGuard` (empty when unknown). */
  readonly required: RequestedPermissions;
  constructor(method: string, apiMessage: string, readonly permission: MethodPermission | undefined) {
    super(method, 110, apiMessage, Codes.IPERNITY_PERMISSION_DENIED);
    this.required = permission ? { [permission.item]: permission.level } : {};
  }
}

/** ipernity's 112: the application's request quota is reached (for every visitor at once). */
export class IpernityQuotaError extends IpernityApiError {
  override readonly name = 'IpernityQuotaError';
  constructor(method: string, apiMessage: string) {
    super(method, 112, apiMessage, Codes.IPERNITY_QUOTA_REACHED);
  }
}

/** Seconds to wait after a 113 when ipernity's answer names no delay (it documents none). */
export const DEFAULT_RETRY_AFTER_SECONDS = 60;

/**
 * ipernity's 113: too many requests from this server's address (all its
 * visitors together). `retryAfterSeconds` comes from the answer's
 * `Retry-After` header when there is one, else `DEFAULT_RETRY_AFTER_SECONDS`.
 */
export class IpernityRateLimitError extends IpernityApiError {
  override readonly name = 'IpernityRateLimitError';
  constructor(method: string, apiMessage: string, readonly retryAfterSeconds: number = DEFAULT_RETRY_AFTER_SECONDS) {
    super(method, 113, apiMessage, Codes.IPERNITY_RATE_LIMITED);
  }
}

/** ipernity's 120: the method must be sent by POST. The client POSTs every call, so this is a defect (ours or on the way). */
export class IpernityPostRequiredError extends IpernityApiError {
  override readonly name = 'IpernityPostRequiredError';
  constructor(method: string, apiMessage: string) {
    super(method, 120, apiMessage, Codes.IPERNITY_POST_REQUIRED);
  }
}

/** ipernity's OAuth codes (130-135) by their stable code. */
const OAUTH_CODES: Readonly<Record<number, ErrorCode>> = {
  130: Codes.IPERNITY_OAUTH_VERSION,
  131: Codes.IPERNITY_OAUTH_PARAMETER_MISSING,
  132: Codes.IPERNITY_OAUTH_CLOCK_SKEW,
  133: Codes.IPERNITY_OAUTH_NONCE_USED,
  134: Codes.IPERNITY_OAUTH_TIMESTAMP,
  135: Codes.IPERNITY_OAUTH_SIGNATURE_METHOD,
};

/**
 * ipernity refused a request's OAuth parameters (130 version, 131 a parameter
 * missing, 132 clock skew, 133 nonce used, 134 timestamp, 135 signature
 * method): what this server signed, never the visitor's doing. 132 and 134
 * say in the message (and so in the log) to check the server's clock.
 */
export class IpernityOAuthError extends IpernityApiError {
  override readonly name = 'IpernityOAuthError';
  constructor(method: string, apiCode: number, apiMessage: string) {
    super(method, apiCode, apiCode === 132 || apiCode === 134 ? `${apiMessage} (check this server's clock: OAuth timestamps must be within minutes of ipernity's)` : apiMessage, OAUTH_CODES[apiCode] ?? Codes.IPERNITY_API_ERROR);
  }
}

/** `upload.file`'s (and `upload.replace`'s) 2: the file is over the account's size limit, per file or in all (see `account.getQuota`). */
export class IpernityFileTooLargeError extends IpernityApiError {
  override readonly name = 'IpernityFileTooLargeError';
  constructor(method: string, apiMessage: string) {
    super(method, 2, apiMessage, Codes.IPERNITY_FILE_TOO_LARGE);
  }
}

/** An upload's ticket came back `invalid="1"`: ipernity received the file but could not process it. */
export class UploadInvalidError extends IpernityError {
  override readonly name = 'UploadInvalidError';
  constructor(readonly ticket: string) {
    super(Codes.IPERNITY_UPLOAD_INVALID, `ipernity could not process the upload of ticket ${ticket.slice(0, 40)}`);
  }
}

/**
 * Waiting for tickets would pass its deadline: `pending` names the tickets
 * still processing, `settled` what the others became (in the order asked).
 */
export class UploadPendingError extends IpernityError {
  override readonly name = 'UploadPendingError';
  constructor(
    readonly pending: readonly string[],
    readonly settled: readonly TicketResult[],
  ) {
    super(Codes.IPERNITY_UPLOAD_PENDING, `ipernity was still processing ${pending.length} upload(s) at the deadline: ${pending.slice(0, 10).join(', ').slice(0, 300)}`);
  }
}

/** What one upload ticket became: a document, or an `UploadInvalidError`. */
export type TicketResult = { ticket: string; docId: string; error?: undefined } | { ticket: string; docId?: undefined; error: UploadInvalidError };

/**
 * The file's own stream failed, or gave another number of bytes than its
 * announced `size`, before the upload was sent whole; the request to ipernity
 * was aborted. `cause` is the stream's error.
 */
export class UploadSourceError extends IpernityError {
  override readonly name = 'UploadSourceError';
  constructor(readonly method: string, detail: string, options?: { cause?: unknown }) {
    super(Codes.UPLOAD_SOURCE_FAILED, `ipernity ${method}: the file could not be read whole (${detail}); nothing was uploaded`, options);
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

/** The client refused a call before sending anything: a mistake of the calling code, not of ipernity. */
export class CallRefusedError extends IpernityError {
  override readonly name: string = 'CallRefusedError';
  constructor(code: ErrorCode, readonly method: string, message: string) {
    super(code, message);
  }
}

/** The method is not in ipernity's list (src/ipernity/methods.tsv); `{ unlisted: true }` reaches it anyway. */
export class UnknownMethodError extends CallRefusedError {
  override readonly name = 'UnknownMethodError';
  constructor(method: string) {
    super(Codes.IPERNITY_METHOD_UNKNOWN, method, `"${method.slice(0, 80)}" is not in ipernity's method list`);
  }
}

/** The method needs a token (`auth_token`) and none was given. */
export class TokenRequiredError extends CallRefusedError {
  override readonly name = 'TokenRequiredError';
  constructor(method: string) {
    super(Codes.IPERNITY_TOKEN_REQUIRED, method, `ipernity ${method} needs a token (auth_token) and none was given`);
  }
}

/** A parameter the method requires is missing (or empty); `parameter` names it. */
export class ParameterMissingError extends CallRefusedError {
  override readonly name = 'ParameterMissingError';
  constructor(method: string, readonly parameter: string) {
    super(Codes.IPERNITY_PARAMETER_MISSING, method, `ipernity ${method} requires the parameter ${parameter}`);
  }
}

/** `paginate` was given a method without `page` and `per_page` parameters. */
export class NotPaginatedError extends CallRefusedError {
  override readonly name = 'NotPaginatedError';
  constructor(method: string) {
    super(Codes.IPERNITY_METHOD_NOT_PAGINATED, method, `ipernity ${method} has no page and per_page parameters to walk`);
  }
}
