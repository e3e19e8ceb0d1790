import { redisServerAvailable, startRedis, type PrivateRedis } from './redis';

declare global {
  var __REDIS__: PrivateRedis | undefined;
}

/**
 * Starts one private redis-server for the whole run (never the shared
 * 127.0.0.1:6379) and hands its URL to the tests as TEST_REDIS_URL. An
 * explicit REDIS_URL is used as it is.
 */
export default async function globalSetup(): Promise<void> {
  if (process.env.REDIS_URL) {
    process.env.TEST_REDIS_URL = process.env.REDIS_URL;
    return;
  }
  if (!redisServerAvailable()) return;
  const redis = await startRedis();
  globalThis.__REDIS__ = redis;
  process.env.TEST_REDIS_URL = redis.url;
}
