import http from 'node:http';
import request from 'supertest';
import type TestAgent from 'supertest/lib/agent';
import { SANDBOX_PATH, loadConfig } from '../../src/config';
import { createApp } from '../../src/app';
import { CHECK_REUSE_MS } from '../../src/flow/connection-json';
import { sign } from '../../src/ipernity/signature';
import { createSimulatorApp, SIMULATOR_CSRF_COOKIE } from '../../src/simulator/app';
import { createLogger } from '../../src/web/logging';
import { API_KEY, API_SECRET, csrfOf, decodeHtml, useAppAgainstSimulator, walkFlow, type RunningSimulator } from '../support/harness';
import { freePort } from '../support/redis';

/** Lets the clock pass `ms`, as the tests of `/connection?check=1` do (a check reuses one a few seconds old). */
function later(ms: number): void {
  const now = Date.now();
  jest.spyOn(Date, 'now').mockReturnValue(now + ms + 1);
}

/** The live or revoked tokens the simulator issued to this user. */
function tokensOf(simulator: RunningSimulator, userId: string): string[] {
  return simulator.state.issuedTokens().filter((token) => simulator.state.token(API_KEY, token)?.userId === userId);
}

/** `auth.checkToken` straight at the simulator's API: `ok`, or the error code. */
async function checkToken(simulator: RunningSimulator, token: string): Promise<string> {
  const params = { api_key: API_KEY, auth_token: token };
  const answer = await request(simulator.url).post('/api/auth.checkToken/json').type('form').send({ ...params, api_sig: sign(params, API_SECRET, 'auth.checkToken') }).expect(200);
  return answer.body.api.status === 'ok' ? 'ok' : String(answer.body.api.code);
}

/** The applications listed on a settings page: api key → the permission lines in words. */
function listed(html: string): Record<string, string[]> {
  const apps: Record<string, string[]> = {};
  for (const match of html.matchAll(/<li data-api-key="([^"]+)">([\s\S]*?)<\/form>\s*<\/li>/g)) {
    apps[match[1] as string] = [...(match[2] as string).matchAll(/<li data-item="(\w+)" data-level="(\w+)">([^<]+)<\/li>/g)].map((m) => `${m[1]}:${m[2]} ${m[3]}`);
  }
  return apps;
}

/** The revoke form's fields on a settings page (the first application's). */
function revokeFields(html: string): Record<string, string> {
  const form = /<form method="post" action="[^"]*\/apps\/settings\/revoke">([\s\S]*?)<\/form>/.exec(html)?.[1] ?? '';
  return Object.fromEntries([...form.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)].map((m) => [m[1] as string, m[2] as string]));
}

