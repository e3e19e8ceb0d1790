import express, { type NextFunction, type Request, type RequestHandler, type Response, type Router } from 'express';
import type { Logger } from 'pino';
import type { IpernityClient, OAuthEndpoints, RequestedPermissions } from '../ipernity';
import type { AuthMode } from '../config';
import type { Csrf } from '../security/csrf';
import type { TokenCipher } from '../security/token-cipher';
import type { SessionStack } from '../sessions/stack';
import { methodNotAllowed } from '../web/errors';
import type { Metrics } from '../web/metrics';
import type { Renderer } from '../web/render';
import type { AttemptCookie } from './attempts';
import { callback } from './callback';
import { complete, completePage } from './complete';
import { checkLimit, connectionJson } from './connection-json';
import { flowContext } from './context';
import { disconnect } from './disconnect';
import { startFlow } from './start';
import { warningPage } from './warning-page';

export interface ConnectRouterOptions {
  client: IpernityClient;
  ipernity: {
    apiKey: string;
    apiSecret: string;
    authorizeUrl: string;
    mode: AuthMode;
    /** Asked for when the warning page's link names no permission. */
    permissions: RequestedPermissions;
    /** The application's name, as the pages say it. */
    appName: string;
    /** OAuth mode: the authorization page (`…/apps/oauth/authorize`). */
    oauth?: Pick<OAuthEndpoints, 'authorizeUrl'>;
    /** OAuth mode: this router's `/connect/callback` as an absolute address, sent as `oauth_callback`. */
    callbackUrl?: string;
  };
  cipher: TokenCipher;
  /** Where the browser keeps the attempts it started. */
  attempts: AttemptCookie;
  /** `required` where a flow may create the session, `optional` where it is only read. */
  sessions: Pick<SessionStack, 'required' | 'optional' | 'ping'>;
  csrf: Csrf;
  render: Renderer;
  /** Where the router is mounted, for the links and forms it renders (`''` at the root). */
  basePath: string;
  /** PUBLIC_URL is https: a callback that reaches the server as http means TRUST_PROXY is missing (default false). */
  secure?: boolean;
  tokenCheckIntervalMs: number;
  countdownSeconds: number;
  logger: Logger;
  metrics?: Metrics;
  /** Applied to the routes that start or finish a flow. */
  rateLimit?: RequestHandler;
}

/** Marks the route's errors to be answered as JSON, before any middleware that can fail runs. */
function answersJson(_req: Request, res: Response, next: NextFunction): void {
  res.locals.json = true;
  next();
}

/**
 * The connect flow as an Express router, one step per file: the warning
 * page, the start (303 to ipernity's signed link), the callback, the desktop
 * "Complete authorization" step, disconnection and the connection's JSON
 * (the reverse proxy's `/connect/auth` is `createForwardAuthRouter`).
 */
export function createConnectRouter(options: ConnectRouterOptions): Router {
  const ctx = flowContext(options);
  const { sessions, csrf, rateLimit } = ctx;
  const form = express.urlencoded({ extended: false, limit: '4kb', parameterLimit: 32 });
  const router = express.Router();
  router.get('/connect', sessions.optional, warningPage(ctx));
  router.post('/connect', rateLimit, form, csrf.verify, sessions.optional, startFlow(ctx));
  router.get('/connect/callback', rateLimit, sessions.required, callback(ctx));
  router.get('/connect/complete', completePage(ctx));
  router.post('/connect/complete', rateLimit, form, csrf.verify, sessions.required, complete(ctx));
  router.post('/disconnect', form, csrf.verify, sessions.required, disconnect(ctx));
  router.get('/connection', answersJson, checkLimit(ctx), sessions.optional, connectionJson(ctx));
  for (const [path, allow] of [
    ['/connect', ['GET', 'HEAD', 'POST']],
    ['/connect/callback', ['GET', 'HEAD']],
    ['/connect/complete', ['GET', 'HEAD', 'POST']],
    ['/disconnect', ['POST']],
    ['/connection', ['GET', 'HEAD']],
  ] as const) {
    router.all(path, methodNotAllowed([...allow]));
  }
  return router;
}
