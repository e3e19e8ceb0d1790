import request from 'supertest';
import { renderPng } from '../../src/simulator/images';
import { authorizeAtSimulator, csrfOf, useAppAgainstSimulator, walkFlow, API_SECRET, type Fixture } from '../support/harness';

const PNG = renderPng({ pattern: 'rings', colour: [10, 120, 200], background: [250, 250, 250] }, 64, 48);

/** OAuth mode against the simulator: its endpoints under `<simulator>/apps/oauth`. */
function useOAuthApp(simulatorOptions: Parameters<typeof useAppAgainstSimulator>[1] = {}): Fixture {
  const fx = useAppAgainstSimulator({ IPERNITY_API_METHODS: 'test.echo,doc.getList,upload.file,upload.checkTickets' }, { callbackUrl: null, ...simulatorOptions });
  beforeEach(() => {
    fx.rebuild({ IPERNITY_AUTH_MODE: 'oauth', IPERNITY_OAUTH_URL: `${fx.simulator.url}/apps/oauth` });
  });
  return fx;
}

/** The warning page's form, POSTed: answers the 303 to ipernity's OAuth authorization page. */
async function start(agent: ReturnType<typeof request.agent>, query = 'perm_doc=read'): Promise<URL> {
  const warning = await agent.get(`/connect?${query}`).expect(200);
  const fields = Object.fromEntries([...warning.text.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)].map((m) => [m[1], m[2]]));
  const started = await agent.post('/connect').type('form').send(fields).expect(303);
  return new URL(started.headers.location as string);
}

