import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent } from 'undici';
import type { Fault } from '../../src/simulator/faults';
import type { RunningSimulator } from '../support/harness';
import {
  closeClient,
  connectionOf,
  cookieHeader,
  exchange,
  finishFlow,
  FlowError,
  inParallel,
  logTrouble,
  recordFigures,
  removeScratch,
  scratch,
  startFlow,
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

/** The server gives up on ipernity after this long (the smallest the configuration allows is 100 ms). */
const CLIENT_TIMEOUT_MS = 500;
/** Longest a request may take while Redis is away: an answer, not a hang. */
const OUTAGE_ANSWER_MS = 3000;

let nextUser = 3_000_000;
const userId = (): number => (nextUser += 1);

/** What a flow came to: `connected`, or the step, status and code that stopped it. */
async function outcomeOf(targets: FlowTargets): Promise<string> {
  try {
    await walkFlow(targets, userId());
    return 'connected';
  } catch (error) {
    return error instanceof FlowError ? `${error.step} ${error.status} ${error.code ?? ''}`.trim() : `network: ${(error as Error).message}`;
  }
}

async function healthy(origin: string): Promise<boolean> {
  return exchange(origin, '/healthz').then((answer) => answer.status === 200, () => false);
}

async function waitUntilReady(origin: string, timeoutMs: number): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    const status = await exchange(origin, '/readyz').then((answer) => answer.status, () => 0);
    if (status === 200) return Date.now() - started;
    await sleep(100);
  }
  throw new Error(`${origin} was not ready again within ${timeoutMs} ms`);
}

