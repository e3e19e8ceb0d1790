import express, { type NextFunction, type Request, type RequestHandler, type Response, type Router } from 'express';
import type { Logger } from 'pino';
import {
  buildAuthorizeUrl,
  grantedItems,
  IpernityApiError,
  isFrob,
  parseFrob,
  parsePermissionQuery,
  samePermissions,
  satisfies,
  toParams,
  union,
  type GrantedPermissions,
  type IpernityClient,
  type TokenGrant,
  type RequestedPermissions,
  type ValidatedFrob,
} from '../ipernity';
import type { AuthMode } from '../config';
import { liveAttempts, type AttemptCookie } from './attempts';
import type { Csrf } from '../security/csrf';
import { methodNotAllowed, storeUnavailable, WebError, WebErrorCodes } from '../web/errors';
import type { Metrics } from '../web/metrics';
import type { Renderer } from '../web/render';
import { safeReturnTo } from './return-to';
import { seeOther } from '../web/see-other';
import type { PendingAttempt } from '../sessions/session-data';
import { markActive, wasStored, type SessionStack } from '../sessions/stack';
import { regenerateSession, saveSession } from '../sessions/regenerate';
import type { TokenCipher } from '../security/token-cipher';
import { refreshConnection, shouldCheckToken, viewOf, type TokenCheckOptions } from './token-check';
import { languageOf } from '../web/i18n';
import { flowEvent } from '../web/logging';
import { randomValue } from '../security/random';

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

/** A frob exchanged: what ipernity granted, and how long it took to answer. */
interface Exchanged {
  grant: TokenGrant;
  upstreamMs: number;
}

/**
 * The attempt a grant answers, among a browser's live ones (oldest first): the newest that asked for exactly what was
 * granted; else the newest the grant covers; else the newest.
 */
export function attemptFor(live: readonly PendingAttempt[], granted: GrantedPermissions): PendingAttempt {
  const newestFirst = [...live].reverse();
  return (
    newestFirst.find((attempt) => samePermissions(granted, attempt.permissions)) ??
    newestFirst.find((attempt) => satisfies(granted, attempt.permissions)) ??
    (newestFirst[0] as PendingAttempt)
  );
}

/** A `?check=1` answered by a check younger than this reuses it. */
export const CHECK_REUSE_MS = 5000;

/** Fetch Metadata of a page the visitor reached from this site (`same-origin`) or by typing its address (`none`). */
const OWN_NAVIGATION = new Set(['same-origin', 'none']);

/** The countdown may run: the browser says the visitor came from this site or typed the address (no header, no countdown). */
function countdownAllowed(req: Request): boolean {
  return OWN_NAVIGATION.has(req.headers['sec-fetch-site'] as string);
}