describe('the simulator\'s settings page, "Your authorized applications"', () => {
  const fx = useAppAgainstSimulator();
  /** A browser at the simulator: its own cookies (the CSRF cookie), no Fetch Metadata. */
  let browser: TestAgent;
  beforeEach(() => {
    browser = request.agent(fx.simulator.url);
  });

  it('lists the application a real connect flow authorized, with the permissions granted in words', async () => {
    await walkFlow(request.agent(fx.handle.app), fx.simulator, { userId: '501', query: 'perm_doc=write&perm_profile=read' });
    const page = await browser.get('/apps/settings?user_id=501').expect(200);
    expect(page.headers['cache-control']).toBe('no-store');
    expect(page.text).toContain('<h1>Your authorized applications</h1>');
    expect(page.text).toContain('<h2>Test Site</h2>');
    expect(page.text).toContain('<option value="501" selected>');
    expect(listed(page.text)).toEqual({
      [API_KEY]: [
        'doc:read See your private photos and documents',
        'doc:write Upload and edit your photos and documents',
        'profile:read See your profile, including its private details',
      ],
    });
    expect(page.text).toContain('>Revoke Test Site</button>');
  });

  it('revokes: the simulator answers 107 to the token, and the app\'s check=1 reports the connection gone', async () => {
    const site = request.agent(fx.handle.app);
    await walkFlow(site, fx.simulator, { userId: '502' });
    expect((await site.get('/connection?check=1').expect(200)).body).toMatchObject({ connected: true });
    const [token] = tokensOf(fx.simulator, '502');
    expect(await checkToken(fx.simulator, token as string)).toBe('ok');

    const page = await browser.get('/apps/settings?user_id=502').expect(200);
    const fields = revokeFields(page.text);
    expect(fields).toEqual({ api_key: API_KEY, user_id: '502', _csrf: csrfOf(page.text) });
    const revoked = await browser.post('/apps/settings/revoke').type('form').send(fields).expect(303);
    expect(revoked.headers.location).toBe(`/apps/settings?user_id=502&revoked=${API_KEY}`);

    const after = await browser.get(revoked.headers.location as string).expect(200);
    expect(after.text).toContain('You removed Test Site: it can no longer use your account.');
    expect(after.text).toContain('No application can use your account');
    expect(listed(after.text)).toEqual({});
    expect(await checkToken(fx.simulator, token as string)).toBe('107');

    later(CHECK_REUSE_MS);
    expect((await site.get('/connection?check=1').expect(200)).body).toEqual({ connected: false, reason: 'revoked' });
    expect(fx.handle.logs.events().map((e) => e.event)).toContain('token_revoked');
  });

  it('revokes only that user\'s tokens for that application', async () => {
    await walkFlow(request.agent(fx.handle.app), fx.simulator, { userId: '503' });
    await walkFlow(request.agent(fx.handle.app), fx.simulator, { userId: '504' });
    const page = await browser.get('/apps/settings?user_id=503').expect(200);
    await browser.post('/apps/settings/revoke').type('form').send(revokeFields(page.text)).expect(303);
    expect(await checkToken(fx.simulator, tokensOf(fx.simulator, '503')[0] as string)).toBe('107');
    expect(await checkToken(fx.simulator, tokensOf(fx.simulator, '504')[0] as string)).toBe('ok');
    expect(Object.keys(listed((await browser.get('/apps/settings?user_id=504').expect(200)).text))).toEqual([API_KEY]);
  });

  it('refuses a forged revocation with a 403 page and revokes nothing', async () => {
    await walkFlow(request.agent(fx.handle.app), fx.simulator, { userId: '505' });
    const page = await browser.get('/apps/settings?user_id=505').expect(200);
    const fields = revokeFields(page.text);
    const cookie = ([] as string[]).concat(page.headers['set-cookie'] ?? []).find((line) => line.startsWith(`${SIMULATOR_CSRF_COOKIE}=`))?.split(';', 1)[0] as string;
    expect(cookie).toBeDefined();
    const { _csrf: _token, ...withoutToken } = fields;
    const forged = [
      // another site's page, even with a copied token and the visitor's cookie
      request(fx.simulator.url).post('/apps/settings/revoke').set('Origin', 'http://attacker.example').set('Cookie', cookie).type('form').send(fields),
      request(fx.simulator.url).post('/apps/settings/revoke').set('Sec-Fetch-Site', 'cross-site').set('Cookie', cookie).type('form').send(fields),
      // no token, a token without its cookie, a forged token
      request(fx.simulator.url).post('/apps/settings/revoke').set('Cookie', cookie).type('form').send(withoutToken),
      request(fx.simulator.url).post('/apps/settings/revoke').type('form').send(fields),
      request(fx.simulator.url).post('/apps/settings/revoke').set('Cookie', cookie).type('form').send({ ...fields, _csrf: 'forged' }),
    ];
    for (const answer of await Promise.all(forged)) {
      expect(answer.status).toBe(403);
      expect(answer.headers.location).toBeUndefined();
      expect(answer.text).toContain('sent from another site or lacked its security token');
      expect(answer.text).toContain('Nothing was revoked');
      expect(answer.text).toContain('ipernity simulator');
    }
    expect(await checkToken(fx.simulator, tokensOf(fx.simulator, '505')[0] as string)).toBe('ok');
    expect(Object.keys(listed((await browser.get('/apps/settings?user_id=505').expect(200)).text))).toEqual([API_KEY]);
  });

  it('answers a 400 page saying what to do for an unknown account or application', async () => {
    await walkFlow(request.agent(fx.handle.app), fx.simulator, { userId: '506' });
    const page = await browser.get('/apps/settings?user_id=506').expect(200);
    const fields = revokeFields(page.text);
    const noUser = await browser.post('/apps/settings/revoke').type('form').send({ ...fields, user_id: '999999' }).expect(400);
    expect(noUser.text).toContain('Unknown account');
    expect(noUser.text).toContain('choose an account offered there');
    const noApp = await browser.post('/apps/settings/revoke').type('form').send({ ...fields, api_key: 'no-such-key' }).expect(400);
    expect(noApp.text).toContain('Unknown application');
    expect(noApp.text).toContain('use the Revoke button next to the application');
    expect(noApp.text).toContain('href="/apps/settings?user_id=506"');
    expect(await checkToken(fx.simulator, tokensOf(fx.simulator, '506')[0] as string)).toBe('ok');
    expect((await browser.get('/apps/settings?user_id=999999').expect(400)).text).toContain('Unknown account');
    expect((await browser.get('/apps/settings?user_id=1&user_id=2').expect(400)).text).toContain('Unknown account');
  });

  it('shows the default account, and says calmly when no application can use it', async () => {
    const { app, state } = createSimulatorApp({ apps: [{ apiKey: 'K', apiSecret: 'S', name: 'Nobody uses me' }] });
    const page = await request(app).get('/apps/settings').expect(200);
    expect(page.text).toContain('<option value="1234" selected>Kal-El (Superman)</option>');
    expect(page.text).toContain('No application can use your account.');
    expect(page.text).not.toContain('Nobody uses me');
    // nothing to revoke: no form, no CSRF cookie
    expect(page.text).not.toContain('name="_csrf"');
    expect(page.headers['set-cookie']).toBeUndefined();
    // a grant shows up once exchanged for a token, and a frob alone is no authorization
    state.createAuthorizedFrob('K', '1234', { network: 'delete' });
    expect((await request(app).get('/apps/settings').expect(200)).text).toContain('No application can use your account.');
    const frob = state.createAuthorizedFrob('K', '1234', { network: 'delete' });
    state.exchangeFrob('K', frob);
    expect(listed((await request(app).get('/apps/settings').expect(200)).text)).toEqual({
      K: ['network:read See your contacts and their relationship to you', 'network:write Add contacts and change how they are listed', 'network:delete Remove your contacts'],
    });
  });

  it('escapes the application\'s name on the settings page', async () => {
    const { app, state } = createSimulatorApp({ apps: [{ apiKey: 'K', apiSecret: 'S', name: '<img src=x onerror=alert(1)>' }] });
    state.exchangeFrob('K', state.createAuthorizedFrob('K', '1234', {}));
    const page = await request(app).get('/apps/settings?revoked=K').expect(200);
    expect(page.text).not.toContain('<img src=x');
    expect(page.text).toContain('<h2>&lt;img src=x onerror=alert(1)&gt;</h2>');
    expect(page.text).toContain('It can see only what is public on your account.');
  });

  it('the home page links to it only in sandbox mode', async () => {
    const site = request.agent(fx.handle.app);
    await walkFlow(site, fx.simulator, { userId: '507' });
    const home = await site.get('/').expect(200);
    expect(home.text).toContain('id="connected-user"');
    expect(home.text).not.toContain('manage-on-ipernity');
  });
});

