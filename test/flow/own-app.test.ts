import express from 'express';
import request from 'supertest';
import {
  createAttemptCookie,
  createConnectRouter,
  createCsrf,
  createErrorHandler,
  createLogger,
  createRenderer,
  createSessionStack,
  IpernityClient,
  notFound,
  STATIC_DIR,
  TokenCipher,
} from '../../src';
import { authorizeAtSimulator, csrfOf, LogCapture, PUBLIC_URL, startSimulator, testConfig, type RunningSimulator } from '../support/harness';

const BASE = '/account/ipernity';

describe('a site that assembles its own app from the exported parts', () => {
  let simulator: RunningSimulator;
  beforeAll(async () => {
    simulator = await startSimulator({ callbackUrl: `${PUBLIC_URL}${BASE}/connect/callback` });
  });
  afterAll(() => simulator.close());

  /** What docs/embedding.md's "Using it in your own Express app" describes: the flow under the site's own path. */
  function siteApp() {
    const config = testConfig(simulator.url);
    const logs = new LogCapture();
    const logger = createLogger('info', logs.destination);
    const cipher = new TokenCipher(config.tokenKeys);
    const csrf = createCsrf({ secrets: config.sessionSecrets, cookieName: 'site.csrf', secure: false, origin: config.publicUrl.origin });
    const render = createRenderer({ appName: config.ipernity.appName, sandbox: false, basePath: BASE, staticPath: `${BASE}/static` });
    const sessions = createSessionStack(config, logger);
    const client = new IpernityClient({ apiUrl: config.ipernity.apiUrl, apiKey: config.ipernity.apiKey, apiSecret: config.ipernity.apiSecret, timeoutMs: config.ipernity.timeoutMs });
    const site = express();
    site.use(`${BASE}/static`, express.static(STATIC_DIR));
    site.use(
      BASE,
      createConnectRouter({
        client,
        ipernity: config.ipernity,
        cipher,
        attempts: createAttemptCookie({ cipher, cookieName: 'site.attempts', secure: false }),
        sessions,
        csrf,
        render,
        basePath: BASE,
        tokenCheckIntervalMs: config.tokenCheckIntervalMs,
        countdownSeconds: 0,
        logger,
      }),
    );
    site.use(notFound);
    site.use(createErrorHandler({ render, csrf, logger, appName: config.ipernity.appName }));
    return { site, logs, close: () => Promise.all([sessions.close(), client.close()]) };
  }

  it("connects a visitor through the flow mounted under the site's path", async () => {
    const { site, logs, close } = siteApp();
    try {
      const agent = request.agent(site);
      const warning = await agent.get(`${BASE}/connect?perm_doc=write&return_to=%2Falbums`).expect(200);
      expect(warning.text).toContain(`action="${BASE}/connect"`);
      expect(warning.text).toContain(`href="${BASE}/static/style.css"`);
      await agent.get(`${BASE}/static/style.css`).expect(200).expect('Content-Type', /css/);
      const start = await agent.post(`${BASE}/connect`).type('form').send({ _csrf: csrfOf(warning.text), perm_doc: 'write', return_to: '/albums' }).expect(303);
      const callback = await authorizeAtSimulator(simulator, start.headers.location as string);
      expect(callback.pathname).toBe(`${BASE}/connect/callback`);
      await agent.get(callback.pathname + callback.search).expect(303).expect('Location', '/albums');
      const connection = await agent.get(`${BASE}/connection`).expect(200);
      expect(connection.body).toMatchObject({ connected: true, permissions: { doc: 'write' } });
      expect(logs.events().map((entry) => entry.event)).toContain('connected');
    } finally {
      await close();
    }
  });

  it("answers bad input with the product's error page, and unknown paths with its 404", async () => {
    const { site, close } = siteApp();
    try {
      const bad = await request(site).get(`${BASE}/connect?perm_doc=admin`).expect(400);
      expect(bad.text).toContain('PERMISSION_INVALID');
      expect((await request(site).get(`${BASE}/nowhere`).expect(404)).text).toContain('NOT_FOUND');
    } finally {
      await close();
    }
  });
});
