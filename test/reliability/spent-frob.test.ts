import path from 'node:path';
import type { RunningSimulator } from '../support/harness';
import { closeClient, cookieHeader, errorCodeOf, exchange, removeScratch, scratch, startFlow, startServer, startUpstream, type FlowTargets, type ServerProcess } from './support/stack';

/**
 * A visitor with an attempt pending comes back to the callback with a frob
 * ipernity refuses (code 2: unknown, or already spent, as when the callback
 * is reloaded from another tab or replayed). The frob is the visitor's
 * input, so the answer is a 4xx page, not a 502 that says ipernity failed.
 */
describe('GET /connect/callback with a frob ipernity refuses, while an attempt is pending', () => {
  let dir: string;
  let simulator: RunningSimulator;
  let server: ServerProcess;
  let targets: FlowTargets;

  beforeAll(async () => {
    dir = scratch('spent-frob');
    simulator = await startUpstream();
    server = await startServer({ simulatorUrl: simulator.url, store: 'sqlite', logFile: path.join(dir, 'server.log') });
    targets = { app: () => server.origin, simulator: simulator.url };
  });
  afterAll(async () => {
    await server?.stop();
    await simulator?.close();
    removeScratch(dir);
    await closeClient();
  });

  it.each([
    ['a well-formed frob ipernity never issued', async () => '100000000-00000000'],
    [
      'a frob already exchanged by another browser',
      async () => {
        const other = await startFlow(targets, 6_000_001);
        const spent = await exchange(server.origin, other.callbackPath, { headers: { cookie: cookieHeader(other.jar) } });
        expect(spent.status).toBe(303);
        return new URL(other.callbackPath, 'http://x').searchParams.get('frob') as string;
      },
    ],
  ])('%s: answers a 4xx page with a code, not a 5xx', async (_name, frobOf) => {
    const frob = await frobOf();
    const visitor = await startFlow(targets, 6_000_002);
    const answer = await exchange(server.origin, `/connect/callback?frob=${frob}`, { headers: { cookie: cookieHeader(visitor.jar) } });
    expect(answer.status).toBeGreaterThanOrEqual(400);
    expect(answer.status).toBeLessThan(500);
    expect(errorCodeOf(answer.text)).toEqual(expect.any(String));
  });
});
