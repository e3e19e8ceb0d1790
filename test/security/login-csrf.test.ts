import { sign as signCookie } from 'cookie-signature';
import request from 'supertest';
import type TestAgent from 'supertest/lib/agent';
import { authorizeAtSimulator, csrfOf, SESSION_SECRET, useAppAgainstSimulator, walkFlow, type FlowOptions, type RunningSimulator } from '../support/harness';

const SID = 'ipernity-connect.sid';

/** The `name=value` of a cookie a response sets. */
function setCookie(response: request.Response, name: string): string | undefined {
  return ([] as string[]).concat(response.headers['set-cookie'] ?? []).find((cookie) => cookie.startsWith(`${name}=`))?.split(';')[0];
}

/** Warning page and POST /connect in this browser; answers the signed link to ipernity. */
async function startFlow(agent: TestAgent, body: Record<string, string> = { perm_doc: 'read' }): Promise<string> {
  const warning = await agent.get('/connect').expect(200);
  const start = await agent.post('/connect').type('form').send({ _csrf: csrfOf(warning.text), ...body }).expect(303);
  return start.headers.location as string;
}

/** An attacker authorizes the site's public link as himself and keeps the callback address, frob included. */
async function attackersCallback(simulator: RunningSimulator, agent: TestAgent, options: FlowOptions = { userId: '666' }): Promise<string> {
  const callback = await authorizeAtSimulator(simulator, await startFlow(agent), options);
  return callback.pathname + callback.search;
}

describe('login CSRF inside a pending attempt (web mode)', () => {
  const fx = useAppAgainstSimulator();
  beforeEach(() => {
    fx.simulator.state.users.set('666', { userId: '666', username: 'mallory', realname: 'Mallory' });
  });

  it('spends the attempt on the first callback, whatever it carries, so a forged callback gets one try', async () => {
    const attacker = request.agent(fx.handle.app);
    const forged = await attackersCallback(fx.simulator, attacker);
    const victim = request.agent(fx.handle.app);
    const link = await startFlow(victim);
    // a frob ipernity refuses (spent, or never issued) spends the attempt all the same
    await attacker.get(forged).expect(303); // the attacker spends his own frob: the victim's browser brings a refused one
    expect((await victim.get(forged).expect(400)).text).toContain('already used');
    const own = await authorizeAtSimulator(fx.simulator, link);
    expect((await victim.get(own.pathname + own.search).expect(400)).text).toContain('ATTEMPT_MISSING');
    expect((await victim.get('/connection')).body).toEqual({ connected: false });
  });

  it.each([
    ['no frob', ''],
    ['an empty frob', '?frob='],
    ['a malformed frob', '?frob=%3Cscript%3E'],
    ['a repeated frob', '?frob=123456789-0ad5e2a8&frob=123456789-0ad5e2a9'],
  ])('spends the attempt on a callback with %s', async (_label, query) => {
    const victim = request.agent(fx.handle.app);
    await startFlow(victim);
    await victim.get(`/connect/callback${query}`);
    expect((await victim.get(`/connect/callback?frob=123456789-0ad5e2a8`).expect(400)).text).toContain('ATTEMPT_MISSING');
  });

  it('lets a forged callback with a valid frob connect once at most, and every page then names the account', async () => {
    const attacker = request.agent(fx.handle.app);
    const first = await attackersCallback(fx.simulator, attacker);
    const second = await attackersCallback(fx.simulator, attacker);
    const victim = request.agent(fx.handle.app);
    await startFlow(victim);
    // the limit that remains in web mode: a frob of the same key, inside a pending attempt, cannot be told apart
    await victim.get(first).expect(303);
    expect((await victim.get(second).expect(303)).headers.location).toBe('/');
    expect((await victim.get('/connection')).body.user).toMatchObject({ userId: '666' });
    for (const path of ['/', '/connect', '/connect?perm_doc=write']) {
      const page = await victim.get(path);
      expect(page.text).toContain('Connected as Mallory (mallory)');
      expect(page.text).toMatch(/<form method="post" action="\/disconnect" class="viewer"[\s\S]*_csrf[\s\S]*Not you\? Disconnect/);
    }
  });

  it('never shows one visitor the name of another on a cached warning page', async () => {
    const connected = request.agent(fx.handle.app);
    await walkFlow(connected, fx.simulator, { userId: '666' });
    expect((await connected.get('/connect').expect(200)).text).toContain('Mallory');
    for (const headers of [{}, { 'Sec-Fetch-Site': 'same-origin' }]) {
      const page = await request(fx.handle.app).get('/connect').set(headers).expect(200);
      expect(page.text).not.toContain('Mallory');
      expect(page.text).not.toContain('id="viewer"');
    }
  });

  it('returns each tab to where it started: the attempt whose permissions equal the grant, newest first among equals', async () => {
    const agent = request.agent(fx.handle.app);
    await startFlow(agent, { perm_doc: 'read', return_to: '/photos-first-tab' });
    const docs = await startFlow(agent, { perm_doc: 'read', return_to: '/photos' });
    const blog = await startFlow(agent, { perm_blog: 'read', return_to: '/blog' });
    // the newest attempt asked for the blog: the grant for photos goes back to the newest photos tab
    const back = await authorizeAtSimulator(fx.simulator, docs);
    expect((await agent.get(back.pathname + back.search).expect(303)).headers.location).toBe('/photos');
    expect((await agent.get('/connection')).body.permissions).toMatchObject({ doc: 'read', blog: 'none' });
    // the blog tab's attempt is still pending, and comes back to its own page
    const blogBack = await authorizeAtSimulator(fx.simulator, blog);
    expect((await agent.get(blogBack.pathname + blogBack.search).expect(303)).headers.location).toBe('/blog');
  });

  it('spends neither the attempt nor the frob while the session store is down, so that trying again works', async () => {
    const agent = request.agent(fx.handle.app);
    const back = await authorizeAtSimulator(fx.simulator, await startFlow(agent));
    const store = fx.handle.sessions.store;
    const get = jest.spyOn(store, 'get').mockImplementation((_sid, done) => setImmediate(() => done(new Error('store away'))));
    const set = jest.spyOn(store, 'set').mockImplementation((_sid, _data, done) => setImmediate(() => done?.(new Error('store away'))));
    const getToken = jest.spyOn(fx.handle.client, 'getToken');
    const down = await agent.get(back.pathname + back.search).expect(503);
    expect(down.text).toContain('SESSION_STORE_UNAVAILABLE');
    expect(getToken).not.toHaveBeenCalled();
    expect(setCookie(down, 'ipernity-connect.attempts')).toBeUndefined();
    get.mockRestore();
    set.mockRestore();
    await agent.get(back.pathname + back.search).expect(303);
    expect((await agent.get('/connection')).body.connected).toBe(true);
  });
});

