import request from 'supertest';
import { buildApp, csrfOf, startSimulator, testConfig, walkFlow, authorizeAtSimulator, API_SECRET, type RunningSimulator, type TestApp } from '../support/harness';

let simulator: RunningSimulator;
beforeAll(async () => {
  simulator = await startSimulator({ callbackUrl: 'https://127.0.0.1/connect/callback' });
});
afterAll(async () => {
  await simulator.close();
});

describe('behind an https reverse proxy', () => {
  let handle: TestApp;
  beforeEach(() => {
    handle = buildApp(testConfig(simulator.url, { PUBLIC_URL: 'https://127.0.0.1', TRUST_PROXY: '1' }));
  });
  afterEach(() => handle.close());

  it('sets Secure, HttpOnly, SameSite=Lax cookies with the __Host- prefix', async () => {
    const agent = request.agent(handle.app);
    const warning = await agent.get('/connect').set('X-Forwarded-Proto', 'https').expect(200);
    const csrfCookie = ([] as string[]).concat(warning.headers['set-cookie'] ?? []).join('\n');
    expect(csrfCookie).toMatch(/^__Host-ipernity-connect\.csrf=[^;]+; Path=\/; HttpOnly; Secure; SameSite=Lax$/m);
    const start = await request(handle.app)
      .post('/connect')
      .set('X-Forwarded-Proto', 'https')
      .set('Cookie', csrfCookie.split(';')[0] as string)
      .type('form')
      .send({ _csrf: csrfOf(warning.text), perm_doc: 'read' })
      .expect(303);
    const attempts = ([] as string[]).concat(start.headers['set-cookie'] ?? []).find((c) => c.startsWith('__Host-ipernity-connect.attempts='));
    expect(attempts).toMatch(/; Max-Age=86400; Path=\/; HttpOnly; Secure; SameSite=Lax$/);
    expect(start.headers['strict-transport-security']).toMatch(/max-age=31536000/);
    const callback = await authorizeAtSimulator(simulator, start.headers.location as string);
    const done = await request(handle.app)
      .get(callback.pathname + callback.search)
      .set('X-Forwarded-Proto', 'https')
      .set('Cookie', (attempts as string).split(';')[0] as string)
      .expect(303);
    const session = ([] as string[]).concat(done.headers['set-cookie'] ?? []).find((c) => c.startsWith('__Host-ipernity-connect.sid='));
    expect(session).toMatch(/; Path=\/; Expires=[^;]+; HttpOnly; Secure; SameSite=Lax$/);
  });

  it('builds the links from PUBLIC_URL, not from the Host header', async () => {
    const answer = await request(handle.app).get('/connect').set('Host', 'evil.example').set('X-Forwarded-Proto', 'https').expect(308);
    expect(answer.headers.location).toBe('https://127.0.0.1/connect');
  });
});

describe('https PUBLIC_URL without TRUST_PROXY', () => {
  it('refuses the callback before the frob is spent, naming TRUST_PROXY, and warns at start-up (no stored session for nobody)', async () => {
    const handle = buildApp(testConfig(simulator.url, { PUBLIC_URL: 'https://127.0.0.1' }));
    try {
      expect(handle.logs.events().find((e) => e.event === 'trust_proxy_missing')?.msg).toContain('TRUST_PROXY');
      const warning = await request(handle.app).get('/connect').expect(200);
      const csrfCookie = ([] as string[]).concat(warning.headers['set-cookie'] ?? []).find((c) => c.startsWith('__Host-ipernity-connect.csrf=')) as string;
      const start = await request(handle.app).post('/connect').set('Cookie', csrfCookie.split(';')[0] as string).type('form').send({ _csrf: csrfOf(warning.text), perm_doc: 'read' }).expect(303);
      const attempts = (([] as string[]).concat(start.headers['set-cookie'] ?? []).find((c) => c.startsWith('__Host-ipernity-connect.attempts=')) as string).split(';')[0] as string;
      const callback = await authorizeAtSimulator(simulator, start.headers.location as string);
      const set = jest.spyOn(handle.sessions.store, 'set');
      const refused = await request(handle.app).get(callback.pathname + callback.search).set('Cookie', attempts).expect(500);
      expect(refused.text).toContain('TRUST_PROXY_NEEDED');
      expect(refused.text).toContain('TRUST_PROXY');
      expect(set).not.toHaveBeenCalled();
      expect(handle.logs.events().find((e) => e.event === 'request_failed')).toMatchObject({ code: 'TRUST_PROXY_NEEDED' });
      expect(handle.logs.text()).toContain('set TRUST_PROXY');
      // once the proxy is trusted, the same callback (frob and attempt unspent) connects
      const fixed = buildApp(testConfig(simulator.url, { PUBLIC_URL: 'https://127.0.0.1', TRUST_PROXY: '1' }));
      try {
        await request(fixed.app).get(callback.pathname + callback.search).set('Cookie', attempts).set('X-Forwarded-Proto', 'https').expect(303);
      } finally {
        await fixed.close();
      }
    } finally {
      await handle.close();
    }
  });
});