describe('OAuth mode (IPERNITY_AUTH_MODE=oauth)', () => {
  const fx = useOAuthApp();

  it('connects through a request token, the authorization page and an access token, and the connection works like any other', async () => {
    const agent = request.agent(fx.handle.app);
    const link = await start(agent, 'perm_doc=write&return_to=%2Fafter');
    expect(link.pathname).toBe('/apps/oauth/authorize');
    expect(link.searchParams.get('perm_doc')).toBe('write');
    // OAuth's link carries the request token and the permissions, never the API key's signature
    expect([...link.searchParams.keys()].sort()).toEqual(['oauth_token', 'perm_doc']);
    const callback = await authorizeAtSimulator(fx.simulator, link.toString());
    expect(callback.searchParams.get('oauth_token')).toBe(link.searchParams.get('oauth_token'));
    const done = await agent.get(callback.pathname + callback.search).expect(303);
    expect(done.headers.location).toBe('/after');
    expect((await agent.get('/connection').expect(200)).body).toMatchObject({ connected: true, user: { userId: '1234', username: 'Superman' }, permissions: { doc: 'write' } });

    // gateway calls and an upload, signed the OAuth way without the gateway knowing
    const csrf = csrfOf((await agent.get('/connect').expect(200)).text);
    const echo = await agent.post('/api/ipernity/test.echo').set('X-CSRF-Token', csrf).type('form').send({ echo: 'hello' }).expect(200);
    expect(echo.body.echo).toBe('hello');
    const list = await agent.get('/api/ipernity/doc.getList?user_id=1234');
    expect([list.status, list.body]).toEqual([200, expect.objectContaining({ docs: expect.objectContaining({ page: expect.anything() }) })]);
    const uploaded = await agent.post('/api/ipernity/upload.file').set('X-CSRF-Token', csrf).field('title', 'Signed the OAuth way').field('async', '0').attach('file', PNG, { filename: 'a.png', contentType: 'image/png' }).expect(200);
    expect(uploaded.body.doc_id).toEqual(expect.any(String));
  });

  it('keeps the API secret, the request token\'s secret, the access token and its secret out of every answer and log line', async () => {
    const agent = request.agent(fx.handle.app);
    const link = await start(agent);
    const callback = await authorizeAtSimulator(fx.simulator, link.toString());
    const done = await agent.get(callback.pathname + callback.search).expect(303);
    const pages = [JSON.stringify(done.headers), (await agent.get('/')).text, (await agent.get('/connection')).text, (await agent.get('/api/ipernity/doc.getList?user_id=1234')).text];
    const secrets = [API_SECRET, ...fx.simulator.state.issuedTokens()];
    expect(secrets.length).toBeGreaterThan(3);
    for (const secret of secrets) {
      for (const page of pages) expect(page).not.toContain(secret);
      expect(fx.handle.logs.text()).not.toContain(secret);
    }
    // the attempts cookie holds the request token's secret sealed, never readable
    expect(fx.handle.logs.events().map((e) => e.event)).toEqual(expect.arrayContaining(['flow_started', 'connected']));
  });

  it('refuses a callback carrying another browser\'s request token (login CSRF): 400 OAUTH_TOKEN_MISMATCH, nothing exchanged, the victim\'s own attempt intact', async () => {
    // the attacker authorizes their own account and keeps the callback address instead of following it
    const attacker = request.agent(fx.handle.app);
    const attackersCallback = await authorizeAtSimulator(fx.simulator, (await start(attacker)).toString(), { userId: '666' });
    const victim = request.agent(fx.handle.app);
    const victimsLink = await start(victim);
    const forged = await victim.get(attackersCallback.pathname + attackersCallback.search).expect(400);
    expect(forged.text).toContain('Error code: OAUTH_TOKEN_MISMATCH');
    expect((await victim.get('/connection')).body.connected).toBe(false);
    // the victim's attempt was not spent: their own authorization still connects them, as themselves
    const own = await authorizeAtSimulator(fx.simulator, victimsLink.toString());
    await victim.get(own.pathname + own.search).expect(303);
    expect((await victim.get('/connection')).body.user.userId).toBe('1234');
    // and the attacker's request token was never exchanged: it still connects the attacker's own browser
    await attacker.get(attackersCallback.pathname + attackersCallback.search).expect(303);
    expect((await attacker.get('/connection')).body.user.userId).toBe('666');
  });

  it('refuses the same forged callback in a browser that started nothing (400 ATTEMPT_MISSING) and a malformed or repeated token (400 OAUTH_TOKEN_MISMATCH)', async () => {
    const attacker = request.agent(fx.handle.app);
    const callback = await authorizeAtSimulator(fx.simulator, (await start(attacker)).toString());
    const victim = request.agent(fx.handle.app);
    expect((await victim.get(callback.pathname + callback.search).expect(400)).text).toContain('Error code: ATTEMPT_MISSING');
    await start(victim);
    for (const query of ['oauth_token=%3Cscript%3E', 'oauth_token=a&oauth_token=b', 'oauth_token=']) {
      const page = await victim.get(`/connect/callback?${query}`).expect(400);
      expect(page.text).toContain('OAUTH_TOKEN_MISMATCH');
      expect(page.text).toContain('This authorization belongs to another attempt');
    }
  });

  it('answers a replayed callback without exchanging again: the connected browser goes on, another browser is refused', async () => {
    const agent = request.agent(fx.handle.app);
    const callback = await authorizeAtSimulator(fx.simulator, (await start(agent, 'perm_doc=read&return_to=%2Fphotos')).toString());
    await agent.get(callback.pathname + callback.search).expect(303);
    const tokensBefore = fx.simulator.state.issuedTokens().length;
    const again = await agent.get(callback.pathname + callback.search).expect(303);
    expect(again.headers.location).toBe('/photos');
    expect(fx.simulator.state.issuedTokens().length).toBe(tokensBefore);
    const other = request.agent(fx.handle.app);
    await start(other);
    expect((await other.get(callback.pathname + callback.search).expect(400)).text).toContain('Error code: OAUTH_TOKEN_MISMATCH');
  });

  it('connects each tab\'s attempt with its own token: the second tab\'s callback returns where that tab started', async () => {
    const agent = request.agent(fx.handle.app);
    const first = await start(agent, 'perm_doc=read&return_to=%2Ffirst');
    await start(agent, 'perm_doc=read&return_to=%2Fsecond');
    const callback = await authorizeAtSimulator(fx.simulator, first.toString());
    expect((await agent.get(callback.pathname + callback.search).expect(303)).headers.location).toBe('/first');
  });

  it('says the visitor declined, and spends that attempt only', async () => {
    const agent = request.agent(fx.handle.app);
    const link = await start(agent);
    const callback = await authorizeAtSimulator(fx.simulator, link.toString(), { decision: 'deny' });
    expect(callback.searchParams.get('oauth_token')).toBeNull();
    expect(callback.searchParams.get('denied')).toBe(link.searchParams.get('oauth_token'));
    const page = await agent.get(callback.pathname + callback.search).expect(200);
    expect(page.text).toContain('You did not connect your ipernity account');
    expect((await agent.get(`/connect/callback?oauth_token=${link.searchParams.get('oauth_token') ?? ''}`).expect(400)).text).toContain('Error code: ATTEMPT_MISSING');
  });

  it('asks for more permission on top of what is granted, and keeps the new grant', async () => {
    const agent = request.agent(fx.handle.app);
    const first = await walkFlow(agent, fx.simulator, { query: 'perm_doc=read&perm_profile=read' });
    expect(first.status).toBe(303);
    const upgrade = await start(agent, 'perm_doc=write');
    expect(upgrade.searchParams.get('perm_doc')).toBe('write');
    expect(upgrade.searchParams.get('perm_profile')).toBe('read');
    const callback = await authorizeAtSimulator(fx.simulator, upgrade.toString());
    await agent.get(callback.pathname + callback.search).expect(303);
    expect((await agent.get('/connection')).body.permissions).toMatchObject({ doc: 'write', profile: 'read' });
  });

  it('notices a revocation on ipernity (the settings page revokes OAuth tokens too): the gateway answers 401 CONNECTION_REVOKED', async () => {
    const agent = request.agent(fx.handle.app);
    expect((await walkFlow(agent, fx.simulator)).status).toBe(303);
    expect(fx.simulator.state.revokeApp('1234', fx.handle.config.ipernity.apiKey)).toBeGreaterThan(0);
    expect((await agent.get('/api/ipernity/doc.getList?user_id=1234').expect(401)).body.error.code).toBe('CONNECTION_REVOKED');
    expect((await agent.get('/connection')).body.connected).toBe(false);
  });

  it('says so when ipernity refuses the site\'s clock (132): 502 with its own page, and a log line telling the operator to check the clock', async () => {
    const agent = request.agent(fx.handle.app);
    const warning = await agent.get('/connect?perm_doc=read').expect(200);
    // the simulator's clock, ten minutes ahead of the server's signatures
    const now = Date.now();
    jest.spyOn(Date, 'now').mockImplementation(() => now + 10 * 60 * 1000);
    const page = await agent.post('/connect').type('form').send({ _csrf: csrfOf(warning.text), perm_doc: 'read' }).expect(502);
    jest.restoreAllMocks();
    expect(page.text).toContain('IPERNITY_OAUTH_CLOCK_SKEW');
    expect(page.text).toContain('clock is not right');
    expect(fx.handle.logs.text()).toContain("check this server's clock");
  });
});

