import express, { type Express, type NextFunction, type Request, type RequestHandler, type Response, type Router } from 'express';
import { sameSecret } from '../security/same-secret';
import type { Metrics } from './metrics';

export interface HealthRouterOptions {
  /** True when the session store answers. */
  storeReady: () => Promise<boolean>;
  /** Serves `/metrics` here, on the main port; left out when they have a listener of their own (`createMetricsApp`) or are off. */
  metrics?: Metrics;
  /** When set, `/metrics` wants `Authorization: Bearer <token>`. */
  metricsToken?: string;
}

/**
 * What every answer of these routes carries. They are mounted before helmet
 * (which sets nosniff on the pages), so they set it themselves: a browser
 * must never read a JSON or text answer as anything else.
 */
function plainAnswer(res: Response): Response {
  return res.set({ 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' });
}

/** `GET /metrics`: the registry in Prometheus's text format, behind `token` when there is one. */
function serveMetrics(metrics: Metrics, token?: string): RequestHandler {
  return async function metricsEndpoint(req: Request, res: Response) {
    plainAnswer(res);
    if (token) {
      const header = req.headers.authorization ?? '';
      if (!header.startsWith('Bearer ') || !sameSecret(header.slice(7), token)) {
        res.status(401).set('WWW-Authenticate', 'Bearer').type('text').send('metrics need Authorization: Bearer <METRICS_TOKEN>\n');
        return;
      }
    }
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  };
}

/** `/healthz` (the process answers), `/readyz` (the store answers), `/metrics` (Prometheus). No sessions here. */
export function createHealthRouter(options: HealthRouterOptions): Router {
  const router = express.Router();

  router.get('/healthz', function healthz(_req, res) {
    plainAnswer(res).json({ status: 'ok' });
  });

  router.get('/readyz', async function readyz(_req, res) {
    const store = await options.storeReady();
    plainAnswer(res).status(store ? 200 : 503).json({ status: store ? 'ready' : 'unavailable', checks: { sessionStore: store ? 'ok' : 'unreachable' } });
  });

  if (options.metrics) router.get('/metrics', serveMetrics(options.metrics, options.metricsToken));
  return router;
}

/**
 * An app that serves only `GET /metrics`, for a listener of its own (see
 * `server.ts`): production without `METRICS_TOKEN` keeps them off the public
 * port. Every answer, a 404 or an error too, is plain text, not cached, nosniff.
 */
export function createMetricsApp(metrics: Metrics): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(function plainAnswers(_req: Request, res: Response, next: NextFunction) {
    plainAnswer(res);
    next();
  });
  app.get('/metrics', serveMetrics(metrics));
  app.use(function notFound(_req: Request, res: Response) {
    res.status(404).type('text').send('only /metrics here\n');
  });
  app.use(function failed(_error: unknown, _req: Request, res: Response, _next: NextFunction) {
    res.status(500).type('text').send('metrics unavailable\n');
  });
  return app;
}