/** A single string from a query or form value; repeated or missing gives undefined. */
function single(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/** Marks the route's errors to be answered as JSON, before any middleware that can fail runs. */
function answersJson(_req: Request, res: Response, next: NextFunction): void {
  res.locals.json = true;
  next();
}

/** Express 5 hands rejected promises to the error handler; this names the function for stack traces. */
type AsyncHandler = (req: Request, res: Response, next: NextFunction) => Promise<void>;

/**
 * The connect flow as an Express router: the warning page, the signed
 * redirect, the callback, the desktop "Complete authorization" step,
 * disconnection and the connection's JSON view.
 */
export function createConnectRouter(options: ConnectRouterOptions): Router {
  const { client, cipher, attempts: attemptCookie, csrf, render, sessions, basePath, metrics, logger } = options;
  const secure = options.secure ?? false;
  const mode = options.ipernity.mode;
  const router = express.Router();
  const form = express.urlencoded({ extended: false, limit: '4kb', parameterLimit: 32 });
  const rateLimit: RequestHandler = options.rateLimit ?? ((_req, _res, next) => next());
  const tokenCheck = tokenCheckOptions(client, cipher, options.tokenCheckIntervalMs, metrics, logger);

  const authorizeLink = (permissions: RequestedPermissions, frob?: ValidatedFrob): string =>
    buildAuthorizeUrl({ authorizeUrl: options.ipernity.authorizeUrl, apiKey: options.ipernity.apiKey, apiSecret: options.ipernity.apiSecret, permissions, frob });

  function failed(req: Request, res: Response, error: unknown, attempt: PendingAttempt): never {
    const code = (error as { code?: string }).code ?? 'INTERNAL';
    const apiCode = error instanceof IpernityApiError ? error.apiCode : undefined;
    metrics?.flowsFailed.inc({ reason: apiCode === undefined ? code : `${code}_${apiCode}` });
    flowEvent(req, logger, 'failed', { code, apiCode }, 'the connection could not be completed');
    // the error page offers "Try again" with the same request
    res.locals.retry = { params: Object.entries(toParams(attempt.permissions)), returnTo: attempt.returnTo };
    throw error;
  }

  /**
   * Exchanges the frob; answers the grant, or undefined when the answer is already sent. `spend` runs before any
   * error is answered (the attempt this exchange used is then gone from the browser).
   */
  async function exchange(req: Request, res: Response, frob: ValidatedFrob, attempt: PendingAttempt, spend: () => void): Promise<Exchanged | undefined> {
    const asked = performance.now();
    try {
      const grant = await client.getToken(frob);
      // how long ipernity took, on the request's line: what the callback's time is made of
      return { grant, upstreamMs: Math.round((performance.now() - asked) * 100) / 100 };
    } catch (error) {
      spend();
      if (error instanceof IpernityApiError && error.apiCode === 2 && req.session.connection) {
        // a reload of the callback after success: the frob is spent, the visitor is connected
        seeOther(res, safeReturnTo(req.session.connection.returnTo));
        return undefined;
      }
      if (error instanceof IpernityApiError && error.apiCode === 2 && mode === 'desktop' && req.method === 'POST') {
        // desktop: the visitor pressed "Complete authorization" before authorizing on ipernity
        renderComplete(req, res, 409, attempt, true);
        return undefined;
      }
      failed(req, res, error, attempt);
    }
  }

  /**
   * Keeps the connection, under a new session id when the browser's session was stored (session fixation: every
   * id a browser had before is replaced; a session made for this request already has one no browser was given).
   * `attempts` are the browser's: all but this one stay in its cookie (the cookie keeps only live ones).
   */
  async function keep(req: Request, res: Response, attempts: readonly PendingAttempt[], attempt: PendingAttempt, { grant, upstreamMs }: Exchanged): Promise<void> {
    const now = Date.now();
    if (wasStored(req)) regenerateSession(req);
    req.session.connection = {
      sealedToken: cipher.encrypt(grant.token),
      permissions: grant.permissions,
      user: grant.user,
      connectedAt: now,
      checkedAt: now,
      returnTo: attempt.returnTo,
    };
    markActive(req);
    await saveSession(req);
    attemptCookie.write(res, attempts.filter((other) => other.nonce !== attempt.nonce));
    metrics?.flowsCompleted.inc();
    flowEvent(req, logger, 'connected', { userId: grant.user.userId, permissions: grant.permissions, mode, upstreamMs }, 'ipernity account connected');
    if (mode === 'desktop') {
      // the visitor can see whose account this browser now uses: a frob link sent by someone else connects theirs
      renderConnected(req, res, attempt, grant);
      return;
    }
    seeOther(res, safeReturnTo(attempt.returnTo));
  }

  /** Desktop mode: exchanges the attempt's frob and keeps the connection. */
  async function connect(req: Request, res: Response, attempts: readonly PendingAttempt[], attempt: PendingAttempt, frob: ValidatedFrob): Promise<void> {
    const exchanged = await exchange(req, res, frob, attempt, () => undefined);
    if (exchanged) await keep(req, res, attempts, attempt, exchanged);
  }

  /** Desktop mode's last page: whose account was connected, with what, and the way out if it is not the visitor's. */
  function renderConnected(req: Request, res: Response, attempt: PendingAttempt, grant: TokenGrant): void {
    const { t } = languageOf(req);
    render(req, res, 200, 'connected', {
      title: t('connected.title'),
      user: grant.user,
      grantedItems: grantedItems(grant.permissions),
      returnTo: safeReturnTo(attempt.returnTo),
      csrfToken: csrf.token(req, res),
    });
  }

  function renderComplete(req: Request, res: Response, status: number, attempt: PendingAttempt, notYet = false): void {
    const frob = attempt.frob;
    render(req, res, status, 'complete', {
      title: languageOf(req).t('complete.title'),
      authorizeUrl: frob && isFrob(frob) ? authorizeLink(attempt.permissions, frob) : '',
      attempt: attempt.nonce,
      csrfToken: csrf.token(req, res),
      notYet,
    });
  }

  /** The attempt a desktop form or page names, or the error that says why there is none. */
  function desktopAttempt(attempts: readonly PendingAttempt[], nonce: string | undefined): PendingAttempt {
    const live = liveAttempts(attempts).find((attempt) => attempt.nonce === nonce && attempt.frob);
    if (live) return live;
    if (attempts.some((attempt) => attempt.nonce === nonce)) {
      throw new WebError(WebErrorCodes.ATTEMPT_EXPIRED, 400, 'the connection attempt has expired');
    }
    throw new WebError(WebErrorCodes.ATTEMPT_MISSING, 400, 'no connection attempt is pending in this browser');
  }

  // The warning page: where the visitor is going, what is asked, Continue or Cancel.
  router.get('/connect', sessions.optional, function warningPage(req, res) {
    const query = req.query as Record<string, unknown>;
    const requested = parsePermissionQuery(query) ?? options.ipernity.permissions;
    const granted = req.session?.connection?.permissions;
    render(req, res, 200, 'connect', {
      title: languageOf(req).t('connect.title'),
      requestedItems: grantedItems(requested),
      grantedItems: granted ? grantedItems(granted) : undefined,
      nothingNew: granted ? satisfies(granted, requested) : false,
      requestedParams: Object.entries(toParams(requested)),
      returnTo: safeReturnTo(single(query.return_to)),
      // The countdown submits the form by itself, so it runs only for a visitor who came from this site or typed the
      // address: a page another site opens (a window it scripts) would otherwise start a flow with one click anywhere.
      countdown: countdownAllowed(req) ? options.countdownSeconds : 0,
      csrfToken: csrf.token(req, res),
    });
  });

  // Starts a flow: records the attempt, then 303 to ipernity's signed link (desktop: to "Complete authorization").
  router.post('/connect', rateLimit, form, csrf.verify, sessions.optional, async function startFlow(req, res) {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const requested = parsePermissionQuery(body) ?? {};
    const returnTo = safeReturnTo(single(body.return_to));
    const connection = req.session?.connection;
    // an upgrade asks for what is granted plus what is new, so no grant is lost
    const permissions = connection ? union(connection.permissions, requested) : requested;
    const attempt: PendingAttempt = { nonce: randomValue(), permissions, returnTo, startedAt: Date.now() };
    let frob: ValidatedFrob | undefined;
    if (mode === 'desktop') {
      try {
        frob = await client.getFrob();
      } catch (error) {
        failed(req, res, error, attempt);
      }
      attempt.frob = frob;
    }
    attemptCookie.write(res, [...attemptCookie.read(req), attempt]);
    metrics?.flowsStarted.inc({ mode });
    flowEvent(req, logger, 'flow_started', { mode, permissions }, 'connection flow started');
    if (frob) seeOther(res, `${basePath}/connect/complete?attempt=${attempt.nonce}`);
    else seeOther(res, authorizeLink(permissions));
  } satisfies AsyncHandler);

  // ipernity sends the browser back here with a frob; only a browser with a pending attempt is connected.
  router.get('/connect/callback', rateLimit, sessions.required, async function callback(req, res) {
    if (secure && !req.secure) {
      // the session cookie is Secure: express-session would not send it on a request it thinks is http,
      // and the visitor would stay disconnected with a connection stored for nobody
      throw new WebError(WebErrorCodes.TRUST_PROXY_NEEDED, 500, 'PUBLIC_URL is https but the callback arrived over http: set TRUST_PROXY to the proxy in front of this server');
    }
    const query = req.query as Record<string, unknown>;
    const attempts = attemptCookie.read(req);
    const live = liveAttempts(attempts);
    if (live.length === 0) {
      const connection = req.session.connection;
      if (connection) {
        // a reload after success, or a stray link: never exchanged without an attempt
        seeOther(res, safeReturnTo(connection.returnTo));
        return;
      }
      if (attempts.length) throw new WebError(WebErrorCodes.ATTEMPT_EXPIRED, 400, 'the connection attempt has expired');
      throw new WebError(WebErrorCodes.ATTEMPT_MISSING, 400, 'no connection attempt is pending in this browser');
    }
    // nothing is spent (the attempt, the frob) unless the connection can then be kept
    if (!(await sessions.ping())) throw storeUnavailable(new Error('the session store did not answer before the callback'));
    if (mode === 'desktop') {
      const frob = parseFrob(query);
      const attempt = live.find((candidate) => candidate.frob === frob);
      if (!attempt) throw new WebError(WebErrorCodes.FROB_MISMATCH, 400, 'the frob is not the one this browser asked for');
      await connect(req, res, live, attempt, frob);
      return;
    }
    // Web mode: the callback carries nothing that names its attempt, so the first callback to reach an attempt spends
    // it, whatever it carries: a frob from someone else's authorization gets one try, not ten minutes of them.
    const newest = live[live.length - 1] as PendingAttempt;
    const spend = (attempt: PendingAttempt): void => attemptCookie.write(res, live.filter((other) => other !== attempt));
    if (!Object.prototype.hasOwnProperty.call(query, 'frob')) {
      // back from ipernity without a frob: the visitor declined
      spend(newest);
      metrics?.flowsFailed.inc({ reason: 'DENIED' });
      flowEvent(req, logger, 'denied', {}, 'the visitor declined on ipernity');
      const { t } = languageOf(req);
      render(req, res, 200, 'message', { title: t('denied.title'), paragraphs: [t('denied.message')] });
      return;
    }
    let frob: ValidatedFrob;
    try {
      frob = parseFrob(query);
    } catch (error) {
      spend(newest);
      throw error;
    }
    const exchanged = await exchange(req, res, frob, newest, () => spend(newest));
    // each tab's attempt returns where it started: the one that asked for exactly what was granted, newest first
    if (exchanged) await keep(req, res, live, attemptFor(live, exchanged.grant.permissions), exchanged);
  } satisfies AsyncHandler);

  // Desktop mode: the page that links to ipernity and offers "Complete authorization".
  router.get('/connect/complete', function completePage(req, res) {
    renderComplete(req, res, 200, desktopAttempt(attemptCookie.read(req), single((req.query as Record<string, unknown>).attempt)));
  });

  // Desktop mode: exchanges the attempt's frob once the visitor says they authorized.
  router.post('/connect/complete', rateLimit, form, csrf.verify, sessions.required, async function complete(req, res) {
    const attempts = attemptCookie.read(req);
    const attempt = desktopAttempt(attempts, single((req.body as Record<string, unknown> | undefined)?.attempt));
    await connect(req, res, attempts, attempt, attempt.frob as ValidatedFrob);
  } satisfies AsyncHandler);

  // Forgets the connection in this browser and says how to revoke it on ipernity.
  router.post('/disconnect', form, csrf.verify, sessions.required, async function disconnect(req, res) {
    const connection = req.session.connection;
    if (connection) {
      delete req.session.connection;
      await saveSession(req);
    }
    attemptCookie.clear(req, res);
    if (connection) flowEvent(req, logger, 'disconnected', { userId: connection.user.userId }, 'ipernity account disconnected');
    const { t } = languageOf(req);
    const app = options.ipernity.appName;
    render(req, res, 200, 'message', {
      title: t('disconnected.title'),
      paragraphs: [t('disconnected.message', { app }), t('disconnected.revoke', { app })],
    });
  } satisfies AsyncHandler);

  /** `?check=1`: ask ipernity now, whatever the check interval says. */
  const asksForCheck = (req: Request): boolean => (req.query as Record<string, unknown>).check === '1';

  /** Each check is a call under the site's key, so `?check=1` is rate-limited. */
  function checkLimit(req: Request, res: Response, next: NextFunction): void {
    if (asksForCheck(req)) rateLimit(req, res, next);
    else next();
  }

  // The connection as JSON for the site's own front end; `?check=1` asks ipernity now (or answers the check of a
  // few seconds ago: a page that asks on every view does not make a call each time).
  router.get('/connection', answersJson, checkLimit, sessions.optional, async function connectionJson(req, res) {
    res.set('Cache-Control', 'no-store');
    let connection = req.session?.connection;
    if (connection) {
      const force = asksForCheck(req) && shouldCheckToken(connection, CHECK_REUSE_MS);
      connection = await refreshConnection(req, tokenCheck, force, logger);
      if (!connection) {
        delete req.session.notice;
        res.json({ connected: false, reason: 'revoked' });
        return;
      }
    }
    res.json(connection ? { connected: true, ...viewOf(connection) } : { connected: false });
  } satisfies AsyncHandler);

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

/** The token-check settings the home page, the guard and the router share. */
export function tokenCheckOptions(client: IpernityClient, cipher: TokenCipher, intervalMs: number, metrics: Metrics | undefined, logger: Logger): TokenCheckOptions {
  return {
    client,
    cipher,
    intervalMs,
    onRevoked(req, reason) {
      metrics?.tokensRevoked.inc();
      flowEvent(req, logger, 'token_revoked', { reason }, 'the stored ipernity connection is no longer valid');
    },
  };
}
