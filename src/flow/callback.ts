import { Codes } from '../errors';
import { parseFrob, type ValidatedFrob } from '../ipernity';
import type { PendingAttempt } from '../sessions/session-data';
import {storeUnavailable, WebError } from '../web/errors';
import { seeOther } from '../web/see-other';
import { liveAttempts } from './attempts';
import { attemptFor, connectDesktop, exchange, frobGrant, keep } from './connecting';
import type { AsyncHandler, FlowContext } from './context';
import { declined } from './declined';
import { connectOAuth } from './oauth-callback';
import { safeReturnTo } from './return-to';

/**
 * `GET /connect/callback`: ipernity sends the browser back here with a frob
 * (OAuth mode: with the attempt's request token, see `connectOAuth`).
 * Only a browser with a pending attempt is connected, and the first callback
 * to reach an attempt spends it (see docs/security.md).
 */
export function callback(ctx: FlowContext): AsyncHandler {
  return async function callback(req, res) {
    if (ctx.secure && !req.secure) {
      // the session cookie is Secure: express-session would not send it on a request it thinks is http,
      // and the visitor would stay disconnected with a connection stored for nobody
      throw new WebError(Codes.TRUST_PROXY_NEEDED, 'PUBLIC_URL is https but the callback arrived over http: set TRUST_PROXY to the proxy in front of this server');
    }
    const query = req.query as Record<string, unknown>;
    const attempts = ctx.attempts.read(req);
    const live = liveAttempts(attempts);
    if (live.length === 0) {
      const connection = req.session.connection;
      if (connection) {
        // a reload after success, or a stray link: never exchanged without an attempt
        seeOther(res, safeReturnTo(connection.returnTo));
        return;
      }
      if (attempts.length) throw new WebError(Codes.ATTEMPT_EXPIRED, 'the connection attempt has expired');
      throw new WebError(Codes.ATTEMPT_MISSING, 'no connection attempt is pending in this browser');
    }
    // nothing is spent (the attempt, the frob) unless the connection can then be kept
    if (!(await ctx.sessions.ping())) throw storeUnavailable(new Error('the session store did not answer before the callback'));
    if (ctx.mode === 'desktop') {
      const frob = parseFrob(query);
      const attempt = live.find((candidate) => candidate.frob === frob);
      if (!attempt) throw new WebError(Codes.FROB_MISMATCH, 'the frob is not the one this browser asked for');
      await connectDesktop(ctx, req, res, live, attempt, frob);
      return;
    }
    if (ctx.mode === 'oauth') {
      await connectOAuth(ctx, req, res, live, query);
      return;
    }
    // Web mode: the callback carries nothing that names its attempt, so the first callback to reach an attempt spends
    // it, whatever it carries: a frob from someone else's authorization gets one try, not ten minutes of them.
    const newest = live[live.length - 1] as PendingAttempt;
    const spend = (attempt: PendingAttempt): void => ctx.attempts.write(res, live.filter((other) => other !== attempt));
    if (!Object.prototype.hasOwnProperty.call(query, 'frob')) {
      // back from ipernity without a frob: the visitor declined
      spend(newest);
      declined(ctx, req, res);
      return;
    }
    let frob: ValidatedFrob;
    try {
      frob = parseFrob(query);
    } catch (error) {
      spend(newest);
      throw error;
    }
    const exchanged = await exchange(ctx, req, res, frobGrant(ctx, frob), newest, () => spend(newest));
    // each tab's attempt returns where it started: the one that asked for exactly what was granted, newest first
    if (exchanged) await keep(ctx, req, res, live, attemptFor(live, exchanged.grant.permissions), exchanged);
  };
}
