import { stopRedis } from './redis';

export default async function globalTeardown(): Promise<void> {
  if (globalThis.__REDIS__) await stopRedis(globalThis.__REDIS__);
}
