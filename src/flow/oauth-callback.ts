import type { Request, Response } from 'express';
import { Codes } from '../errors';
import { encodeCredential, isOAuthToken, type TokenGrant } from '../ipernity';
import type { PendingAttempt } from '../sessions/session-data';
import { WebError } from '../web/errors';
import { exchange, keep } from './connecting';
import { declined } from './declined';
import { single, type FlowContext } from './context';

/**
 * OAuth mode's callback: ipernity sends the browser back with the request
 * token of the attempt it authorized, so the callback is honoured only in
 * the browser that obtained that token (login CSRF is refused, not narrowed:
 * see docs/security.md). A token this browser did not obtain spends nothing.
 */
export async function connectOAuth(ctx: FlowContext, req: Request, res: Response, live: readonly PendingAttempt[], query: Readonly<Record<string, unknown>>): Promise<void> {
  const spend = (attempt: PendingAttempt): void => ctx.attempts.write(res, live.filter((other) => other !== attempt));
  if (!Object.prototype.hasOwnProperty.call(query, 'oauth_token')) {
    // back without a token: the visitor declined (the simulator names the attempt's token in `denied`, as OAuth peers do)
    const denied = single(query.denied);
    const attempt = live.find((candidate) => candidate.requestToken === denied);
    if (attempt) spend(attempt);
    declined(ctx, req, res);
    return;
  }
  const token = single(query.oauth_token);
  if (token === undefined || !isOAuthToken(token)) throw new WebError(Codes.OAUTH_TOKEN_MISMATCH, 'the callback\'s oauth_token is repeated or malformed');
  const attempt = live.find((candidate) => candidate.requestToken === token);
  if (!attempt || attempt.requestSecret === undefined) throw new WebError(Codes.OAUTH_TOKEN_MISMATCH, 'the callback\'s oauth_token is not a request token this browser obtained');
  const requestSecret = attempt.requestSecret;
  const obtain = async (): Promise<TokenGrant> => {
    // ipernity has no oauth_verifier: the authorized request token, signed with its secret, is exchanged as it is
    const credential = encodeCredential(await ctx.client.accessToken({ token, secret: requestSecret }));
    const grant = await ctx.client.checkToken(credential);
    // every later call is signed with the access token and its secret: that pair is what the session seals
    return { ...grant, token: credential };
  };
  const exchanged = await exchange(ctx, req, res, obtain, attempt, () => spend(attempt));
  if (exchanged) await keep(ctx, req, res, live, attempt, exchanged);
}
