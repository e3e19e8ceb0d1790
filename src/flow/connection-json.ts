import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { AsyncHandler, FlowContext } from './context';
import { refreshConnection, shouldCheckToken, viewOf } from './token-check';

/** A `?check=1` answered by a check younger than this reuses it. */
export const CHECK_REUSE_MS = 5000;

/** `?check=1`: ask ipernity now, whatever the check interval says. */
const asksForCheck = (req: Request): boolean => (req.query as Record<string, unknown>).check === '1';

/** Each check is a call under the site's key, so `?check=1` is rate-limited. */
export function checkLimit(ctx: FlowContext): RequestHandler {
  return function checkLimit(req: Request, res: Response, next: NextFunction): void {
    if (asksForCheck(req)) ctx.rateLimit(req, res, next);
    else next();
  };
}

/**
 * `GET /connection`: the connection as JSON for the site's own front end, never the token. `?check=1` asks
 * ipernity now, or answers the check of a few seconds ago: a page that asks on every view does not make a call
 * each time.
 */
export function connectionJson(ctx: FlowContext): AsyncHandler {
  return async function connectionJson(req, res) {
    res.set('Cache-Control', 'no-store');
    let connection = req.session?.connection;
    if (connection) {
      const force = asksForCheck(req) && shouldCheckToken(connection, CHECK_REUSE_MS);
      connection = await refreshConnection(req, ctx.tokenCheck, force, ctx.logger);
      if (!connection) {
        delete req.session.notice;
        res.json({ connected: false, reason: 'revoked' });
        return;
      }
    }
    res.json(connection ? { connected: true, ...viewOf(connection) } : { connected: false });
  };
}
