import { Codes, type ErrorCode } from '../errors';
import type { Request, RequestHandler } from 'express';
import { ipKeyGenerator, rateLimit } from 'express-rate-limit';
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

export interface VisitorRateLimitOptions extends FlowRateLimitOptions {
  /** The visitor a request counts for (their session id); requests without one count by client address. */
  visitorOf: (req: Request) => string | undefined;
}

/**
 * The per-client limit on the routes that call ipernity under the site's
 * key (starting and finishing a flow, a forced token check); undefined when
 * it is off.
 */
export function createFlowRateLimit(options: FlowRateLimitOptions): RequestHandler | undefined {
  return limiter(options, 'rl:', Codes.RATE_LIMITED, 'too many connection attempts');
}

/**
 * The per-visitor limit on gateway calls (API_RATE_LIMIT_PER_MINUTE), so
 * that one visitor cannot spend the site's whole ipernity quota; undefined
 * when it is off.
 */
export function createVisitorRateLimit(options: VisitorRateLimitOptions): RequestHandler | undefined {
  return limiter(options, 'rl-api:', Codes.API_RATE_LIMITED, 'too many gateway calls', (req) => {
    const visitor = options.visitorOf(req);
    return visitor ? `visitor:${visitor}` : `ip:${ipKeyGenerator(req.ip ?? '')}`;
  });
}

function limiter(options: FlowRateLimitOptions, prefix: string, code: ErrorCode, message: string, keyGenerator?: (req: Request) => string): RequestHandler | undefined {
  if (options.limitPerMinute <= 0) return undefined;
  const redis = options.redis;
  let store;
  if (redis) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded only with Redis, like the session store
    const { ReconnectingRedisRateLimitStore } = require('./rate-limit-store') as typeof import('./rate-limit-store');
    const redisStore = new ReconnectingRedisRateLimitStore({ prefix: `${options.redisKeyPrefix}${prefix}`, sendCommand: (...args: string[]) => redis.sendCommand(args) });
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
    ...(keyGenerator ? { keyGenerator } : {}),
    handler(_req, _res, next) {
      next(new WebError(code, message));
    },
  });
}
