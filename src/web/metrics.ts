import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { CallOutcome } from '../ipernity';

/** How old the active-sessions count a scrape answers may be, by default. */
export const ACTIVE_SESSIONS_MAX_AGE_MS = 5_000;

export interface MetricsOptions {
  /** How old the active-sessions count a scrape answers may be (default 5 s). */
  activeSessionsMaxAgeMs?: number;
}

/**
 * A count that is slow to make (every session in the store), made at most
 * once per `maxAgeMs`: a read answers the last count, and when that is
 * older, asks for a new one without waiting for it. Only the first read,
 * with no count yet, waits for one. See
 * docs/decisions/metrics-off-the-public-port.md.
 */
class CachedCount {
  readonly #count: () => Promise<number | undefined>;
  readonly #maxAgeMs: number;
  #value: number | undefined;
  #at = -Infinity;
  #pending: Promise<void> | undefined;

  constructor(count: () => Promise<number | undefined>, maxAgeMs: number) {
    this.#count = count;
    this.#maxAgeMs = maxAgeMs;
  }

  async read(): Promise<number | undefined> {
    if (performance.now() - this.#at >= this.#maxAgeMs) {
      const refresh = this.#refresh();
      if (this.#value === undefined) await refresh;
    }
    return this.#value;
  }

  #refresh(): Promise<void> {
    this.#pending ??= Promise.resolve()
      .then(this.#count)
      .then(
        (value) => {
          if (value !== undefined) this.#value = value;
        },
        () => undefined, // the last count stays; the next read past maxAgeMs tries again
      )
      .finally(() => {
        this.#at = performance.now();
        this.#pending = undefined;
      });
    return this.#pending;
  }
}

/** The server's Prometheus metrics, in a registry of its own (one per app). */
export class Metrics {
  readonly registry = new Registry();
  readonly flowsStarted = new Counter({ name: 'ipernity_connect_flows_started_total', help: 'Connection flows started (POST /connect)', labelNames: ['mode'], registers: [this.registry] });
  readonly flowsCompleted = new Counter({ name: 'ipernity_connect_flows_completed_total', help: 'Connection flows that ended connected', registers: [this.registry] });
  readonly flowsFailed = new Counter({ name: 'ipernity_connect_flows_failed_total', help: 'Connection flows that ended in an error or a denial, by reason', labelNames: ['reason'], registers: [this.registry] });
  readonly tokensRevoked = new Counter({ name: 'ipernity_connect_tokens_revoked_total', help: 'Stored connections found revoked by auth.checkToken', registers: [this.registry] });
  readonly gatewayCalls = new Counter({
    name: 'ipernity_connect_gateway_calls_total',
    help: 'Calls through the API gateway (/api/ipernity/<method>), by method and outcome',
    labelNames: ['method', 'outcome'],
    registers: [this.registry],
  });
  readonly uploads = new Counter({ name: 'ipernity_connect_uploads_total', help: 'Uploads through the server (upload.file), by outcome', labelNames: ['outcome'], registers: [this.registry] });
  readonly uploadBytes = new Counter({ name: 'ipernity_connect_upload_bytes_total', help: 'Bytes of upload.file bodies received (the file and its form), whatever the outcome', registers: [this.registry] });
  readonly apiCalls = new Histogram({
    name: 'ipernity_api_call_duration_seconds',
    help: 'ipernity API call latency, by method and outcome',
    labelNames: ['method', 'outcome'],
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  /**
   * `activeSessions` counts the store's sessions: it is asked at most once
   * per `activeSessionsMaxAgeMs`, and a scrape answers the last count
   * rather than waiting for the next one (see `SqliteSessionStore.countActive`).
   */
  constructor(activeSessions?: () => Promise<number | undefined>, options: MetricsOptions = {}) {
    collectDefaultMetrics({ register: this.registry });
    if (activeSessions) {
      const cached = new CachedCount(activeSessions, options.activeSessionsMaxAgeMs ?? ACTIVE_SESSIONS_MAX_AGE_MS);
      new Gauge({
        name: 'ipernity_connect_active_sessions',
        help: 'Sessions in the store that have not expired',
        registers: [this.registry],
        async collect() {
          const count = await cached.read();
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
