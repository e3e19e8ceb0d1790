import path from 'node:path';
import express, { type Express } from 'express';
import type { Store } from 'express-session';
import type { Logger } from 'pino';
import { SANDBOX_PATH, type Config } from './config';
import { configWarnings } from './config/warnings';
import { cookieNameFor } from './security/cookie-names';
import { IpernityClient } from './ipernity';
import { createSimulator, DEFAULT_USER, type Simulator } from './simulator/app';
import { createAttemptCookie } from './flow/attempts';
import { createConnectRouter } from './flow/router';
import { tokenCheckOptions } from './flow/token-check';
import { createCsrf } from './security/csrf';
import { createErrorHandler, notFound } from './web/error-handler';
import { createPermissionGuard } from './flow/guard';
import { createHealthRouter, createMetricsApp } from './web/health-router';
import { createHomeRouter } from './flow/home';
import { createLogger, createRequestLogger } from './web/logging';
import { Metrics } from './web/metrics';
import { createFlowRateLimit } from './security/rate-limit';
import { securityHeaders } from './security/headers';
import { canonicalHost } from './web/canonical-host';
import { limitUrlLength } from './web/url-length';
import { createRenderer } from './web/render';
import { createSessionStack, type SessionStack } from './sessions/stack';
import { SqliteSessionStore } from './sessions/sqlite-store';
import { TokenCipher } from './security/token-cipher';
import type { RequestHandler, ErrorRequestHandler, Request } from 'express';
import { answerConnectionErrors } from './connection/answers';
import { createVisitorClients, type VisitorClient } from './connection/visitor-client';
import { createGatewayRouter, GATEWAY_PATH } from './gateway/router';
import { createForwardAuthRouter } from './flow/forward-auth';
import { MemoryApiCache, RedisApiCache, type ApiCache } from './gateway/cache';
import { createVisitorRateLimit } from './security/rate-limit';
import type { PermissionRequirement } from './flow/guard';

