import { Codes } from '../errors';
import type { RequestHandler } from 'express';
import type { ValidatedFrob } from '../ipernity';
import type { PendingAttempt } from '../sessions/session-data';
import {WebError } from '../web/errors';
import { liveAttempts } from './attempts';
import { connectDesktop, renderComplete } from './connecting';
import { single, type AsyncHandler, type FlowContext } from './context';

/** The attempt a desktop form or page names, or the error that says why there is none. */
function desktopAttempt(attempts: readonly PendingAttempt[], nonce: string | undefined): PendingAttempt {
  const live = liveAttempts(attempts).find((attempt) => attempt.nonce === nonce && attempt.frob);
  if (live) return live;
  if (attempts.some((attempt) => attempt.nonce === nonce)) {
    throw new WebError(Codes.ATTEMPT_EXPIRED, 'the connection attempt has expired');
  }
  throw new WebError(Codes.ATTEMPT_MISSING, 'no connection attempt is pending in this browser');
}

/** `GET /connect/complete` (desktop mode): the page that links to ipernity and offers "Complete authorization". */
export function completePage(ctx: FlowContext): RequestHandler {
  return function completePage(req, res) {
    renderComplete(ctx, req, res, 200, desktopAttempt(ctx.attempts.read(req), single((req.query as Record<string, unknown>).attempt)));
  };
}

/** `POST /connect/complete` (desktop mode): exchanges the attempt's frob once the visitor says they authorized. */
export function complete(ctx: FlowContext): AsyncHandler {
  return async function complete(req, res) {
    const attempts = ctx.attempts.read(req);
    const attempt = desktopAttempt(attempts, single((req.body as Record<string, unknown> | undefined)?.attempt));
    await connectDesktop(ctx, req, res, attempts, attempt, attempt.frob as ValidatedFrob);
  };
}
