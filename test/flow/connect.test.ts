import express from 'express';
import request from 'supertest';
import { sign } from '../../src/ipernity';
import { API_KEY, API_SECRET, authorizeAtSimulator, csrfOf, useAppAgainstSimulator, walkFlow } from '../support/harness';
import { CHECK_REUSE_MS } from '../../src/flow/connection-json';

/** Moves the clock the server reads on by `ms` and a little more (restored after each test). */
function later(ms: number): void {
  const now = Date.now();
  jest.spyOn(Date, 'now').mockReturnValue(now + ms + 1);
}

describe('the connect routes', () => {
  const fx = useAppAgainstSimulator();

  describe('GET /connect', () => {
    it('names the application and the default permissions in words, and creates no session', async () => {
      const page = await request(fx.handle.app).get('/connect').expect(200).expect('Cache-Control', 'no-store');
      expect(page.text).toContain('Test Site will now take you to ipernity.com');
      expect(page.text).toContain('see your photos, videos and documents, including private ones');
      expect(page.text).toContain('see your profile');
      expect(page.text).toContain('name="perm_doc" value="read"');
      const cookies = ([] as string[]).concat(page.headers['set-cookie'] ?? []);
      expect(cookies.some((c) => c.startsWith('ipernity-connect.sid='))).toBe(false);
    });

    it('describes every level up to the one asked for', async () => {
      const page = await request(fx.handle.app).get('/connect?perm_doc=delete').expect(200);
      expect(page.text).toContain('see your photos');
      expect(page.text).toContain('add photos and documents');
      expect(page.text).toContain('delete your photos');
    });

    it.each([
      ['an unknown item', 'perm_photos=read', 'perm_photos'],
      ['an unknown level', 'perm_doc=admin', 'perm_doc'],
      ['delete for the profile', 'perm_profile=delete', 'perm_profile'],
      ['a repeated parameter', 'perm_doc=read&perm_doc=write', 'perm_doc'],
      ['an empty level', 'perm_blog=', 'perm_blog'],
    ])('answers 400 naming the parameter for %s', async (_label, query, parameter) => {
      const page = await request(fx.handle.app).get(`/connect?${query}`).expect(400);
      expect(page.text).toContain('PERMISSION_INVALID');
      expect(page.text).toContain(parameter);
    });

    it.each([
      ['//evil.example', '/'],
      ['/\\evil.example', '/'],
      ['https://evil.example/', '/'],
      ['javascript:alert(1)', '/'],
      ['/ok\r\nSet-Cookie:x', '/'],
      ['/ok%0d%0a', '/ok%0d%0a'],
      ['/\tevil', '/'],
      ['gallery', '/'],
      ['/gallery?album=2#top', '/gallery?album=2#top'],
    ])('keeps return_to %j only when it is a path on the site', async (returnTo, kept) => {
      const page = await request(fx.handle.app).get(`/connect?return_to=${encodeURIComponent(returnTo)}`).expect(200);
      expect(page.text).toContain(`name="return_to" value="${kept.replace(/&/g, '&amp;')}"`);
    });

    it('reads each address afresh: what one asked for never shows on another, and a refused one stays refused', async () => {
      const app = fx.handle.app;
      for (let round = 0; round < 2; round += 1) {
        const write = await request(app).get('/connect?perm_doc=write&return_to=%2Fa').expect(200);
        expect(write.text).toContain('name="perm_doc" value="write"');
        expect(write.text).toContain('name="return_to" value="/a"');
        const read = await request(app).get('/connect?perm_doc=read&return_to=%2Fb').expect(200);
        expect(read.text).toContain('name="perm_doc" value="read"');
        expect(read.text).toContain('name="return_to" value="/b"');
        expect(read.text).not.toContain('value="write"');
        await request(app).get('/connect?perm_doc=admin').expect(400);
      }
    });
  });

  describe('POST /connect', () => {
    it('refuses a form without its CSRF token, with a wrong one, or from another site', async () => {
      const agent = request.agent(fx.handle.app);
      const warning = await agent.get('/connect');
      const token = csrfOf(warning.text);
      expect((await agent.post('/connect').type('form').send({ perm_doc: 'read' }).expect(403)).text).toContain('CSRF_INVALID');
      await agent.post('/connect').type('form').send({ _csrf: `${token.slice(0, -2)}AA`, perm_doc: 'read' }).expect(403);
      await agent.post('/connect').set('Origin', 'https://evil.example').type('form').send({ _csrf: token, perm_doc: 'read' }).expect(403);
      // another browser's token does not fit this browser's cookie
      const other = await request(fx.handle.app).post('/connect').type('form').send({ _csrf: token, perm_doc: 'read' });
      expect(other.status).toBe(403);
      await agent.post('/connect').type('form').send({ _csrf: token, perm_doc: 'read' }).expect(303);
    });

    describe('from a browser that sends Fetch Metadata', () => {
      // what Chromium sends for a typed address, then for the page's own form
      const navigation = { 'Sec-Fetch-Site': 'none', 'Sec-Fetch-Mode': 'navigate', 'Sec-Fetch-Dest': 'document', 'Sec-Fetch-User': '?1' };
      const fromThePage = { ...navigation, 'Sec-Fetch-Site': 'same-origin' };

      it('sets no CSRF cookie and puts no token in the form, and the form works', async () => {
        const agent = request.agent(fx.handle.app);
        const warning = await agent.get('/connect').set(navigation).expect(200);
        expect(warning.headers['set-cookie']).toBeUndefined();
        expect(warning.text).not.toContain('_csrf');
        expect(warning.text).toContain('id="continue-form"');
        await agent.post('/connect').set(fromThePage).type('form').send({ perm_doc: 'read' }).expect(303);
      });

      it('gives a client whose Sec-Fetch-Site is not a known value the token, as to any other client', async () => {
        const page = await request(fx.handle.app).get('/connect').set('Sec-Fetch-Site', 'same-origin, cross-site').expect(200);
        expect(csrfOf(page.text)).toMatch(/^[A-Za-z0-9_-]{43}$/);
      });

      it('refuses a form from another site even with a valid token, and asks a sibling host for the token', async () => {
        const agent = request.agent(fx.handle.app);
        const token = csrfOf((await agent.get('/connect')).text);
        const crossSite = await agent.post('/connect').set({ ...fromThePage, 'Sec-Fetch-Site': 'cross-site' }).type('form').send({ _csrf: token, perm_doc: 'read' }).expect(403);
        expect(crossSite.text).toContain('CSRF_INVALID');
        await agent.post('/connect').set({ ...fromThePage, 'Sec-Fetch-Site': 'same-site' }).type('form').send({ perm_doc: 'read' }).expect(403);
        await agent.post('/connect').set({ ...fromThePage, 'Sec-Fetch-Site': 'same-site' }).type('form').send({ _csrf: token, perm_doc: 'read' }).expect(303);
        // the Origin check still holds for a request claiming the same origin
        await agent.post('/connect').set({ ...fromThePage, Origin: 'https://evil.example' }).type('form').send({ perm_doc: 'read' }).expect(403);
      });

      it("leaves the token out of the home page's forms too: disconnecting works without one", async () => {
        const agent = request.agent(fx.handle.app);
        await walkFlow(agent, fx.simulator);
        const home = await agent.get('/').set(navigation).expect(200);
        expect(home.text).toContain('action="/disconnect"');
        expect(home.text).not.toContain('_csrf');
        await agent.post('/disconnect').set(fromThePage).type('form').send({}).expect(200);
        expect((await agent.get('/connection')).body).toEqual({ connected: false });
      });
    });

    it('answers 400 for a bad permission in the form and stores nothing', async () => {
      const agent = request.agent(fx.handle.app);
      const token = csrfOf((await agent.get('/connect')).text);
      const answer = await agent.post('/connect').type('form').send({ _csrf: token, perm_profile: 'delete' }).expect(400);
      expect(answer.text).toContain('perm_profile');
      const cookies = ([] as string[]).concat(answer.headers['set-cookie'] ?? []);
      expect(cookies.some((c) => c.startsWith('ipernity-connect.sid='))).toBe(false);
    });

    it('sends the visitor to the signed link with the permissions asked for', async () => {
      const agent = request.agent(fx.handle.app);
      const token = csrfOf((await agent.get('/connect')).text);
      const start = await agent.post('/connect').type('form').send({ _csrf: token, perm_doc: 'write', perm_network: 'read' }).expect(303);
      const link = new URL(start.headers.location as string);
      expect(link.origin + link.pathname).toBe(`${fx.simulator.url}/apps/authorize`);
      expect(Object.fromEntries(link.searchParams)).toMatchObject({ perm_doc: 'write', perm_network: 'read' });
      expect(link.searchParams.get('api_sig')).toMatch(/^[0-9a-f]{32}$/);
    });

    it('gives each set of permissions its own correctly signed link, the same one each time it is asked for', async () => {
      const agent = request.agent(fx.handle.app);
      const token = csrfOf((await agent.get('/connect')).text);
      const linkFor = async (fields: Record<string, string>) =>
        new URL((await agent.post('/connect').type('form').send({ _csrf: token, ...fields }).expect(303)).headers.location as string);
      const asked: Array<Record<string, string>> = [{ perm_doc: 'write' }, { perm_doc: 'read' }, { perm_doc: 'write', perm_profile: 'read' }, { perm_doc: 'write' }];
      const links = [];
      for (const fields of asked) links.push(await linkFor(fields));
      for (const [i, link] of links.entries()) {
        const params = Object.fromEntries(link.searchParams);
        expect(params).toEqual({ api_key: API_KEY, ...asked[i], api_sig: sign(params, API_SECRET) });
      }
      expect(new Set(links.map(String)).size).toBe(3);
      expect(links[3]?.toString()).toBe(links[0]?.toString());
      // the link is what the simulator accepts
      await authorizeAtSimulator(fx.simulator, links[2]?.toString() as string);
    });

    it('asks for the union of what is granted and what is new, so an upgrade keeps earlier grants', async () => {
      const agent = request.agent(fx.handle.app);
      await walkFlow(agent, fx.simulator, { query: 'perm_profile=read&perm_blog=write' });
      const warning = await agent.get('/connect?perm_doc=write&perm_blog=read').expect(200);
      expect(warning.text).toContain('id="granted-permissions"');
      const start = await agent.post('/connect').type('form').send({ _csrf: csrfOf(warning.text), perm_doc: 'write', perm_blog: 'read' }).expect(303);
      const link = new URL(start.headers.location as string);
      expect(Object.fromEntries(link.searchParams)).toMatchObject({ perm_doc: 'write', perm_blog: 'write', perm_profile: 'read' });
      const callback = await authorizeAtSimulator(fx.simulator, link.toString());
      await agent.get(callback.pathname + callback.search).expect(303);
      expect((await agent.get('/connection')).body.permissions).toMatchObject({ doc: 'write', blog: 'write', profile: 'read' });
    });
  });

  describe('the attempts cookie', () => {
    const ATTEMPTS = 'ipernity-connect.attempts';
    const attemptsCookie = (response: request.Response) =>
      ([] as string[]).concat(response.headers['set-cookie'] ?? []).find((c) => c.startsWith(`${ATTEMPTS}=`));

    it('keeps the attempt in the browser, sealed: its content cannot be read there, and an altered cookie counts as none', async () => {
      const agent = request.agent(fx.handle.app);
      const token = csrfOf((await agent.get('/connect')).text);
      const start = await agent.post('/connect').type('form').send({ _csrf: token, perm_doc: 'write', return_to: '/private-album' }).expect(303);
      const cookie = attemptsCookie(start) as string;
      expect(cookie).toMatch(/^ipernity-connect\.attempts=[\w.-]+; Max-Age=86400; Path=\/; HttpOnly; SameSite=Lax$/);
      const value = decodeURIComponent(cookie.split(';')[0]?.split('=')[1] ?? '');
      expect(value).not.toMatch(/private-album|write|startedAt/);
      const callback = await authorizeAtSimulator(fx.simulator, start.headers.location as string);
      const altered = value.slice(0, -2) + (value.endsWith('A') ? 'BB' : 'AA');
      const refused = await request(fx.handle.app).get(callback.pathname + callback.search).set('Cookie', `${ATTEMPTS}=${altered}`).expect(400);
      expect(refused.text).toContain('ATTEMPT_MISSING');
      const done = await request(fx.handle.app).get(callback.pathname + callback.search).set('Cookie', `${ATTEMPTS}=${value}`).expect(303);
      expect(done.headers.location).toBe('/private-album');
      // the attempt is spent: the cookie goes with it
      expect(attemptsCookie(done)).toMatch(/^ipernity-connect\.attempts=; Path=\/; Expires=Thu, 01 Jan 1970/);
    });

    it('stays under 4 KB when tabs start many attempts with long return addresses, keeping the newest', async () => {
      const agent = request.agent(fx.handle.app);
      const token = csrfOf((await agent.get('/connect')).text);
      let last: request.Response | undefined;
      for (let i = 0; i < 7; i += 1) {
        last = await agent.post('/connect').type('form').send({ _csrf: token, perm_doc: 'read', return_to: `/${String(i).repeat(1500)}` }).expect(303);
        expect((attemptsCookie(last) as string).length).toBeLessThan(4096);
      }
      const callback = await authorizeAtSimulator(fx.simulator, (last as request.Response).headers.location as string);
      const done = await agent.get(callback.pathname + callback.search).expect(303);
      expect(done.headers.location).toBe(`/${'6'.repeat(1500)}`);
    });

    it('starts a flow for a visitor without a session while the session store is down', async () => {
      const agent = request.agent(fx.handle.app);
      const token = csrfOf((await agent.get('/connect')).text);
      const store = fx.handle.sessions.store;
      jest.spyOn(store, 'get').mockImplementation((_sid, done) => setImmediate(() => done(new Error('store away'))));
      jest.spyOn(store, 'set').mockImplementation((_sid, _data, done) => setImmediate(() => done?.(new Error('store away'))));
      await agent.post('/connect').type('form').send({ _csrf: token, perm_doc: 'read' }).expect(303);
    });
  });

  describe('GET /connection', () => {
    it('says not connected to a visitor without a session', async () => {
      await request(fx.handle.app).get('/connection').expect(200, { connected: false });
    });

    it('detects a revoked token with ?check=1, clears the connection and tells the home page', async () => {
      const agent = request.agent(fx.handle.app);
      await walkFlow(agent, fx.simulator);
      expect((await agent.get('/connection?check=1').expect(200)).body.connected).toBe(true);
      fx.simulator.state.revokeUser('1234');
      later(CHECK_REUSE_MS);
      expect((await agent.get('/connection?check=1').expect(200)).body).toEqual({ connected: false, reason: 'revoked' });
      expect((await agent.get('/connection')).body).toEqual({ connected: false });
      expect(fx.handle.logs.events().map((e) => e.event)).toContain('token_revoked');
    });

    it('checks the token by itself once the check interval has passed', async () => {
      fx.rebuild({ TOKEN_CHECK_INTERVAL_SECONDS: '60' });
      const agent = request.agent(fx.handle.app);
      await walkFlow(agent, fx.simulator, { userId: '77' });
      fx.simulator.state.revokeUser('77');
      expect((await agent.get('/').expect(200)).text).toContain('Connected as');
      const now = Date.now();
      jest.spyOn(Date, 'now').mockReturnValue(now + 61_000);
      const home = await agent.get('/').expect(200);
      expect(home.text).toContain('withdrawn or has expired');
      expect(home.text).toContain('id="connect"');
    });

    it('answers 502 JSON when a forced check cannot reach ipernity, and keeps the connection', async () => {
      const agent = request.agent(fx.handle.app);
      await walkFlow(agent, fx.simulator);
      fx.simulator.faults.set({ status: 503 });
      later(CHECK_REUSE_MS);
      const answer = await agent.get('/connection?check=1').expect(502);
      expect(answer.body).toEqual({ error: { code: 'UPSTREAM_HTTP_STATUS', status: 502 } });
      fx.simulator.faults.clear();
      expect((await agent.get('/connection')).body.connected).toBe(true);
    });

    it('answers a check=1 asked again within a few seconds from the last check, without another call (no quota burnt by reloads)', async () => {
      const agent = request.agent(fx.handle.app);
      await walkFlow(agent, fx.simulator);
      const calls = jest.spyOn(fx.handle.client, 'checkToken');
      for (let i = 0; i < 5; i++) expect((await agent.get('/connection?check=1').expect(200)).body.connected).toBe(true);
      expect(calls).not.toHaveBeenCalled();
      later(CHECK_REUSE_MS);
      await agent.get('/connection?check=1').expect(200);
      expect(calls).toHaveBeenCalledTimes(1);
    });

    it('rate-limits check=1, which calls ipernity under the site key (no quota burnt by a loop)', async () => {
      fx.rebuild({ RATE_LIMIT_PER_MINUTE: '3' });
      const agent = request.agent(fx.handle.app);
      await walkFlow(agent, fx.simulator);
      let answer = await agent.get('/connection?check=1');
      for (let i = 0; i < 3 && answer.status === 200; i++) answer = await agent.get('/connection?check=1');
      expect(answer.status).toBe(429);
      expect(answer.body).toEqual({ error: { code: 'RATE_LIMITED', status: 429 } });
      // the plain read is not limited: it asks ipernity nothing
      await agent.get('/connection').expect(200);
    });
  });

  describe('POST /disconnect', () => {
    it('forgets the connection and says how to revoke the application on ipernity', async () => {
      const agent = request.agent(fx.handle.app);
      await walkFlow(agent, fx.simulator);
      const home = await agent.get('/');
      const page = await agent.post('/disconnect').type('form').send({ _csrf: csrfOf(home.text) }).expect(200);
      expect(page.text).toContain('no longer connected');
      expect(page.text).toContain('Applications');
      expect((await agent.get('/connection')).body).toEqual({ connected: false });
      expect(fx.handle.logs.events().map((e) => e.event)).toContain('disconnected');
    });

    it("also drops the browser's pending attempts, and an attempts cookie it cannot open", async () => {
      const clearedIn = (answer: request.Response) =>
        ([] as string[]).concat(answer.headers['set-cookie'] ?? []).find((c) => c.startsWith('ipernity-connect.attempts='));
      const agent = request.agent(fx.handle.app);
      await walkFlow(agent, fx.simulator);
      const home = await agent.get('/');
      // a flow started in another tab and never finished
      await agent.post('/connect').type('form').send({ _csrf: csrfOf(home.text), perm_doc: 'write' }).expect(303);
      const page = await agent.post('/disconnect').type('form').send({ _csrf: csrfOf(home.text) }).expect(200);
      expect(clearedIn(page)).toMatch(/^ipernity-connect\.attempts=; Path=\/; Expires=Thu, 01 Jan 1970/);
      const sameOrigin = { 'Sec-Fetch-Site': 'same-origin' };
      const unreadable = await request(fx.handle.app).post('/disconnect').set(sameOrigin).set('Cookie', 'ipernity-connect.attempts=not-sealed').type('form').send({}).expect(200);
      expect(clearedIn(unreadable)).toMatch(/^ipernity-connect\.attempts=; Path=\/; Expires=Thu, 01 Jan 1970/);
      const none = await request(fx.handle.app).post('/disconnect').set(sameOrigin).type('form').send({}).expect(200);
      expect(clearedIn(none)).toBeUndefined();
    });

    it('refuses a disconnection without the CSRF token', async () => {
      const agent = request.agent(fx.handle.app);
      await walkFlow(agent, fx.simulator);
      await agent.post('/disconnect').type('form').send({}).expect(403);
      expect((await agent.get('/connection')).body.connected).toBe(true);
    });
  });

  describe('methods', () => {
    it.each([
      ['PUT', '/connect', 'GET, HEAD, POST'],
      ['DELETE', '/connection', 'GET, HEAD'],
      ['GET', '/disconnect', 'POST'],
      ['POST', '/', 'GET, HEAD'],
      ['POST', '/connect/callback', 'GET, HEAD'],
    ])('answers 405 to %s %s with Allow', async (method, path, allow) => {
      const answer = await request(fx.handle.app)[method.toLowerCase() as 'put'](path).expect(405);
      expect(answer.headers.allow).toBe(allow);
    });

    it('answers 404 with a page for an unknown path', async () => {
      expect((await request(fx.handle.app).get('/nowhere').expect(404)).text).toContain('NOT_FOUND');
    });
  });

  describe('requirePermission', () => {
    it('lets a visitor through with the grant, and sends others to ask for exactly what is missing', async () => {
      const site = express();
      site.get('/upload', fx.handle.requirePermission({ doc: 'write' }), (_req, res) => {
        res.send('upload form');
      });
      site.use(fx.handle.app);
      const agent = request.agent(site);
      const anonymous = await agent.get('/upload?album=1').expect(303);
      expect(anonymous.headers.location).toBe('/connect?perm_doc=write&return_to=%2Fupload%3Falbum%3D1');
      await walkFlow(agent, fx.simulator, { query: 'perm_doc=read&perm_profile=read' });
      const lacking = await agent.get('/upload').expect(303);
      expect(lacking.headers.location).toBe('/connect?perm_doc=write&return_to=%2Fupload');
      await walkFlow(agent, fx.simulator, { query: 'perm_doc=write&return_to=%2Fupload' });
      expect((await agent.get('/upload').expect(200)).text).toBe('upload form');
    });
  });
});