describe('session fixation', () => {
  const fx = useAppAgainstSimulator();

  it('gives a new id to a stored session without createdAt when its visitor connects', async () => {
    const sid = 'planted-session-id-without-created-at';
    await new Promise<void>((resolve, reject) =>
      fx.handle.sessions.store.set(sid, { cookie: { originalMaxAge: 60_000, path: '/', httpOnly: true } } as never, (error) => (error ? reject(error) : resolve())),
    );
    const agent = request.agent(fx.handle.app);
    agent.jar.setCookie(`${SID}=${encodeURIComponent(`s:${signCookie(sid, SESSION_SECRET)}`)}; Path=/`, '127.0.0.1', '/');
    const done = await walkFlow(agent, fx.simulator);
    expect(done.status).toBe(303);
    const given = setCookie(done, SID);
    expect(given).toBeDefined();
    expect(decodeURIComponent(given as string)).not.toContain(sid);
    expect((await agent.get('/connection')).body.connected).toBe(true);
  });
});

describe('CSRF tokens bound to the session', () => {
  const fx = useAppAgainstSimulator();

  it('refuses a token made for another session, even with its CSRF cookie (a cookie planted over http)', async () => {
    // the attacker's own CSRF cookie and the token that goes with it, made without a session
    const attacker = await request(fx.handle.app).get('/connect').expect(200);
    const plantedCsrf = setCookie(attacker, 'ipernity-connect.csrf') as string;
    const victim = request.agent(fx.handle.app);
    await walkFlow(victim, fx.simulator);
    const sid = victim.jar.getCookie(SID, { domain: '127.0.0.1', path: '/', secure: false, script: false });
    const forged = await request(fx.handle.app)
      .post('/disconnect')
      .set('Cookie', [plantedCsrf, `${SID}=${sid?.value}`].join('; '))
      .type('form')
      .send({ _csrf: csrfOf(attacker.text) })
      .expect(403);
    expect(forged.text).toContain('CSRF_INVALID');
    expect((await victim.get('/connection')).body.connected).toBe(true);
    // the victim's own page carries a token for their session, which works
    const home = await victim.get('/').expect(200);
    await victim.post('/disconnect').type('form').send({ _csrf: csrfOf(home.text) }).expect(200);
    expect((await victim.get('/connection')).body.connected).toBe(false);
  });
});

describe('the countdown (CONNECT_COUNTDOWN_SECONDS)', () => {
  const fx = useAppAgainstSimulator({ CONNECT_COUNTDOWN_SECONDS: '5' });

  it.each([
    ['same-origin', true],
    ['none', true],
    ['cross-site', false],
    ['same-site', false],
    [undefined, false],
  ])('runs on a warning page reached with Sec-Fetch-Site %s: %s (a page another site opens never submits itself)', async (site, runs) => {
    // asked the other way first, so that a cached page cannot answer for this one
    const other = site === 'same-origin' ? 'cross-site' : 'same-origin';
    await request(fx.handle.app).get('/connect').set('Sec-Fetch-Site', other).expect(200);
    const page = request(fx.handle.app).get('/connect');
    if (site) page.set('Sec-Fetch-Site', site);
    const text = (await page.expect(200)).text;
    expect(text.includes('data-countdown="5"')).toBe(runs);
    expect(text.includes('countdown.js')).toBe(runs);
  });
});
