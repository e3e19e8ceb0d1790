import { Codes, type ErrorCode } from '../errors';
import type { RequestedPermissions } from '../ipernity';
import { statusOf } from '../errors';

/**
 * Why the visitor's connection cannot serve a call, and where they can fix
 * it: the warning page, asking for what is needed and coming back. A page
 * request is sent there; a JSON request is told (`answerConnectionErrors`).
 */
export class ConnectionError extends Error {
  override readonly name: string = 'ConnectionError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** The warning page's address, with `return_to`. */
    readonly link: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  get status(): number {
    return statusOf(this.code);
  }

  /** What a JSON answer says beside the code and status. */
  details(): Record<string, unknown> {
    return { connectUrl: this.link };
  }
}

/** The visitor has not connected an ipernity account. */
export class NotConnectedError extends ConnectionError {
  override readonly name = 'NotConnectedError';
  constructor(link: string) {
    super(Codes.NOT_CONNECTED, 'no ipernity account is connected', link);
  }
}

/** The connection does not grant what the method needs (or ipernity answered 110). */
export class PermissionMissingError extends ConnectionError {
  override readonly name = 'PermissionMissingError';
  constructor(
    readonly method: string,
    /** What is lacking, e.g. `{ doc: 'write' }`. */
    readonly missing: RequestedPermissions,
    link: string,
    options?: { cause?: unknown },
  ) {
    super(Codes.PERMISSION_MISSING, `ipernity ${method} needs ${Object.entries(missing).map(([item, level]) => `${item}:${level}`).join(', ')}, which the connection does not grant`, link, options);
  }

  override details(): Record<string, unknown> {
    return { method: this.method, missing: this.missing, upgradeUrl: this.link };
  }
}

/** ipernity no longer honours the token (107 revoked, 108 account closed): the connection was cleared. */
export class ConnectionRevokedError extends ConnectionError {
  override readonly name = 'ConnectionRevokedError';
  constructor(link: string, options?: { cause?: unknown }) {
    super(Codes.CONNECTION_REVOKED, 'the ipernity connection was revoked; it has been cleared', link, options);
  }
}
