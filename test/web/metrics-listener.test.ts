import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { listen, type Listening } from '../../src/server';
import { buildApp, testConfig, type TestApp } from '../support/harness';

/** No flow runs here: nothing calls the API. */
const NO_UPSTREAM = 'http://127.0.0.1:9';

describe('/metrics', () => {
  let dir: string;
  const apps: TestApp[] = [];
  /** Production as the image runs it: SQLite sessions, and an ephemeral metrics port so tests never collide. */
  const production = (env: Record<string, string> = {}): TestApp => {
    const handle = buildApp(testConfig(NO_UPSTREAM, { NODE_ENV: 'production', SESSION_STORE: 'sqlite', DATA_DIR: dir, METRICS_PORT: '0', ...env }));
    apps.push(handle);
    return handle;
  };
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ipernity-connect-metrics-'));
  });
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((handle) => handle.close()));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  describe('in production without METRICS_TOKEN', () => {
    it('are not public: the main port answers 404 for /metrics', async () => {
      const handle = production();
      expect(handle.config.metrics).toMatchObject({ enabled: true, ownListener: true, host: '127.0.0.1' });
      await request(handle.app).get('/metrics').expect(404);
    });

    it('are served by an app of their own, plain text, not cached, nosniff, and nothing else', async () => {
      const handle = production();
      const metricsApp = handle.metricsApp;
      if (!metricsApp) throw new Error('no metricsApp in production without METRICS_TOKEN');
      const answer = await request(metricsApp).get('/metrics').expect(200);
      expect(answer.headers['content-type']).toMatch(/^text\/plain/);
      expect(answer.headers['cache-control']).toBe('no-store');
      expect(answer.headers['x-content-type-options']).toBe('nosniff');
      expect(answer.headers['x-powered-by']).toBeUndefined();
      expect(answer.text).toMatch(/^# TYPE ipernity_connect_flows_started_total counter$/m);
      for (const other of ['/', '/healthz', '/connect', '/metrics/x']) {
        const missing = await request(metricsApp).get(other).expect(404);
        expect(missing.headers['x-content-type-options']).toBe('nosniff');
        expect(missing.headers['content-type']).toMatch(/^text\/plain/);
      }
    });

    it('are off everywhere with METRICS_ENABLED=false', async () => {
      const handle = production({ METRICS_ENABLED: 'false' });
      expect(handle.metricsApp).toBeUndefined();
      await request(handle.app).get('/metrics').expect(404);
    });
  });

  it('stay on the main port in production with METRICS_TOKEN, behind it', async () => {
    const handle = production({ METRICS_TOKEN: 'metrics-secret' });
    expect(handle.metricsApp).toBeUndefined();
    await request(handle.app).get('/metrics').expect(401);
    await request(handle.app).get('/metrics').set('Authorization', 'Bearer metrics-secret').expect(200);
  });

  it('stay on the main port outside production (the sandbox), with no listener of their own', async () => {
    const handle = buildApp(testConfig(NO_UPSTREAM, { NODE_ENV: 'development', IPERNITY_API_KEY: '', IPERNITY_API_SECRET: '' }));
    apps.push(handle);
    expect(handle.config.sandbox).toBe(true);
    expect(handle.metricsApp).toBeUndefined();
    await request(handle.app).get('/metrics').expect(200);
  });

  describe('the server (server.ts)', () => {
    let listening: Listening | undefined;
    afterEach(async () => {
      await listening?.stop();
      listening = undefined;
    });

    it('starts in production without METRICS_TOKEN and serves metrics on METRICS_PORT, on loopback only, not on PORT', async () => {
      const handle = production({ PORT: '0' });
      listening = await listen(handle);
      const main = `http://127.0.0.1:${(listening.server.address() as AddressInfo).port}`;
      expect((await fetch(`${main}/healthz`)).status).toBe(200);
      expect((await fetch(`${main}/metrics`)).status).toBe(404);

      const metricsServer = listening.metricsServer;
      if (!metricsServer) throw new Error('no metrics listener');
      const address = metricsServer.address() as AddressInfo;
      expect(address.address).toBe('127.0.0.1');
      const answer = await fetch(`http://127.0.0.1:${address.port}/metrics`);
      expect(answer.status).toBe(200);
      expect(answer.headers.get('x-content-type-options')).toBe('nosniff');
      expect(await answer.text()).toMatch(/^ipernity_connect_active_sessions 0$/m);
      expect(handle.logs.events().find((event) => event.event === 'metrics_listening')).toMatchObject({ host: '127.0.0.1', port: address.port });
    });

    it('closes the metrics listener on shutdown', async () => {
      listening = await listen(production({ PORT: '0' }));
      const { server, metricsServer } = listening;
      await listening.stop();
      expect(server.listening).toBe(false);
      expect(metricsServer?.listening).toBe(false);
    });

    it('still serves the site when the metrics port is taken, and says so', async () => {
      const first = await listen(production({ PORT: '0' }));
      try {
        const taken = (first.metricsServer?.address() as AddressInfo).port;
        const handle = production({ PORT: '0', METRICS_PORT: String(taken) });
        listening = await listen(handle);
        expect(listening.metricsServer).toBeUndefined();
        expect((await fetch(`http://127.0.0.1:${(listening.server.address() as AddressInfo).port}/healthz`)).status).toBe(200);
        expect(handle.logs.events().find((event) => event.event === 'metrics_listen_failed')).toMatchObject({ port: taken, err: { code: 'EADDRINUSE' } });
      } finally {
        await first.stop();
      }
    });
  });
});
