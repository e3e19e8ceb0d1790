import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { buildAuthorizeUrl, buildOAuthAuthorizeUrl, type RequestedPermissions, type ValidatedFrob } from '../ipernity';
import type { AuthMode } from '../config';
import type { ConnectRouterOptions } from './router';
import { tokenCheckOptions, type TokenCheckOptions } from './token-check';

/** What every step of the flow works with: the router's options, and what is derived from them once. */
export interface FlowContext extends ConnectRouterOptions {
  mode: AuthMode;
  secure: boolean;
  /** The flow routes' rate limit (a pass-through when there is none). */
  rateLimit: RequestHandler;
  tokenCheck: TokenCheckOptions;
  /** ipernity's authorization link for these permissions, signed with the API secret (desktop: with the frob). */
  authorizeLink(permissions: RequestedPermissions, frob?: ValidatedFrob): string;
  /** OAuth mode: the authorization address for an attempt's request token. */
  oauthAuthorizeLink(permissions: RequestedPermissions, requestToken: string): string;
  /** OAuth mode: where ipernity sends the browser back (`oauth_callback`). */
  callbackUrl: string;
}

export function flowContext(options: ConnectRouterOptions): FlowContext {
  const { apiKey, apiSecret, authorizeUrl, oauth, callbackUrl } = options.ipernity;
  if (options.ipernity.mode === 'oauth' && (!oauth || !callbackUrl)) throw new Error('OAuth mode needs ipernity.oauth.authorizeUrl and ipernity.callbackUrl (this router\'s /connect/callback, absolute)');
  return {
    ...options,
    mode: options.ipernity.mode,
    secure: options.secure ?? false,
    rateLimit: options.rateLimit ?? ((_req, _res, next) => next()),
    tokenCheck: tokenCheckOptions(options.client, options.cipher, options.tokenCheckIntervalMs, options.metrics, options.logger),
    authorizeLink: (permissions, frob) => buildAuthorizeUrl({ authorizeUrl, apiKey, apiSecret, permissions, frob }),
    oauthAuthorizeLink: (permissions, requestToken) => buildOAuthAuthorizeUrl(oauth?.authorizeUrl ?? '', requestToken, permissions),
    callbackUrl: callbackUrl ?? '',
  };
}

/** A single string from a query or form value; repeated or missing gives undefined. */
export function single(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/** Express 5 hands rejected promises to the error handler; this names the function for stack traces. */
export type AsyncHandler = (req: Request, res: Response, next: NextFunction) => Promise<void>;