/** Static files (stylesheet, countdown script). */
export const STATIC_DIR = path.join(__dirname, '..', 'public');
const STATIC_PATH = '/static';

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
  /** Guard for a site's own routes: `requirePermission({ doc: 'write' })` or `requirePermission({ methods: ['upload.file'] })`. */
  requirePermission: (required: PermissionRequirement) => RequestHandler;
  /** ipernity for the visitor of this request: calls carry their token, checked against their grant first. */
  ipernity: (req: Request) => VisitorClient;
  /** Loads the visitor's session, for a site's route that reads `req.session` itself (`ipernity(req)` loads it when needed). */
  session: RequestHandler;
  /** Turns the visitor-bound client's errors into answers: the warning page for a page, 401/403 JSON for a script. */
  answerConnectionErrors: ErrorRequestHandler;
  /** Closes the session store and the API connections. */
  close(): Promise<void>;
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
    ...(config.ipernity.mode === 'oauth' ? { oauth: { endpoints: config.ipernity.oauth, signatureMethod: config.ipernity.oauth.signatureMethod } } : {}),
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
      const user = req.session?.connection?.user;
      return user && { realname: user.realname, username: user.username, csrfToken: csrf.token(req, res) };
    },
  });
  for (const warning of configWarnings(config)) logger.warn({ event: warning.event }, warning.message);

  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', config.trustProxy);
  app.set('query parser', 'simple'); // repeated parameters become arrays, no nested objects
  app.set('etag', false); // pages are per visitor and never cached

  const metricsHere = config.metrics.enabled && !config.metrics.ownListener;
  app.use(createHealthRouter({ storeReady: sessions.ping, metrics: metricsHere ? metrics : undefined, metricsToken: config.metrics.token }));
  app.use(createRequestLogger(logger));
  // before the canonical-host redirect and the pages: a proxy's sub-request gets a bare status, whatever host it names
  app.use(createForwardAuthRouter(sessions.peek));
  // the gateway answers JSON from its first layer on, even to an address too long or badly encoded
  app.use(GATEWAY_PATH, function gatewayAnswersJson(_req, res, next) {
    res.locals.json = true;
    next();
  });

  // the flow's 303 to the authorization page is a form's destination: the CSP's form-action names it
  app.use(securityHeaders({ authorizeUrl: config.ipernity.mode === 'oauth' ? config.ipernity.oauth.authorizeUrl : config.ipernity.authorizeUrl, secure: config.secure }));
  app.use(limitUrlLength);
  // flows start on PUBLIC_URL's host, so the cookie set before the flow is the one the callback gets back
  app.use(canonicalHost(config.publicUrl));

  let simulator: Simulator | undefined;
  if (config.sandbox) {
    simulator = createSimulator({
      apps: [
        {
          apiKey: config.ipernity.apiKey,
          apiSecret: config.ipernity.apiSecret,
          name: config.ipernity.appName,
          callbackUrl: config.ipernity.mode === 'web' ? new URL('/connect/callback', config.publicUrl).toString() : undefined,
          // what the authorization page says of the application, as ipernity shows a registered one
          subtitle: `Connects your ipernity account to ${config.publicUrl.host}`,
          description: {
            en: `${config.ipernity.appName} lets you connect your ipernity account to ${config.publicUrl.host}, so that the site can work with your photos and your profile with the permissions you choose. You can disconnect it, or remove it here, at any time.`,
            fr: `${config.ipernity.appName} vous permet de connecter votre compte ipernity à ${config.publicUrl.host}, pour que le site utilise vos photos et votre profil avec les autorisations que vous choisissez. Vous pouvez le déconnecter, ou le retirer ici, à tout moment.`,
            de: `${config.ipernity.appName} verbindet Ihr ipernity-Konto mit ${config.publicUrl.host}, damit die Website mit den von Ihnen gewählten Berechtigungen auf Ihre Fotos und Ihr Profil zugreifen kann. Sie können die Verbindung jederzeit trennen oder die Anwendung hier entfernen.`,
          },
          developer: `The operator of ${config.publicUrl.host} (sandbox)`,
          websiteUrl: config.publicUrl.origin,
        },
      ],
      users: [DEFAULT_USER],
      // its forms come from the site's own origin (behind a TLS proxy the request alone would say http)
      origin: config.publicUrl.origin,
      // its photos' addresses are the site's, whatever address the server calls its API on
      base: new URL(SANDBOX_PATH, config.publicUrl).toString(),
    });
    app.use(SANDBOX_PATH, simulator.router);
  }

  const flowLimit = createFlowRateLimit({
    limitPerMinute: config.rateLimitPerMinute,
    redis: sessions.redis,
    redisKeyPrefix: config.session.redisKeyPrefix,
    permissiveProxy: config.trustProxy === true,
  });

  // one budget per visitor for what uses their connection: gateway calls and the photo page's uploads
  const apiLimit = createVisitorRateLimit({
    limitPerMinute: config.gateway.rateLimitPerMinute,
    redis: sessions.redis,
    redisKeyPrefix: config.session.redisKeyPrefix,
    permissiveProxy: config.trustProxy === true,
    visitorOf: (req) => sessions.sessionIdOf(req),
  });
  const tokenCheck = tokenCheckOptions(client, cipher, config.tokenCheckIntervalMs, metrics, logger);
  const ipernity = createVisitorClients({ client, cipher, tokenCheck, session: sessions.optional, basePath: '', origin: config.publicUrl.origin, timeoutMs: config.ipernity.timeoutMs });
  const connectionErrors = answerConnectionErrors();
  // the flow's routes first: they answer the busiest requests, which then pass no other router's layers
  app.use(
    createConnectRouter({
      client,
      ipernity: { ...config.ipernity, callbackUrl: new URL('/connect/callback', config.publicUrl).toString() },
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
  app.use(
    createHomeRouter({
      session: sessions.optional,
      csrf,
      attempts,
      render,
      tokenCheck,
      logger,
      ipernity,
      // HOME_PAGE=photos: the visitor's latest photos and an upload form, the example of docs/using-the-connection.md
      photos:
        config.homePage === 'photos'
          ? { mediaThroughGateway: config.gateway.methods.includes('doc.getMedias'), uploadMaxBytes: config.gateway.uploadMaxBytes, metrics, rateLimit: apiLimit }
          : undefined,
    }),
  );
  if (config.gateway.methods.length > 0) {
    const cacheTtlMs = config.gateway.cacheSeconds * 1000;
    let cache: ApiCache | undefined;
    if (cacheTtlMs > 0) cache = sessions.redis ? new RedisApiCache(sessions.redis, config.session.redisKeyPrefix, cacheTtlMs) : new MemoryApiCache(cacheTtlMs);
    app.use(
      createGatewayRouter({
        methods: config.gateway.methods,
        ipernity,
        session: sessions.optional,
        sessionIdOf: (req) => sessions.sessionIdOf(req),
        csrf,
        rateLimit: apiLimit,
        cache,
        logger,
        metrics,
        uploadMaxBytes: config.gateway.uploadMaxBytes,
      }),
    );
  }
  // after the pages: a browser asks for these once an hour (maxAge), the pages on every view
  app.use(STATIC_PATH, express.static(STATIC_DIR, { maxAge: '1h', fallthrough: false, index: false }));
  app.use(notFound);
  app.use(connectionErrors);
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
    ipernity,
    session: sessions.optional,
    answerConnectionErrors: connectionErrors,
    async close() {
      await Promise.allSettled([sessions.close(), client.close()]);
    },
  };
}
