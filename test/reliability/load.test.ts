import path from 'node:path';
import type { RunningSimulator } from '../support/harness';
import {
  closeClient,
  connectionOf,
  FlowError,
  inParallel,
  logTrouble,
  recordFigures,
  removeScratch,
  scratch,
  secretsOf,
  startRedis,
  startServer,
  startUpstream,
  stopRedis,
  walkFlow,
  type FlowResult,
  type FlowTargets,
  type Redis,
  type ServerProcess,
} from './support/stack';

const FLOWS = 500;
const CONCURRENCY = 50;

/** Walks `FLOWS` flows, `CONCURRENCY` at a time, each as its own ipernity user; answers the results and every failure. */
async function walkMany(targets: FlowTargets, firstUserId: number): Promise<{ results: Array<FlowResult | undefined>; failures: string[] }> {
  const failures: string[] = [];
  const results = await inParallel(FLOWS, CONCURRENCY, async (i) => {
    try {
      return await walkFlow(targets, firstUserId + i);
    } catch (error) {
      failures.push(error instanceof FlowError ? `user ${firstUserId + i}: ${error.message}` : `user ${firstUserId + i}: ${(error as Error).message}`);
      return undefined;
    }
  });
  return { results, failures };
}

/** Every visitor, asked again at the end, is still connected as the user they authorized as, and no answer shows a secret. */
async function expectStillConnected(origin: string, results: Array<FlowResult | undefined>, firstUserId: number, secrets: string[]): Promise<void> {
  const answers = await inParallel(results.length, CONCURRENCY, async (i) => {
    const result = results[i];
    if (!result) return `user ${firstUserId + i}: the flow failed`;
    const answer = await connectionOf(origin, result.jar);
    if (answer.status !== 200 || !answer.json.connected || answer.json.user?.userId !== String(firstUserId + i)) return `user ${firstUserId + i}: ${answer.status} ${answer.text}`;
    if (answer.json.user.username !== `user${firstUserId + i}` || answer.json.permissions?.doc !== 'read') return `user ${firstUserId + i}: ${answer.text}`;
    if (secrets.some((secret) => answer.text.includes(secret))) return `user ${firstUserId + i}: a secret in /connection`;
    return undefined;
  });
  expect(answers.filter(Boolean)).toEqual([]);
}

describe('under load', () => {
  let dir: string;
  let redis: Redis;
  let simulator: RunningSimulator;

  beforeAll(async () => {
    dir = scratch('load');
    redis = await startRedis(dir);
    simulator = await startUpstream();
  });
  afterAll(async () => {
    await simulator?.close();
    if (redis) await stopRedis(redis);
    removeScratch(dir);
    await closeClient();
  });

  describe('one server process on Redis', () => {
    let server: ServerProcess;
    beforeAll(async () => {
      server = await startServer({ simulatorUrl: simulator.url, store: 'redis', redisUrl: redis.url, logFile: path.join(dir, 'one.log') });
    });
    afterAll(async () => {
      await server?.stop();
    });

    it(`completes ${FLOWS} flows from ${CONCURRENCY} concurrent visitors, each connected as its own user, with no 5xx`, async () => {
      const started = performance.now();
      const { results, failures } = await walkMany({ app: () => server.origin, simulator: simulator.url }, 1_000_000);
      const seconds = (performance.now() - started) / 1000;
      recordFigures('load', { 'flows completed, one instance': results.filter(Boolean).length, 'flows per second, one instance (suite client)': Number((FLOWS / seconds).toFixed(0)) });
      expect(failures).toEqual([]);
      await expectStillConnected(server.origin, results, 1_000_000, secretsOf(simulator));
      expect(await server.stop()).toBe(0);
      expect(logTrouble(server.logFile)).toEqual([]);
    });
  });

  describe('two server processes on one Redis, each flow crossing between them', () => {
    let a: ServerProcess;
    let b: ServerProcess;
    beforeAll(async () => {
      [a, b] = await Promise.all([
        startServer({ simulatorUrl: simulator.url, store: 'redis', redisUrl: redis.url, logFile: path.join(dir, 'a.log') }),
        startServer({ simulatorUrl: simulator.url, store: 'redis', redisUrl: redis.url, logFile: path.join(dir, 'b.log') }),
      ]);
    });
    afterAll(async () => {
      await Promise.all([a?.stop(), b?.stop()]);
    });

    it(`completes ${FLOWS} flows started on A, called back on B and read on A`, async () => {
      const targets: FlowTargets = { app: (step) => (step === 'callback' ? b.origin : a.origin), simulator: simulator.url };
      const { results, failures } = await walkMany(targets, 2_000_000);
      recordFigures('load', { 'flows completed, across two instances': results.filter(Boolean).length });
      expect(failures).toEqual([]);
      // and B sees every connection A sees
      await expectStillConnected(b.origin, results, 2_000_000, secretsOf(simulator));
      expect(await Promise.all([a.stop(), b.stop()])).toEqual([0, 0]);
      expect(logTrouble(a.logFile)).toEqual([]);
      expect(logTrouble(b.logFile)).toEqual([]);
    });
  });
});
