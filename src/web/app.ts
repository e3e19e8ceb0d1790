import path from 'node:path';
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import helmet from 'helmet';
import { rateLimit } from 'express-rate-limit';
import type { Store } from 'express-session';
import type { Logger } from 'pino';
import { cookieNameFor, SANDBOX_PATH, type Config } from '../config';
import { IpernityClient } from '../ipernity';
import { createSimulator, DEFAULT_USER, type Simulator } from '../simulator/app';
import { createAttemptCookie } from './attempts';
import { createConnectRouter, tokenCheckOptions } from './connect-router';
import { createCsrf } from './csrf';
import { createErrorHandler, notFound } from './error-handler';
import { WebError, WebErrorCodes } from './errors';
import { createPermissionGuard } from './guard';
import { createHealthRouter, createMetricsApp } from './health-router';
import { createHomeRouter } from './home-router';
import { createLogger, createRequestLogger } from './logging';
import { Metrics } from './metrics';
import type { ReconnectingRedisRateLimitStore } from './rate-limit-store';
import { createRenderer } from './render';
import { createSessionStack, sessionData, type SessionStack } from './sessions';
import { SqliteSessionStore } from './sqlite-store';
import { TokenCipher } from './token-cipher';
import type { RequestedPermissions } from '../ipernity';
import type { RequestHandler } from 'express';

/** Static files (stylesheet, countdown script). */
export const STATIC_DIR = path.join(__dirname, '..', '..', 'public');
const STATIC_PATH = '/static';
/** Longest request target accepted: the flow's own links are far shorter. */
const MAX_URL_LENGTH = 4096;

export interface AppDeps {
  logger?: Logger;
  /** A session store to use instead of the configured one (tests). */
  sessionStore?: Store;
}

/** A built application and the parts a server or a test needs to reach. */
export interface AppHandle {
  app: Express;
  config: Config;
  logger: Logger;
  sessions: SessionStack;
  client: IpernityClient;
  metrics: Metrics;
  /**
   * Serves only `/metrics`, for a listener of its own (`server.ts` listens on
   * `config.metrics.host:port`): set when `config.metrics.ownListener`, and
   * then `app` has no `/metrics`.
   */
  metricsApp?: Express;
  /** The built-in simulator, in sandbox mode. */
  simulator?: Simulator;
  /** Guard for a site's own routes: `requirePermission({ doc: 'write' })`. */
  requirePermission: (required: RequestedPermissions) => RequestHandler;
  /** Closes the session store and the API connections. */
  close(): Promise<void>;
}

/**
 * Warns at start-up about proxy settings that let the server misread requests: with `TRUST_PROXY=true` any client
 * chooses its address (and so its rate limit) with `X-Forwarded-For`; with an https PUBLIC_URL and no TRUST_PROXY,
 * requests from the TLS proxy look like http and the Secure session cookie is never sent.
 */
function warnAboutProxy(config: Config, logger: Logger): void {
  if (config.trustProxy === true) {
    logger.warn({ event: 'trust_proxy_permissive' }, 'TRUST_PROXY=true trusts every X-Forwarded-For hop, so clients choose their own address; set the number of proxies (1) or their subnet instead');
  } else if (config.secure && config.trustProxy === false) {
    logger.warn({ event: 'trust_proxy_missing' }, 'PUBLIC_URL is https but TRUST_PROXY is not set: behind a TLS proxy no visitor can connect; set TRUST_PROXY to the number of proxies (1) or their subnet');
  }
}