describe('the settings page in sandbox mode', () => {
  let server: http.Server;
  let handle: ReturnType<typeof createApp>;
  let base: string;
  beforeAll(async () => {
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    const config = loadConfig({ PORT: String(port), PUBLIC_URL: base, SESSION_STORE: 'memory', LOG_LEVEL: 'silent' });
    expect(config.sandbox).toBe(true);
    handle = createApp(config, { logger: createLogger('silent', { write: () => undefined }) });
    server = http.createServer(handle.app);
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await handle.close();
  });
  afterEach(() => {
    jest.restoreAllMocks();
  });

  /** The warning page's form, sent: answers the signed link to the simulator's authorization page. */
  async function authorizationLink(agent: TestAgent): Promise<URL> {
    const warning = await agent.get('/connect').expect(200);
    const fields = Object.fromEntries([...warning.text.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)].map((m) => [m[1] as string, decodeHtml(m[2] as string)]));
    const start = await agent.post('/connect').type('form').send(fields).expect(303);
    return new URL(start.headers.location as string);
  }

  /** Connects through the sandbox as a browser without Fetch Metadata does: warning page, simulator's form, callback. */
  async function connect(agent: TestAgent): Promise<void> {
    const link = await authorizationLink(agent);
    const page = await agent.get(link.pathname + link.search).expect(200);
    const decision = await agent.post(link.pathname).type('form').send({ ...Object.fromEntries(link.searchParams), _csrf: csrfOf(page.text), decision: 'authorize' }).expect(303);
    const callback = new URL(decision.headers.location as string);
    await agent.get(callback.pathname + callback.search).expect(303);
  }

  it('shows the sandbox application as ipernity shows a registered one', async () => {
    const agent = request.agent(base);
    const link = await authorizationLink(agent);
    const page = await agent.get(link.pathname + link.search).set('Accept-Language', 'fr').expect(200);
    const host = new URL(base).host;
    expect(page.text).toContain('<h1>Authorize ipernity-connect</h1>');
    expect(page.text).toContain(`Connects your ipernity account to ${host}`);
    expect(page.text).toContain(`lang="fr">ipernity-connect vous permet de connecter votre compte ipernity à ${host}`);
    expect(page.text).toContain(`The operator of ${host} (sandbox)`);
    expect(page.text).toContain(`<a href="${base}/" rel="noopener noreferrer">`);
    // styled within the app's Content-Security-Policy: a stylesheet of the simulator's own, no inline style
    expect(page.headers['content-security-policy']).toContain("style-src 'self'");
    expect(page.text).not.toMatch(/<style|style="/);
    expect(page.text).toContain(`<link rel="stylesheet" href="${SANDBOX_PATH}/static/simulator.css">`);
    const css = await agent.get(`${SANDBOX_PATH}/static/simulator.css`).expect(200);
    expect(css.headers['content-type']).toMatch(/^text\/css/);
  });

  it('is linked from the home page ("Manage on ipernity", translated), and a revocation there is what the server notices', async () => {
    const agent = request.agent(base);
    await connect(agent);
    const home = await agent.get('/').expect(200);
    expect(home.text).toContain(`<a id="manage-on-ipernity" href="${SANDBOX_PATH}/apps/settings">Manage on ipernity</a>`);
    expect((await agent.get('/').set('Accept-Language', 'fr').expect(200)).text).toContain('>Gérer sur ipernity</a>');
    expect((await agent.get('/').set('Accept-Language', 'de').expect(200)).text).toContain('>Auf ipernity verwalten</a>');

    const settings = await agent.get(`${SANDBOX_PATH}/apps/settings`).expect(200);
    expect(settings.text).toContain('<h2>ipernity-connect</h2>');
    expect(listed(settings.text)[handle.config.ipernity.apiKey]).toEqual(['doc:read See your private photos and documents', 'profile:read See your profile, including its private details']);
    const fields = revokeFields(settings.text);

    // mounted in the app, a revocation from another site is refused as the authorization form's is
    const forged = await agent.post(`${SANDBOX_PATH}/apps/settings/revoke`).set('Origin', 'http://attacker.example').type('form').send(fields).expect(403);
    expect(forged.text).toContain('Nothing was revoked');
    expect((await agent.get('/connection').expect(200)).body.connected).toBe(true);

    const revoked = await agent.post(`${SANDBOX_PATH}/apps/settings/revoke`).set('Origin', base).type('form').send(fields).expect(303);
    expect(revoked.headers.location).toBe(`${SANDBOX_PATH}/apps/settings?user_id=1234&revoked=${encodeURIComponent(handle.config.ipernity.apiKey)}`);
    expect((await agent.get(revoked.headers.location as string).expect(200)).text).toContain('You removed ipernity-connect');

    later(CHECK_REUSE_MS);
    expect((await agent.get('/connection?check=1').expect(200)).body).toEqual({ connected: false, reason: 'revoked' });
    const after = await agent.get('/').expect(200);
    expect(after.text).toContain('id="connect"');
    expect(after.text).not.toContain('manage-on-ipernity');
  });
});
