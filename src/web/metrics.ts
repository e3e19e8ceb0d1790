import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { CallOutcome } from '../ipernity';

/** The server's Prometheus metrics, in a registry of its own (one per app). */
export class Metrics {
  readonly registry = new Registry();
  readonly flowsStarted = new Counter({ name: 'ipernity_connect_flows_started_total', help: 'Connection flows started (POST /connect)', labelNames: ['mode'], registers: [this.registry] });
  readonly flowsCompleted = new Counter({ name: 'ipernity_connect_flows_completed_total', help: 'Connection flows that ended connected', registers: [this.registry] });
  readonly flowsFailed = new Counter({ name: 'ipernity_connect_flows_failed_total', help: 'Connection flows that ended in an error or a denial, by reason', labelNames: ['reason'], registers: [this.registry] });
  readonly tokensRevoked = new Counter({ name: 'ipernity_connect_tokens_revoked_total', help: 'Stored connections found revoked by auth.checkToken', registers: [this.registry] });
  readonly apiCalls = new Histogram({
    name: 'ipernity_api_call_duration_seconds',
    help: 'ipernity API call latency, by method and outcome',
    labelNames: ['method', 'outcome'],
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  constructor(activeSessions?: () => Promise<number | undefined>) {
    collectDefaultMetrics({ register: this.registry });
    if (activeSessions) {
      new Gauge({
        name: 'ipernity_connect_active_sessions',
        help: 'Sessions in the store that have not expired',
        registers: [this.registry],
        async collect() {
          const count = await activeSessions().catch(() => undefined);
          if (count !== undefined) this.set(count);
        },
      });
    }
  }

  /** For `IpernityClient`'s `onCall`. */
  observeCall = (method: string, durationMs: number, outcome: CallOutcome): void => {
    this.apiCalls.observe({ method, outcome }, durationMs / 1000);
  };
}