describe('faults', () => {
  let dir: string;
  let redis: Redis;
  let simulator: RunningSimulator;
  let server: ServerProcess;
  let targets: FlowTargets;
  const survived: string[] = [];
  /** Every server log, checked at the end, with the 5xx each test expects. */
  const logs: Array<{ file: string; statuses: number[]; codes: string[] }> = [];

  async function startApp(name: string, port?: number): Promise<ServerProcess> {
    const logFile = path.join(dir, `${name}.log`);
    const started = await startServer({ simulatorUrl: simulator.url, store: 'redis', redisUrl: redis.url, logFile, port, env: { IPERNITY_TIMEOUT_MS: String(CLIENT_TIMEOUT_MS) } });
    logs.push({ file: logFile, statuses: [502, 503, 504], codes: ['UPSTREAM_TIMEOUT', 'UPSTREAM_HTTP_STATUS', 'UPSTREAM_BAD_RESPONSE', 'UPSTREAM_NETWORK', 'SESSION_STORE_UNAVAILABLE'] });
    return started;
  }

  beforeAll(async () => {
    dir = scratch('faults');
    redis = await startRedis(dir);
    simulator = await startUpstream();
    server = await startApp('server');
    targets = { app: () => server.origin, simulator: simulator.url };
  });
  afterEach(() => {
    simulator.faults.clear();
  });
  afterAll(async () => {
    await server?.stop();
    await simulator?.close();
    if (redis) await stopRedis(redis);
    removeScratch(dir);
    await closeClient();
    recordFigures('faults', { 'faults survived': survived.length, 'faults survived, list': survived.join('; ') });
  });

  describe('when ipernity misbehaves during auth.getToken', () => {
    it.each<[string, number, string, Fault]>([
      ['is slower than the client timeout', 504, 'UPSTREAM_TIMEOUT', { delayMs: CLIENT_TIMEOUT_MS * 3 }],
      ['answers HTTP 500', 502, 'UPSTREAM_HTTP_STATUS', { status: 500 }],
      ['answers HTTP 503', 502, 'UPSTREAM_HTTP_STATUS', { status: 503 }],
      ['answers HTML instead of JSON', 502, 'UPSTREAM_BAD_RESPONSE', { notJson: true }],
      ['drops the connection', 502, 'UPSTREAM_NETWORK', { drop: true }],
    ])('it %s: 20 concurrent callbacks each get a %i %s page, then flows complete again', async (name, status, code, fault) => {
      simulator.faults.set({ ...fault, methods: ['auth.getToken'] });
      const during = await inParallel(20, 20, () => outcomeOf(targets));
      expect(during).toEqual(new Array(20).fill(`callback ${status} ${code}`));

      simulator.faults.clear();
      const after = await inParallel(20, 20, () => outcomeOf(targets));
      expect(after).toEqual(new Array(20).fill('connected'));
      expect(await healthy(server.origin)).toBe(true);
      survived.push(`ipernity ${name}`);
    });
  });

  describe('when Redis stops and comes back mid-load', () => {
    it('answers 503 pages quickly during the outage, then completes flows, and loses no connected visitor', async () => {
      const before = await inParallel(30, 10, (i) => walkFlow(targets, 3_500_000 + i));
      let phase: 'before' | 'outage' | 'recovering' | 'after' = 'before';
      let running = true;
      const outcomes: Array<{ phase: string; outcome: string; ms: number }> = [];
      const load = Array.from({ length: 20 }, async () => {
        while (running) {
          const startedIn = phase;
          try {
            await walkFlow(targets, userId());
            outcomes.push({ phase: startedIn, outcome: 'connected', ms: 0 });
          } catch (error) {
            if (error instanceof FlowError) outcomes.push({ phase: startedIn, outcome: `${error.step} ${error.status} ${error.code ?? ''}`.trim(), ms: error.ms });
            else outcomes.push({ phase: startedIn, outcome: `network: ${(error as Error).message}`, ms: NaN });
            await sleep(20); // a visitor does not retry in a tight loop
          }
        }
      });

      await sleep(1000);
      phase = 'outage';
      await stopRedis(redis);
      await sleep(500);
      // while Redis is away: not ready, and a connected visitor gets a quick 503 page, not a hang
      const ready = await exchange(server.origin, '/readyz');
      expect(ready.status).toBe(503);
      const probe = await connectionOf(server.origin, new Map((before[0] as FlowResult).jar));
      expect(probe.status).toBe(503);
      expect(probe.ms).toBeLessThan(OUTAGE_ANSWER_MS);
      await sleep(2000);

      phase = 'recovering';
      redis = await startRedis(dir, redis.port);
      const recoveredInMs = await waitUntilReady(server.origin, 15_000);
      phase = 'after';
      await sleep(2000);
      running = false;
      await Promise.all(load);

      const failures = outcomes.filter((o) => o.outcome !== 'connected');
      recordFigures('faults', { 'flows completed around the Redis outage': outcomes.filter((o) => o.outcome === 'connected').length + before.length, 'answers refused during the Redis outage': failures.length });
      // every failure is a store-unavailable page, answered quickly
      expect(failures.filter((o) => !/^(start|callback|connection) 503 SESSION_STORE_UNAVAILABLE$/.test(o.outcome))).toEqual([]);
      expect(failures.filter((o) => !(o.ms < OUTAGE_ANSWER_MS))).toEqual([]);
      // failures only while Redis was away or coming back
      expect(failures.filter((o) => o.phase === 'after')).toEqual([]);
      expect(outcomes.filter((o) => o.phase === 'after' && o.outcome === 'connected').length).toBeGreaterThan(0);
      expect(failures.length).toBeGreaterThan(0); // the outage was felt, so the test tested something

      const stillConnected = await inParallel(before.length, 10, async (i) => (await connectionOf(server.origin, (before[i] as FlowResult).jar)).json.user?.userId);
      expect(stillConnected).toEqual(before.map((_, i) => String(3_500_000 + i)));
      expect(await healthy(server.origin)).toBe(true);
      expect(server.child.exitCode).toBeNull();
      survived.push(`Redis stopped and restarted mid-load (${failures.length} quick 503 pages, ready again ${recoveredInMs} ms after Redis came back)`);
    });
  });

  describe('when Redis freezes (the process stopped, connections open) mid-load', () => {
    it('answers within a bounded time instead of hanging, then recovers when Redis resumes', async () => {
      const visitor = await walkFlow(targets, userId());
      // gives up after twice the bound, so a hang fails the test instead of stalling the suite
      const impatient = new Agent({ headersTimeout: OUTAGE_ANSWER_MS * 2, bodyTimeout: OUTAGE_ANSWER_MS * 2 });
      redis.process.kill('SIGSTOP');
      let answers: Array<{ status: number; ms: number }>;
      try {
        answers = await inParallel(10, 10, async () => {
          const started = performance.now();
          const answer = await exchange(server.origin, '/connection', { headers: { cookie: cookieHeader(visitor.jar) }, dispatcher: impatient }).catch(() => ({ status: 0 }));
          return { status: answer.status, ms: Math.round(performance.now() - started) };
        });
      } finally {
        redis.process.kill('SIGCONT');
        await impatient.destroy();
      }
      expect(answers.filter((a) => a.status !== 503 || a.ms > OUTAGE_ANSWER_MS)).toEqual([]);
      await waitUntilReady(server.origin, 15_000);
      expect((await connectionOf(server.origin, visitor.jar)).json.connected).toBe(true);
      expect(await outcomeOf(targets)).toBe('connected');
      survived.push('Redis frozen mid-load');
    });
  });

  describe('when the server gets SIGTERM mid-load', () => {
    it('finishes the requests in flight, exits 0, and a new instance on the same store keeps everyone connected', async () => {
      const before = await inParallel(30, 10, (i) => walkFlow(targets, 3_600_000 + i));
      const pending = await inParallel(30, 10, (i) => startFlow(targets, 3_700_000 + i));
      // each callback waits on ipernity, so all 30 are in flight when the signal comes
      simulator.faults.set({ delayMs: 400, methods: ['auth.getToken'] });
      const callbacks = pending.map((flow, i) =>
        exchange(server.origin, flow.callbackPath, { headers: { cookie: [...flow.jar].map(([k, v]) => `${k}=${v}`).join('; ') } }).then(
          (answer) => ({ i, status: answer.status, location: answer.headers.location, setCookie: answer.headers['set-cookie'] }),
          (error: Error) => ({ i, status: 0, location: error.message, setCookie: undefined }),
        ),
      );
      await sleep(150);
      const old = server;
      const exitCode = old.stop(20_000);
      const answered = await Promise.all(callbacks);
      expect(answered.filter((a) => a.status !== 303 || a.location !== '/after')).toEqual([]);
      expect(await exitCode).toBe(0);
      simulator.faults.clear();

      server = await startApp('server-after-sigterm', old.port);
      targets = { app: () => server.origin, simulator: simulator.url };
      // the visitors whose callbacks were in flight are connected, as are those connected before
      const finished = await inParallel(pending.length, 10, async (i) => {
        const flow = pending[i] as (typeof pending)[number];
        const answer = answered.find((a) => a.i === i);
        const lines = answer?.setCookie === undefined ? [] : Array.isArray(answer.setCookie) ? answer.setCookie : [answer.setCookie];
        for (const line of lines) {
          const pair = line.split(';', 1)[0] as string;
          flow.jar.set(pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1));
        }
        return (await connectionOf(server.origin, flow.jar)).json.user?.userId;
      });
      expect(finished).toEqual(pending.map((_, i) => String(3_700_000 + i)));
      const stillConnected = await inParallel(before.length, 10, async (i) => (await connectionOf(server.origin, (before[i] as FlowResult).jar)).json.user?.userId);
      expect(stillConnected).toEqual(before.map((_, i) => String(3_600_000 + i)));
      expect(await outcomeOf(targets)).toBe('connected');
      survived.push('SIGTERM with 30 callbacks in flight');
    });
  });

  it('still completes a flow at the end, then stops cleanly with no unhandled rejection and no unexpected error line in any log', async () => {
    await expect(finishFlow(targets, 3_999_999, await startFlow(targets, 3_999_999))).resolves.toMatchObject({ connection: { connected: true } });
    expect(await server.stop()).toBe(0);
    // error lines are expected only for the 5xx the faults cause
    expect(logs.flatMap((log) => logTrouble(log.file, log))).toEqual([]);
  });
});