describe('OAuth mode with a web key (one with a registered callback URL)', () => {
  const fx = useOAuthApp({ callbackUrl: 'http://127.0.0.1/elsewhere/callback' });

  it('sends the browser back to the request token\'s oauth_callback, not the key\'s registered one', async () => {
    const agent = request.agent(fx.handle.app);
    const callback = await authorizeAtSimulator(fx.simulator, (await start(agent)).toString());
    expect(callback.pathname).toBe('/connect/callback');
    await agent.get(callback.pathname + callback.search).expect(303);
    expect((await agent.get('/connection')).body.connected).toBe(true);
  });
});

describe('OAuth mode with short-lived request tokens', () => {
  const fx = useOAuthApp({ frobTtlMs: 300 });

  it('refuses an expired request token at the authorization page, and at the exchange with the "start again" page (400)', async () => {
    const late = request.agent(fx.handle.app);
    const link = await start(late);
    await new Promise((resolve) => setTimeout(resolve, 400));
    const refused = await request(fx.simulator.url).get(link.pathname + link.search).expect(400);
    expect(refused.text).toContain('Error 107');

    const slow = request.agent(fx.handle.app);
    const callback = await authorizeAtSimulator(fx.simulator, (await start(slow)).toString());
    await new Promise((resolve) => setTimeout(resolve, 400));
    const page = await slow.get(callback.pathname + callback.search).expect(400);
    expect(page.text).toContain('IPERNITY_API_ERROR');
    expect(page.text).toContain('expired or was already used');
    expect((await slow.get('/connection')).body.connected).toBe(false);
  });
});
