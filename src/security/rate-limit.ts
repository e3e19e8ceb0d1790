import { Codes } from '../errors';
import type { RequestHandler } from 'express';
import { rateLimit } from 'express-rate-limit';
import type { RedisClientType } from 'redis';
import {WebError } from '../web/errors';

export interface FlowRateLimitOptions {
  /** Requests per client and minute; 0 turns the limit off. */
  limitPerMinute: number;
  /** Sessions' Redis, when they live there: the counts are then shared by every instance. */
  redis?: RedisClientType;
  redisKeyPrefix: string;
  /** TRUST_PROXY=true: warned about once at start-up (see config/warnings), not again by express-rate-limit. */
  permissiveProxy: boolean;
}

/**
 * The per-client limit on the routes that call ipernity under the site's
 * key (starting and finishing a flow, a forced token check); undefined when
 * it is off.
 */
export function createFlowRateLimit(options: FlowRateLimitOptions): RequestHandler | undefined {
  if (options.limitPerMinute <= 0) return undefined;
  const redis = options.redis;
  let store;
  if (redis) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded only with Redis, like the session store
    const { ReconnectingRedisRateLimitStore } = require('./rate-limit-store') as typeof import('./rate-limit-store');
    const redisStore = new ReconnectingRedisRateLimitStore({ prefix: `${options.redisKeyPrefix}rl:`, sendCommand: (...args: string[]) => redis.sendCommand(args) });
    redis.on('ready', () => redisStore.loadScripts());
    store = redisStore;
  }
  return rateLimit({
    windowMs: 60_000,
    limit: options.limitPerMinute,
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    passOnStoreError: true, // a Redis outage must not also lock visitors out; sessions answer 503 anyway
    store,
    validate: { trustProxy: !options.permissiveProxy },
    handler(_req, _res, next) {
      next(new WebError(Codes.RATE_LIMITED, 'too many connection attempts'));
    },
  });
}
