import { timingSafeEqual } from 'node:crypto';
import express, { type Router } from 'express';
import type { Metrics } from './metrics';

export interface HealthRouterOptions {
  /** True when the session store answers. */
  storeReady: () => Promise<boolean>;
  metrics?: Metrics;
  /** When set, `/metrics` wants `Authorization: Bearer <token>`. */
  metricsToken?: string;
}

function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** `/healthz` (the process answers), `/readyz` (the store answers), `/metrics` (Prometheus). No sessions here. */
export function createHealthRouter(options: HealthRouterOptions): Router {
  const router = express.Router();

  router.get('/healthz', function healthz(_req, res) {
    res.set('Cache-Control', 'no-store').json({ status: 'ok' });
  });

  router.get('/readyz', async function readyz(_req, res) {
    const store = await options.storeReady();
    res.set('Cache-Control', 'no-store').status(store ? 200 : 503).json({ status: store ? 'ready' : 'unavailable', checks: { sessionStore: store ? 'ok' : 'unreachable' } });
  });

  const metrics = options.metrics;
  if (metrics) {
    router.get('/metrics', async function metricsEndpoint(req, res) {
      if (options.metricsToken) {
        const header = req.headers.authorization ?? '';
        if (!header.startsWith('Bearer ') || !sameSecret(header.slice(7), options.metricsToken)) {
          res.status(401).set('WWW-Authenticate', 'Bearer').type('text').send('metrics need Authorization: Bearer <METRICS_TOKEN>\n');
          return;
        }
      }
      res.set('Cache-Control', 'no-store').type(metrics.registry.contentType).send(await metrics.registry.metrics());
    });
  }
  return router;
}