/** Builds the application from a configuration; never listens (see `server.ts`). */
export function createApp(config: Config, deps: AppDeps = {}): AppHandle {
  const logger = deps.logger ?? createLogger(config.logLevel);
  const sessions = createSessionStack(config, logger, { store: deps.sessionStore });
  // counted off the event loop (the checkpoint thread), at most every 5 s: scrapes answer the last count
  const sqlite = !deps.sessionStore && sessions.store instanceof SqliteSessionStore ? sessions.store : undefined;
  const metrics = new Metrics(sqlite ? () => sqlite.countActive() : undefined);
  const client = new IpernityClient({
    apiUrl: config.ipernity.apiUrl,
    apiKey: config.ipernity.apiKey,
    apiSecret: config.ipernity.apiSecret,
    timeoutMs: config.ipernity.timeoutMs,
    onCall: metrics.observeCall,
  });
  const cipher = new TokenCipher(config.tokenKeys);
  const csrf = createCsrf({
    secrets: config.sessionSecrets,
    cookieName: cookieNameFor(config, 'csrf'),
    secure: config.secure,
    origin: config.publicUrl.origin,
    // the session the browser will present next: the one this request stored, else the one its cookie names
    sessionIdOf: (req) => (req.session?.createdAt !== undefined ? req.sessionID : sessions.sessionIdOf(req)),
  });
  const attempts = createAttemptCookie({
    cipher,
    cookieName: cookieNameFor(config, 'attempts'),
    secure: config.secure,
  });
  const render = createRenderer({
    appName: config.ipernity.appName,
    sandbox: config.sandbox,
    basePath: '',
    staticPath: STATIC_PATH,
    viewer(req, res) {
      const user = sessionData(req)?.connection?.user;
      return user && { realname: user.realname, username: user.username, csrfToken: csrf.token(req, res) };
    },
  });
  warnAboutProxy(config, logger);

  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', config.trustProxy);
  app.set('query parser', 'simple'); // repeated parameters become arrays, no nested objects
  app.set('etag', false); // pages are per visitor and never cached

  const metricsHere = config.metrics.enabled && !config.metrics.ownListener;
  app.use(createHealthRouter({ storeReady: sessions.ping, metrics: metricsHere ? metrics : undefined, metricsToken: config.metrics.token }));
  app.use(createRequestLogger(logger));

  const authorizeOrigin = new URL(config.ipernity.authorizeUrl).origin;
  app.use(
    helmet({
      contentSecurityPolicy: {
        useDefaults: false,
        directives: {
          defaultSrc: ["'self'"],
          scriptSrc: ["'self'"],
          styleSrc: ["'self'"],
          imgSrc: ["'self'", 'data:'],
          objectSrc: ["'none'"],
          baseUri: ["'none'"],
          frameAncestors: ["'none'"],
          // the form to /connect is answered with a redirect to ipernity: it must be allowed as a form target
          formAction: ["'self'", authorizeOrigin],
          ...(config.secure ? { upgradeInsecureRequests: [] } : {}),
        },
      },
      referrerPolicy: { policy: 'no-referrer' }, // the callback's URL holds the frob
      strictTransportSecurity: config.secure ? { maxAge: 31_536_000 } : false,
      // headers only Internet Explorer 8, Flash and the retired XSS auditor read: each costs every response a little
      xDownloadOptions: false,
      xPermittedCrossDomainPolicies: false,
      xXssProtection: false,
    }),
  );

  app.use(function limitUrlLength(req: Request, _res: Response, next: NextFunction) {
    next(req.url.length > MAX_URL_LENGTH ? new WebError(WebErrorCodes.URI_TOO_LONG, 414, 'the address is too long') : undefined);
  });

  // Flows start on PUBLIC_URL's host, so the cookie set before the flow is the one the callback gets back.
  app.use(function canonicalHost(req: Request, res: Response, next: NextFunction) {
    if ((req.method === 'GET' || req.method === 'HEAD') && req.hostname !== config.publicUrl.hostname) {
      const target = req.originalUrl.startsWith('/') && !req.originalUrl.startsWith('//') ? req.originalUrl : '/';
      res.redirect(308, config.publicUrl.origin + target);
      return;
    }
    next();
  });

  let simulator: Simulator | undefined;
  if (config.sandbox) {
    simulator = createSimulator({
      apps: [
        {
          apiKey: config.ipernity.apiKey,
          apiSecret: config.ipernity.apiSecret,
          name: config.ipernity.appName,
          callbackUrl: config.ipernity.mode === 'web' ? new URL('/connect/callback', config.publicUrl).toString() : undefined,
        },
      ],
      users: [DEFAULT_USER],
      // its forms come from the site's own origin (behind a TLS proxy the request alone would say http)
      origin: config.publicUrl.origin,
    });
    app.use(SANDBOX_PATH, simulator.router);
  }

  let rateLimitStore: ReconnectingRedisRateLimitStore | undefined;
  const redis = sessions.redis;
  if (redis && config.rateLimitPerMinute > 0) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded only with Redis, like the session store
    const { ReconnectingRedisRateLimitStore: Store } = require('./rate-limit-store') as typeof import('./rate-limit-store');
    rateLimitStore = new Store({ prefix: `${config.session.redisKeyPrefix}rl:`, sendCommand: (...args: string[]) => redis.sendCommand(args) });
    redis.on('ready', () => rateLimitStore?.loadScripts());
  }
  const flowLimit = config.rateLimitPerMinute > 0
    ? rateLimit({
        windowMs: 60_000,
        limit: config.rateLimitPerMinute,
        standardHeaders: 'draft-8',
        legacyHeaders: false,
        passOnStoreError: true, // a Redis outage must not also lock visitors out; sessions answer 503 anyway
        store: rateLimitStore,
        // TRUST_PROXY=true is warned about once at start-up (see warnAboutProxy), not with a stack trace per process
        validate: { trustProxy: config.trustProxy !== true },
        handler(_req, _res, next) {
          next(new WebError(WebErrorCodes.RATE_LIMITED, 429, 'too many connection attempts'));
        },
      })
    : undefined;

  const tokenCheck = tokenCheckOptions(client, cipher, config.tokenCheckIntervalMs, metrics, logger);
  // the flow's routes first: they answer the busiest requests, which then pass no other router's layers
  app.use(
    createConnectRouter({
      client,
      ipernity: config.ipernity,
      cipher,
      attempts,
      sessions,
      csrf,
      render,
      basePath: '',
      secure: config.secure,
      tokenCheckIntervalMs: config.tokenCheckIntervalMs,
      countdownSeconds: config.countdownSeconds,
      logger,
      metrics,
      rateLimit: flowLimit,
    }),
  );
  app.use(createHomeRouter({ session: sessions.optional, csrf, attempts, render, tokenCheck, logger }));
  // after the pages: a browser asks for these once an hour (maxAge), the pages on every view
  app.use(STATIC_PATH, express.static(STATIC_DIR, { maxAge: '1h', fallthrough: false, index: false }));
  app.use(notFound);
  app.use(createErrorHandler({ render, csrf, logger, appName: config.ipernity.appName }));

  return {
    app,
    config,
    logger,
    sessions,
    client,
    metrics,
    metricsApp: config.metrics.ownListener ? createMetricsApp(metrics) : undefined,
    simulator,
    requirePermission: createPermissionGuard({ session: sessions.optional, basePath: '' }),
    async close() {
      await Promise.allSettled([sessions.close(), client.close()]);
    },
  };
}
