import { RedisStore } from 'rate-limit-redis';
import type { ClientRateLimitInfo, IncrementResponse, Options } from 'express-rate-limit';

/**
 * rate-limit-redis loads its Lua scripts once, when the limiter is created.
 * Redis may not be connected yet then (the client connects in the
 * background), and a failed load would be kept for ever: every later call
 * would fail and the limit would silently not apply. This store loads the
 * scripts again after any failure and whenever the connection becomes ready,
 * so the limit comes back with Redis.
 */
export class ReconnectingRedisRateLimitStore extends RedisStore {
  override async init(options: Options): Promise<void> {
    this.windowMs = options.windowMs;
    this.loadScripts();
  }

  override async increment(key: string): Promise<IncrementResponse> {
    try {
      return await super.increment(key);
    } catch (error) {
      this.loadScripts();
      throw error;
    }
  }

  override async get(key: string): Promise<ClientRateLimitInfo | undefined> {
    try {
      return await super.get(key);
    } catch (error) {
      this.loadScripts();
      throw error;
    }
  }

  /** Loads the scripts (again); call it whenever the Redis connection becomes ready. */
  loadScripts(): void {
    this.incrementScriptSha = this.loadIncrementScript();
    this.getScriptSha = this.loadGetScript();
    // a failure here surfaces on the next call, which loads them again
    this.incrementScriptSha.catch(() => undefined);
    this.getScriptSha.catch(() => undefined);
  }
}
