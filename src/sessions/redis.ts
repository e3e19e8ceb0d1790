import type { RedisClientType } from 'redis';
import type { Logger } from 'pino';

/**
 * The Redis modules are loaded only when sessions live in Redis: a server on
 * the embedded store does not carry them in memory.
 */
export function loadRedisModule<M extends 'redis' | 'connect-redis'>(name: M): M extends 'redis' ? typeof import('redis') : typeof import('connect-redis') {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- a deliberate lazy load
  return require(name);
}

/** Creates the Redis client: no offline queue (fail fast while Redis is down), bounded reconnect delay. */
export function createRedisClient(url: string, logger: Logger): RedisClientType {
  const { createClient } = loadRedisModule('redis');
  let lastComplaint = 0;
  const client = createClient({
    url,
    disableOfflineQueue: true,
    // a Redis that stops answering (frozen, or a network partition) is noticed within seconds, not never
    pingInterval: 1000,
    socket: {
      connectTimeout: 2000,
      socketTimeout: 2000,
      // keep retrying for ever, at most every 2 s, so the server recovers by itself when Redis returns
      reconnectStrategy: (retries: number) => Math.min(50 * 2 ** Math.min(retries, 6), 2000),
    },
  }) as RedisClientType;
  client.on('error', (error: Error) => {
    const now = Date.now();
    if (now - lastComplaint > 10_000) {
      lastComplaint = now;
      logger.warn({ event: 'redis_error', err: { message: error.message } }, 'Redis is unavailable');
    }
  });
  client.on('ready', () => logger.info({ event: 'redis_ready' }, 'Redis connection ready'));
  return client;
}
