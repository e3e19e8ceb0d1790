import http from 'node:http';
import express from 'express';
import request from 'supertest';
import { createHttpServer, PROTOTYPES_HELP } from '../src/http-server';
import { buildApp, startSimulator, testConfig, walkFlow, type RunningSimulator } from './support/harness';

/** Every `Object.setPrototypeOf` Express makes on a request or response while `work` runs: did it change anything? */
async function prototypeChanges(app: express.Express, work: () => Promise<unknown>): Promise<boolean[]> {
  const changes: boolean[] = [];
  const original = Object.setPrototypeOf;
  const spy = jest.spyOn(Object, 'setPrototypeOf').mockImplementation((object: object, prototype: object | null) => {
    if (prototype === app.request || prototype === app.response) changes.push(Object.getPrototypeOf(object) !== prototype);
    return original(object, prototype);
  });
  try {
    await work();
  } finally {
    spy.mockRestore();
  }
  return changes;
}

function probeApp(): express.Express {
  const app = express();
  app.get('/probe', (req, res) => {
    res.json({ hostname: req.hostname, query: req.query, app: req.app === app, sent: typeof res.send });
  });
  return app;
}

describe('createHttpServer', () => {
  let simulator: RunningSimulator;
  let server: http.Server | undefined;
  beforeAll(async () => {
    simulator = await startSimulator();
  });
  afterAll(async () => {
    await simulator.close();
  });
  afterEach(async () => {
    if (server?.listening) await new Promise((resolve) => server?.close(resolve));
    server = undefined;
  });

  (PROTOTYPES_HELP ? it : it.skip)("makes requests and responses with the app's prototypes, so Express changes none of them (Node 20)", async () => {
    const app = probeApp();
    server = createHttpServer(app);
    const changes = await prototypeChanges(app, async () => {
      const answer = await request(server as http.Server).get('/probe?a=1').set('Host', 'site.example').expect(200);
      expect(answer.body).toEqual({ hostname: 'site.example', query: { a: '1' }, app: true, sent: 'function' });
    });
    expect(changes).toEqual([false, false]);

    // the plain server, for comparison: Express changes both
    server.close();
    server = http.createServer(app);
    expect(await prototypeChanges(app, () => request(server as http.Server).get('/probe').expect(200))).toEqual([true, true]);
  });

  it('serves with the plain server where the prototypes do not help (Node 22 and later)', () => {
    expect(PROTOTYPES_HELP).toBe(Number(process.versions.node.split('.')[0]) < 22);
  });

  it('serves a whole flow, keeping the server options it is given', async () => {
    const handle = buildApp(testConfig(simulator.url));
    try {
      server = createHttpServer(handle.app, { requestTimeout: 30_000 });
      expect(server.requestTimeout).toBe(30_000);
      const agent = request.agent(server);
      await walkFlow(agent, simulator, { query: 'perm_doc=write' });
      expect((await agent.get('/connection').expect(200)).body).toMatchObject({ connected: true, permissions: { doc: 'write' } });
    } finally {
      await handle.close();
    }
  });

  it('is a plain server when Node makes requests with a class, which cannot run on an object made elsewhere', async () => {
    const node = http as { IncomingMessage: typeof http.IncomingMessage };
    const original = node.IncomingMessage;
    node.IncomingMessage = class Request extends original {};
    try {
      const app = probeApp();
      server = createHttpServer(app);
      expect(await prototypeChanges(app, () => request(server as http.Server).get('/probe').expect(200))).toEqual([true, true]);
    } finally {
      node.IncomingMessage = original;
    }
  });
});