describe('TRUST_PROXY=true', () => {
  it('logs one warning line at start-up and no stack trace when a client sends X-Forwarded-For (clients choose their address)', async () => {
    const printed = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    const warned = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    const handle = buildApp(testConfig(simulator.url, { TRUST_PROXY: 'true', RATE_LIMIT_PER_MINUTE: '10' }));
    try {
      const warnings = handle.logs.events().filter((e) => e.event === 'trust_proxy_permissive');
      expect(warnings).toHaveLength(1);
      expect(String(warnings[0]?.msg)).not.toContain('\n');
      await request(handle.app).get('/connect/callback').set('X-Forwarded-For', '203.0.113.7').expect(400);
      await request(handle.app).get('/connect/callback').set('X-Forwarded-For', '203.0.113.8').expect(400);
      expect(printed).not.toHaveBeenCalled();
      expect(warned).not.toHaveBeenCalled();
      expect(handle.logs.text()).not.toMatch(/\n\s+at |\\n\s+at /);
    } finally {
      printed.mockRestore();
      warned.mockRestore();
      await handle.close();
    }
  });
});

describe('hardening', () => {
  let handle: TestApp;
  beforeEach(() => {
    handle = buildApp(testConfig(simulator.url));
  });
  afterEach(() => handle.close());

  it('redirects a page request on another host to PUBLIC_URL before a flow starts, without an open redirect', async () => {
    const answer = await request(handle.app).get('/connect?perm_doc=write').set('Host', 'localhost:3000').expect(308);
    expect(answer.headers.location).toBe('http://127.0.0.1/connect?perm_doc=write');
    // health checks answer on any host (load balancers use internal names)
    await request(handle.app).get('/healthz').set('Host', 'internal').expect(200);
  });

  it('sends a strict Content-Security-Policy and safe headers on every page', async () => {
    const page = await request(handle.app).get('/').expect(200);
    const csp = page.headers['content-security-policy'] as string;
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("style-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).toContain(`form-action 'self' ${simulator.url}`);
    expect(csp).not.toContain('upgrade-insecure-requests');
    expect(page.headers['referrer-policy']).toBe('no-referrer');
    expect(page.headers['x-frame-options']).toBe('SAMEORIGIN');
    expect(page.headers['cache-control']).toBe('no-store');
    expect(page.headers['x-powered-by']).toBeUndefined();
    expect(page.text).not.toMatch(/<script(?![^>]*\bsrc=)/);
    expect(page.text).not.toMatch(/\sstyle=/);
  });

  it('sends pages with their type, length and language, and answers HEAD without a body', async () => {
    const page = await request(handle.app).get('/connect').set('Accept-Language', 'fr').expect(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['content-language']).toBe('fr');
    expect(Number(page.headers['content-length'])).toBe(Buffer.byteLength(page.text));
    // the cached page (accented text), with a visitor's token spliced in and without one, a first and a second time
    for (const fetchSite of [undefined, undefined, 'none', 'none']) {
      const again = request(handle.app).get('/connect').set('Accept-Language', 'fr');
      const answer = await (fetchSite ? again.set('Sec-Fetch-Site', fetchSite) : again).expect(200);
      expect(answer.text).toContain('é');
      expect(Number(answer.headers['content-length'])).toBe(Buffer.byteLength(answer.text));
    }
    const head = await request(handle.app).head('/connect').expect(200);
    expect(Number(head.headers['content-length'])).toBeGreaterThan(0);
    expect(head.text ?? '').toBe('');
  });

  it('serves the stylesheet and script for an hour, and answers 404 for a file it does not have', async () => {
    for (const file of ['style.css', 'countdown.js']) {
      const answer = await request(handle.app).get(`/static/${file}`).expect(200);
      expect(answer.headers['cache-control']).toBe('public, max-age=3600');
    }
    const missing = await request(handle.app).get('/static/missing.css').expect(404);
    expect(missing.text).toContain('NOT_FOUND');
  });

  it('answers 413 to an oversized form and 414 to an oversized address', async () => {
    const agent = request.agent(handle.app);
    const token = csrfOf((await agent.get('/connect')).text);
    const big = await agent.post('/connect').type('form').send({ _csrf: token, return_to: `/${'a'.repeat(10_000)}` }).expect(413);
    expect(big.text).toContain('PAYLOAD_TOO_LARGE');
    await request(handle.app).get(`/connect?return_to=/${'a'.repeat(5000)}`).expect(414);
  });

  it('answers 400 to a form that cannot be read', async () => {
    const agent = request.agent(handle.app);
    await agent.get('/connect');
    const answer = await agent.post('/connect').set('Content-Type', 'application/x-www-form-urlencoded; charset=koi8-r').send('a=b');
    expect([400, 415]).toContain(answer.status);
  });

  it('limits the rate of flows per client', async () => {
    handle = buildApp(testConfig(simulator.url, { RATE_LIMIT_PER_MINUTE: '3' }));
    const agent = request.agent(handle.app);
    const statuses: number[] = [];
    for (let i = 0; i < 5; i += 1) statuses.push((await agent.get('/connect/callback?frob=123456789-0ad5e2a8')).status);
    expect(statuses).toEqual([400, 400, 400, 429, 429]);
    const limited = await agent.get('/connect/callback');
    expect(limited.text).toContain('RATE_LIMITED');
    expect(limited.headers.ratelimit).toBeDefined();
  });

  it('logs one line per request with the incoming request id, and never the frob, the token or the secret', async () => {
    const agent = request.agent(handle.app);
    const warning = await agent.get('/connect').set('X-Request-Id', 'req-abc.123').expect('X-Request-Id', 'req-abc.123');
    const start = await agent.post('/connect').type('form').send({ _csrf: csrfOf(warning.text), perm_doc: 'read' }).expect(303);
    const callback = await authorizeAtSimulator(simulator, start.headers.location as string);
    await agent.get(callback.pathname + callback.search).expect(303);
    await agent.get('/connection?check=1').expect(200);
    const frob = callback.searchParams.get('frob') as string;
    const logs = handle.logs.text();
    expect(logs).toContain('"reqId":"req-abc.123"');
    expect(logs).toContain('frob=%5Bredacted%5D');
    const cookie = agent.jar.getCookies({ domain: '127.0.0.1', path: '/', secure: false, script: false }).toValueString();
    for (const secret of [API_SECRET, frob, ...simulator.state.issuedTokens(), ...cookie.split('; ').map((c) => c.split('=')[1] as string)]) {
      expect(logs).not.toContain(secret);
    }
    // a request id that could forge log fields is replaced
    const forged = await request(handle.app).get('/healthz').set('X-Request-Id', 'x"} {"level":60');
    expect(forged.headers['x-request-id']).toBeUndefined();
    const replaced = await request(handle.app).get('/').set('X-Request-Id', 'x" evil');
    expect(replaced.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('logs flow events: started, connected, failed with its code, disconnected', async () => {
    const agent = request.agent(handle.app);
    await walkFlow(agent, simulator);
    const home = await agent.get('/');
    await agent.post('/disconnect').type('form').send({ _csrf: csrfOf(home.text) }).expect(200);
    simulator.faults.set({ status: 500, methods: ['auth.getToken'], times: 1 });
    await walkFlow(agent, simulator);
    const events = handle.logs.events();
    expect(events.map((e) => e.event)).toEqual(expect.arrayContaining(['flow_started', 'connected', 'disconnected', 'failed']));
    expect(events.find((e) => e.event === 'failed')).toMatchObject({ code: 'UPSTREAM_HTTP_STATUS' });
  });
});

describe('health and metrics', () => {
  let handle: TestApp;
  afterEach(() => handle.close());

  it('answers /healthz and /readyz without creating a session', async () => {
    handle = buildApp(testConfig(simulator.url));
    const health = await request(handle.app).get('/healthz').expect(200, { status: 'ok' });
    expect(health.headers['set-cookie']).toBeUndefined();
    await request(handle.app).get('/readyz').expect(200, { status: 'ready', checks: { sessionStore: 'ok' } });
  });

  it('exposes Prometheus metrics: flows, API call latency', async () => {
    handle = buildApp(testConfig(simulator.url));
    await walkFlow(request.agent(handle.app), simulator);
    const metrics = await request(handle.app).get('/metrics').expect(200);
    expect(metrics.headers['content-type']).toMatch(/^text\/plain/);
    expect(metrics.text).toMatch(/ipernity_connect_flows_started_total\{mode="web"\} 1/);
    expect(metrics.text).toMatch(/ipernity_connect_flows_completed_total 1/);
    expect(metrics.text).toMatch(/ipernity_api_call_duration_seconds_count\{method="auth.getToken",outcome="ok"\} 1/);
  });

  it('protects metrics with METRICS_TOKEN, and hides them when disabled', async () => {
    handle = buildApp(testConfig(simulator.url, { METRICS_TOKEN: 'metrics-secret' }));
    await request(handle.app).get('/metrics').expect(401);
    await request(handle.app).get('/metrics').set('Authorization', 'Bearer wrong').expect(401);
    await request(handle.app).get('/metrics').set('Authorization', 'Bearer metrics-secret').expect(200);
    await handle.close();
    handle = buildApp(testConfig(simulator.url, { METRICS_ENABLED: 'false' }));
    await request(handle.app).get('/metrics').expect(404);
  });
});
