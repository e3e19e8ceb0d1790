import express, { type Request, type Response, type Router } from 'express';
import { isSignatureMethod, OAuthSigner, parseOAuthHeader } from '../ipernity/oauth';
import { sameSecret } from '../security/same-secret';
import { ApiFailure, flatten, sendFailure } from './common';
import { OAUTH_TIMESTAMP_WINDOW_MS, type SimulatedApp, type SimulatorState } from './state';

/**
 * ipernity's OAuth 1.0a as the simulator plays it: the request and access
 * token endpoints (`/apps/oauth/request`, `/apps/oauth/access`; the
 * authorization page is authorize.ts's) and the check of an OAuth-signed
 * request, in this order: the OAuth parameters present and single (131), the
 * version (130), the consumer (101), the signature method (135, PLAINTEXT
 * over https only), the timestamp (134 unreadable, 132 more than five
 * minutes from the simulator's clock), the token (107), the signature (105),
 * then the nonce, once per consumer and token within the window (133).
 * Endpoint refusals are ipernity's JSON error, with HTTP 401.
 */

/** The parameters every OAuth-signed request carries. */
const REQUIRED = ['oauth_consumer_key', 'oauth_signature_method', 'oauth_signature', 'oauth_timestamp', 'oauth_nonce'] as const;

/** What a request's OAuth signature proved. */
export interface OAuthIdentity {
  app: SimulatedApp;
  /** The token the request was signed with, when it names one (its record is looked up by the caller's kind). */
  token?: string;
}

/** True when a request is OAuth-signed (its `Authorization` header, or OAuth parameters in its form). */
export function isOAuthRequest(req: Request, params: Readonly<Record<string, string>>): boolean {
  return /^\s*OAuth\s/i.test(req.headers.authorization ?? '') || params.oauth_consumer_key !== undefined;
}

/** The request's own address without its query: what the client signed. */
function signedUrl(req: Request): string {
  return `${req.protocol}://${req.get('host') ?? 'localhost'}${req.originalUrl.split('?')[0] ?? ''}`;
}

/**
 * Checks an OAuth-signed request: `params` are its form and query parameters
 * (an upload's fields without the file), OAuth's among them or in the
 * header. `secretOf` gives the named token's secret (undefined: 107).
 * Answers who signed, the parameters without OAuth's, and OAuth's (from
 * the header and the form together).
 */
export function verifyOAuth(
  state: SimulatorState,
  req: Request,
  params: Readonly<Record<string, string>>,
  repeated: ReadonlySet<string>,
  secretOf: (app: SimulatedApp, token: string) => string | undefined,
): { identity: OAuthIdentity; params: Record<string, string>; oauth: Record<string, string> } {
  const header = parseOAuthHeader(req.headers.authorization);
  const oauth: Record<string, string> = {};
  const rest: Record<string, string> = {};
  for (const [name, value] of Object.entries(params)) (name.startsWith('oauth_') ? oauth : rest)[name] = value;
  const twice = [...(header?.repeated ?? []), ...[...repeated].filter((name) => name.startsWith('oauth_'))];
  for (const [name, value] of Object.entries(header?.params ?? {})) {
    if (Object.prototype.hasOwnProperty.call(oauth, name)) twice.push(name);
    oauth[name] = value;
  }
  const missing = REQUIRED.filter((name) => !oauth[name]);
  if (missing.length || twice.length) throw new ApiFailure(131, `OAuth parameters missing or repeated: ${[...missing, ...twice].join(', ')}`);
  if (oauth.oauth_version !== undefined && oauth.oauth_version !== '1.0') throw new ApiFailure(130, 'Unsupported OAuth version: 1.0 expected');
  const app = state.apps.get(oauth.oauth_consumer_key as string);
  if (!app) throw new ApiFailure(101);
  const method = oauth.oauth_signature_method as string;
  if (!isSignatureMethod(method)) throw new ApiFailure(135, `Unsupported signature method ${method.slice(0, 20)}: HMAC-SHA1, MD5 or PLAINTEXT`);
  if (method === 'PLAINTEXT' && !req.secure) throw new ApiFailure(135, 'PLAINTEXT is accepted over https only');
  const timestamp = oauth.oauth_timestamp as string;
  if (!/^[0-9]{1,12}$/.test(timestamp)) throw new ApiFailure(134, 'Invalid timestamp: seconds since 1970 expected');
  const timestampMs = Number(timestamp) * 1000;
  if (Math.abs(Date.now() - timestampMs) > OAUTH_TIMESTAMP_WINDOW_MS) throw new ApiFailure(132, 'Timestamp too far from the server\'s clock');
  const token = oauth.oauth_token;
  const tokenSecret = token === undefined ? undefined : secretOf(app, token);
  if (token !== undefined && tokenSecret === undefined) throw new ApiFailure(107);
  const signer = new OAuthSigner({ consumerKey: app.apiKey, consumerSecret: app.apiSecret, signatureMethod: method });
  const expected = signer.expected({ method: req.method === 'GET' ? 'GET' : 'POST', url: signedUrl(req), params: rest }, oauth, tokenSecret);
  if (!sameSecret(oauth.oauth_signature as string, expected)) throw new ApiFailure(105);
  if (!state.spendNonce(app.apiKey, token, oauth.oauth_nonce as string, timestampMs)) throw new ApiFailure(133, 'Nonce already used');
  return { identity: { app, ...(token === undefined ? {} : { token }) }, params: rest, oauth };
}

