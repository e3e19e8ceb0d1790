import http from 'node:http';
import request from 'supertest';
import { loadConfig } from '../../src/config';
import { createApp } from '../../src/app';
import { createLogger } from '../../src/web/logging';
import { csrfOf } from '../support/harness';
import { freePort } from '../support/redis';

describe('sandbox mode (no API key outside production)', () => {
  it('runs the whole flow against the built-in simulator, with a banner', async () => {
    const port = await freePort();
    const config = loadConfig({ PORT: String(port), PUBLIC_URL: `http://127.0.0.1:${port}`, SESSION_STORE: 'memory', LOG_LEVEL: 'silent' });
    expect(config.sandbox).toBe(true);
    const handle = createApp(config, { logger: createLogger('silent', { write: () => undefined }) });
    const server = http.createServer(handle.app);
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    try {
      const agent = request.agent(`http://127.0.0.1:${port}`);
      const home = await agent.get('/').expect(200);
      expect(home.text).toContain('built-in ipernity simulator');
      const warning = await agent.get('/connect');
      const csrf = /name="_csrf" value="([^"]+)"/.exec(warning.text)?.[1] as string;
      const start = await agent.post('/connect').type('form').send({ _csrf: csrf, perm_doc: 'read' }).expect(303);
      const link = new URL(start.headers.location as string);
      expect(link.pathname).toBe('/sandbox/ipernity/apps/authorize');
      const page = await agent.get(link.pathname + link.search).expect(200);
      expect(page.text).toContain('Authorize');
      // the simulator's form carries its own CSRF token, checked against its own cookie (the agent keeps both sites' cookies)
      expect(([] as string[]).concat(page.headers['set-cookie'] ?? []).some((line) => line.startsWith('ipernity-sim.csrf='))).toBe(true);
      // mounted in the app, the form is as protected as standalone: no decision from another site
      const forged = await agent.post(link.pathname).set('Origin', 'http://attacker.example').type('form').send({ ...Object.fromEntries(link.searchParams), _csrf: csrfOf(page.text), decision: 'authorize' }).expect(403);
      expect(forged.text).toContain('sent from another site or lacked its security token');
      const decision = await agent.post(link.pathname).type('form').send({ ...Object.fromEntries(link.searchParams), _csrf: csrfOf(page.text), decision: 'authorize' }).expect(303);
      const callback = new URL(decision.headers.location as string);
      await agent.get(callback.pathname + callback.search).expect(303);
      expect((await agent.get('/connection')).body).toMatchObject({ connected: true, user: { username: 'Superman' } });
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await handle.close();
    }
  });

  it('runs in OAuth mode too (IPERNITY_AUTH_MODE=oauth without a key): request token, authorization, access token', async () => {
    const port = await freePort();
    const config = loadConfig({ PORT: String(port), PUBLIC_URL: `http://127.0.0.1:${port}`, SESSION_STORE: 'memory', LOG_LEVEL: 'silent', IPERNITY_AUTH_MODE: 'oauth' });
    expect([config.sandbox, config.ipernity.oauth.authorizeUrl]).toEqual([true, `http://127.0.0.1:${port}/sandbox/ipernity/apps/oauth/authorize`]);
    const handle = createApp(config, { logger: createLogger('silent', { write: () => undefined }) });
    const server = http.createServer(handle.app);
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    try {
      const agent = request.agent(`http://127.0.0.1:${port}`);
      const warning = await agent.get('/connect?perm_doc=write');
      const start = await agent.post('/connect').type('form').send({ _csrf: csrfOf(warning.text), perm_doc: 'write' }).expect(303);
      const link = new URL(start.headers.location as string);
      expect(link.pathname).toBe('/sandbox/ipernity/apps/oauth/authorize');
      const page = await agent.get(link.pathname + link.search).expect(200);
      const decision = await agent.post(link.pathname).type('form').send({ ...Object.fromEntries(link.searchParams), _csrf: csrfOf(page.text), decision: 'authorize' }).expect(303);
      const callback = new URL(decision.headers.location as string);
      expect(callback.searchParams.get('oauth_token')).toBe(link.searchParams.get('oauth_token'));
      await agent.get(callback.pathname + callback.search).expect(303);
      expect((await agent.get('/connection')).body).toMatchObject({ connected: true, permissions: { doc: 'write' } });
      // the photo page reads the visitor's photos with OAuth-signed calls
      expect((await agent.get('/').expect(200)).text).toContain('<img');
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await handle.close();
    }
  });

  it('is never used in production', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(/IPERNITY_API_KEY/);
  });
});
