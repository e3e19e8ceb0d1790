import { parsePermissionQuery, union, type OAuthCredential, type ValidatedFrob } from '../ipernity';
import { randomValue } from '../security/random';
import type { PendingAttempt } from '../sessions/session-data';
import { flowEvent } from '../web/logging';
import { seeOther } from '../web/see-other';
import { single, type AsyncHandler, type FlowContext } from './context';
import { failed } from './connecting';
import { safeReturnTo } from './return-to';

/**
 * `POST /connect`: records the attempt in the browser, then 303 to ipernity's
 * signed link (desktop: first `auth.getFrob`, then "Complete authorization";
 * OAuth: first a request token, then its authorization address).
 */
export function startFlow(ctx: FlowContext): AsyncHandler {
  return async function startFlow(req, res) {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const requested = parsePermissionQuery(body) ?? {};
    const returnTo = safeReturnTo(single(body.return_to));
    const connection = req.session?.connection;
    // an upgrade asks for what is granted plus what is new, so no grant is lost
    const permissions = connection ? union(connection.permissions, requested) : requested;
    const attempt: PendingAttempt = { nonce: randomValue(), permissions, returnTo, startedAt: Date.now() };
    let frob: ValidatedFrob | undefined;
    if (ctx.mode === 'oauth') {
      let requestToken: OAuthCredential;
      try {
        requestToken = await ctx.client.requestToken(ctx.callbackUrl);
      } catch (error) {
        failed(ctx, req, res, error, attempt);
      }
      // sealed in the attempts cookie: the callback must bring this token back, and its secret signs the exchange
      attempt.requestToken = requestToken.token;
      attempt.requestSecret = requestToken.secret;
    }
    if (ctx.mode === 'desktop') {
      try {
        frob = await ctx.client.getFrob();
      } catch (error) {
        failed(ctx, req, res, error, attempt);
      }
      attempt.frob = frob;
    }
    ctx.attempts.write(res, [...ctx.attempts.read(req), attempt]);
    ctx.metrics?.flowsStarted.inc({ mode: ctx.mode });
    flowEvent(req, ctx.logger, 'flow_started', { mode: ctx.mode, permissions }, 'connection flow started');
    if (frob) seeOther(res, `${ctx.basePath}/connect/complete?attempt=${attempt.nonce}`);
    else if (attempt.requestToken) seeOther(res, ctx.oauthAuthorizeLink(permissions, attempt.requestToken));
    else seeOther(res, ctx.authorizeLink(permissions));
  };
}