/** An OAuth access token's record, for `verifyOAuth` on API calls: frob tokens are not honoured here. */
export function accessTokenSecret(state: SimulatorState): (app: SimulatedApp, token: string) => string | undefined {
  return (app, token) => {
    const record = state.token(app.apiKey, token);
    return record?.secret !== undefined && !record.revoked ? record.secret : undefined;
  };
}

/** The token endpoints: `/apps/oauth/request` and `/apps/oauth/access`, form-encoded answers as OAuth has them. */
export function oauthRoutes(router: Router, state: SimulatorState): void {
  const form = express.urlencoded({ extended: false, limit: '8kb' });

  /** Reads the request's parameters and checks its signature; answers undefined (and the refusal) when it fails. */
  function checked(req: Request, res: Response, secretOf: (app: SimulatedApp, token: string) => string | undefined): ReturnType<typeof verifyOAuth> | undefined {
    const params: Record<string, string> = {};
    const repeated = new Set<string>();
    flatten(req.query as Record<string, unknown>, params, repeated);
    flatten((req.body ?? {}) as Record<string, unknown>, params, repeated);
    try {
      return verifyOAuth(state, req, params, repeated, secretOf);
    } catch (error) {
      if (!(error instanceof ApiFailure)) throw error;
      res.status(401);
      sendFailure(res, error);
      return undefined;
    }
  }

  const answer = (res: Response, fields: Record<string, string>): void => {
    res.status(200).type('application/x-www-form-urlencoded').set('Cache-Control', 'no-store').send(new URLSearchParams(fields).toString());
  };

  router.all('/apps/oauth/request', form, function requestToken(req, res) {
    // a request token is asked for without a token of its own
    const verified = checked(req, res, () => undefined);
    if (!verified) return;
    const callback = verified.oauth.oauth_callback;
    if (callback === undefined || !/^https?:\/\//.test(callback)) {
      res.status(401);
      sendFailure(res, new ApiFailure(131, 'oauth_callback missing: an absolute http(s) address is expected (ipernity has no out-of-band flow)'));
      return;
    }
    const created = state.createRequestToken(verified.identity.app.apiKey, callback);
    answer(res, { oauth_token: created.token, oauth_token_secret: created.secret, oauth_callback_confirmed: 'true' });
  });

  router.all('/apps/oauth/access', form, function accessToken(req, res) {
    // signed with the request token and its secret; no oauth_verifier (ipernity supports none)
    const verified = checked(req, res, (app, token) => {
      const record = state.liveRequestToken(token);
      return record && record.apiKey === app.apiKey ? record.secret : undefined;
    });
    if (!verified) return;
    const exchanged = verified.identity.token === undefined ? undefined : state.exchangeRequestToken(verified.identity.app.apiKey, verified.identity.token);
    if (!exchanged) {
      res.status(401);
      sendFailure(res, new ApiFailure(107, 'Invalid token: the request token is unknown, used, expired or not authorized yet'));
      return;
    }
    answer(res, { oauth_token: exchanged.token, oauth_token_secret: exchanged.secret });
  });
}