describe('desktop mode', () => {
  const fx = useAppAgainstSimulator({ IPERNITY_AUTH_MODE: 'desktop' }, { callbackUrl: null });

  async function start(agent: ReturnType<typeof request.agent>): Promise<{ page: request.Response; link: string }> {
    const warning = await agent.get('/connect?perm_doc=write');
    const started = await agent.post('/connect').type('form').send({ _csrf: csrfOf(warning.text), perm_doc: 'write' }).expect(303);
    expect(started.headers.location).toMatch(/^\/connect\/complete\?attempt=[\w-]+$/);
    const page = await agent.get(started.headers.location as string).expect(200);
    const link = /id="open-ipernity" href="([^"]+)"/.exec(page.text)?.[1]?.replace(/&amp;/g, '&') as string;
    expect(new URL(link).searchParams.get('frob')).toMatch(/^\d{9}-[0-9a-f]{8}$/);
    return { page, link };
  }

  async function authorize(link: string): Promise<void> {
    const url = new URL(link);
    const browser = request.agent(fx.simulator.url);
    const page = await browser.get(url.pathname + url.search).expect(200);
    const answer = await browser.post(url.pathname).type('form').send({ ...Object.fromEntries(url.searchParams), _csrf: csrfOf(page.text), decision: 'authorize', user_id: '1234' }).expect(200);
    expect(answer.text).toContain('go back to the application');
  }

  it('connects through getFrob, the signed link with the frob, and Complete authorization', async () => {
    const agent = request.agent(fx.handle.app);
    const { page, link } = await start(agent);
    await authorize(link);
    const attempt = /name="attempt" value="([^"]+)"/.exec(page.text)?.[1] as string;
    const done = await agent.post('/connect/complete').type('form').send({ _csrf: csrfOf(page.text), attempt }).expect(200);
    expect((await agent.get('/connection')).body).toMatchObject({ connected: true, permissions: { doc: 'write' } });
    // a frob link can come from someone else: the last page says whose account this browser now uses, and with what
    expect(done.text).toContain('connected to the ipernity account of Kal-El (Superman)');
    expect(done.text).toMatch(/id="granted-permissions"[\s\S]*data-item="doc" data-level="write"/);
    expect(done.text).toContain('id="disconnect"');
    expect(done.text).toContain('id="continue" href="/"');
  });

  it('says "not authorized yet" when Complete is pressed before authorizing, and works afterwards', async () => {
    const agent = request.agent(fx.handle.app);
    const { page, link } = await start(agent);
    const attempt = /name="attempt" value="([^"]+)"/.exec(page.text)?.[1] as string;
    const early = await agent.post('/connect/complete').type('form').send({ _csrf: csrfOf(page.text), attempt }).expect(409);
    expect(early.text).toContain('not confirmed the authorization yet');
    await authorize(link);
    await agent.post('/connect/complete').type('form').send({ _csrf: csrfOf(page.text), attempt }).expect(200);
    expect((await agent.get('/connection')).body.connected).toBe(true);
  });

  it('keeps the frob out of the attempts cookie', async () => {
    const agent = request.agent(fx.handle.app);
    const warning = await agent.get('/connect');
    const started = await agent.post('/connect').type('form').send({ _csrf: csrfOf(warning.text), perm_doc: 'read' }).expect(303);
    const cookie = ([] as string[]).concat(started.headers['set-cookie'] ?? []).find((c) => c.startsWith('ipernity-connect.attempts=')) as string;
    const page = await agent.get(started.headers.location as string).expect(200);
    const frob = /frob=(\d{9}-[0-9a-f]{8})/.exec(page.text)?.[1] as string;
    expect(frob).toBeDefined();
    expect(decodeURIComponent(cookie)).not.toContain(frob);
  });

  it('accepts a callback only with the pending frob', async () => {
    const agent = request.agent(fx.handle.app);
    const { link } = await start(agent);
    await agent.get('/connect/callback?frob=123456789-0ad5e2a8').expect(400);
    await authorize(link);
    const frob = new URL(link).searchParams.get('frob') as string;
    expect((await agent.get(`/connect/callback?frob=${frob}`).expect(200)).text).toContain('Kal-El (Superman)');
    expect((await agent.get('/connection')).body.connected).toBe(true);
  });

  it('answers 400 for a Complete form naming no pending attempt', async () => {
    const agent = request.agent(fx.handle.app);
    const warning = await agent.get('/connect');
    const answer = await agent.post('/connect/complete').type('form').send({ _csrf: csrfOf(warning.text), attempt: 'nothing' }).expect(400);
    expect(answer.text).toContain('ATTEMPT_MISSING');
  });

  it('shows an upstream page with Try again when getFrob fails', async () => {
    fx.simulator.faults.set({ status: 500, methods: ['auth.getFrob'] });
    const agent = request.agent(fx.handle.app);
    const warning = await agent.get('/connect');
    const page = await agent.post('/connect').type('form').send({ _csrf: csrfOf(warning.text), perm_doc: 'read' }).expect(502);
    expect(page.text).toContain('id="retry"');
    fx.simulator.faults.clear();
  });
});
