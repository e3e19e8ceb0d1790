import request from 'supertest';
import type TestAgent from 'supertest/lib/agent';
import { authorizeAtSimulator, csrfOf, useAppAgainstSimulator, walkFlow } from '../support/harness';

const SESSION_COOKIE = 'ipernity-connect.sid';

function sessionCookie(response: request.Response): string | undefined {
  const cookies = ([] as string[]).concat(response.headers['set-cookie'] ?? []);
  return cookies.find((cookie) => cookie.startsWith(`${SESSION_COOKIE}=`))?.split(';')[0];
}

/** The session id inside a `name=s:<id>.<signature>` cookie. */
function sessionIdOf(cookie: string | undefined): string | undefined {
  return decodeURIComponent(cookie?.split('=')[1] ?? '').slice(2).split('.')[0];
}

/** Starts a flow (warning page + POST /connect) and answers the signed link. */
async function startFlow(agent: TestAgent, body: Record<string, string> = { perm_doc: 'read' }): Promise<string> {
  const warning = await agent.get('/connect').expect(200);
  const start = await agent.post('/connect').type('form').send({ _csrf: csrfOf(warning.text), ...body }).expect(303);
  return start.headers.location as string;
}

describe('GET /connect/callback', () => {
  const fx = useAppAgainstSimulator();

  describe('when no attempt is pending', () => {
    it('answers 400, connects nothing and creates no session, even with a valid frob (login CSRF)', async () => {
      // the attacker's own authorization, replayed into a victim's browser
      const attacker = request.agent(fx.handle.app);
      const link = await startFlow(attacker);
      const callback = await authorizeAtSimulator(fx.simulator, link);

      const victim = request.agent(fx.handle.app);
      const answer = await victim.get(callback.pathname + callback.search).expect(400);
      expect(answer.text).toContain('ATTEMPT_MISSING');
      expect(sessionCookie(answer)).toBeUndefined();
      expect((await victim.get('/connection').expect(200)).body).toEqual({ connected: false });
    });

    it('answers 400 when the callback carries no frob either', async () => {
      const answer = await request(fx.handle.app).get('/connect/callback').expect(400);
      expect(answer.text).toContain('ATTEMPT_MISSING');
    });
  });

  describe('when the attempt is older than 10 minutes', () => {
    it('answers 400 with its own page and keeps the session', async () => {
      const agent = request.agent(fx.handle.app);
      const link = await startFlow(agent);
      const callback = await authorizeAtSimulator(fx.simulator, link);
      const now = Date.now();
      jest.spyOn(Date, 'now').mockReturnValue(now + 11 * 60 * 1000);
      const answer = await agent.get(callback.pathname + callback.search).expect(400);
      expect(answer.text).toContain('ATTEMPT_EXPIRED');
    });
  });

  describe('with a bad frob', () => {
    it.each([
      ['empty', '?frob=', 'FROB_MISSING'],
      ['repeated', '?frob=123456789-0ad5e2a8&frob=123456789-0ad5e2a9', 'FROB_REPEATED'],
      ['malformed', '?frob=%3Cscript%3E', 'FROB_MALFORMED'],
      ['over-long', `?frob=${'1'.repeat(300)}`, 'FROB_MALFORMED'],
    ])('answers 400 for a %s frob and spends the pending attempt (a forged callback gets one try)', async (_label, query, code) => {
      const agent = request.agent(fx.handle.app);
      const link = await startFlow(agent);
      const bad = await agent.get(`/connect/callback${query}`).expect(400);
      expect(bad.text).toContain(code);
      const callback = await authorizeAtSimulator(fx.simulator, link);
      expect((await agent.get(callback.pathname + callback.search).expect(400)).text).toContain('ATTEMPT_MISSING');
      expect((await agent.get('/connection')).body.connected).toBe(false);
    });
  });

  describe('with a valid pending attempt', () => {
    it('stores nothing until the visitor is connected, then one session', async () => {
      const agent = request.agent(fx.handle.app);
      const store = fx.handle.sessions.store;
      const set = jest.spyOn(store, 'set');
      const destroy = jest.spyOn(store, 'destroy');
      const warning = await agent.get('/connect');
      const start = await agent.post('/connect').type('form').send({ _csrf: csrfOf(warning.text), perm_doc: 'read' }).expect(303);
      expect(sessionCookie(start)).toBeUndefined();
      expect(set).not.toHaveBeenCalled();
      const callback = await authorizeAtSimulator(fx.simulator, start.headers.location as string);
      const done = await agent.get(callback.pathname + callback.search).expect(303);
      const sid = sessionIdOf(sessionCookie(done));
      expect(set.mock.calls.map(([id]) => id)).toEqual([sid]);
      expect(destroy).not.toHaveBeenCalled();
      expect((await agent.get('/connection')).body.connected).toBe(true);
    });

    it('gives a connected visitor who connects again a new session id, writing the new session once and deleting the old one', async () => {
      const agent = request.agent(fx.handle.app);
      const first = await walkFlow(agent, fx.simulator);
      const before = sessionCookie(first);
      const link = await startFlow(agent, { perm_blog: 'read' });
      const callback = await authorizeAtSimulator(fx.simulator, link);
      const store = fx.handle.sessions.store;
      const set = jest.spyOn(store, 'set');
      const destroy = jest.spyOn(store, 'destroy');
      const done = await agent.get(callback.pathname + callback.search).expect(303);
      const after = sessionCookie(done);
      expect(before).toBeDefined();
      expect(after).toBeDefined();
      expect(after).not.toBe(before);
      const sid = sessionIdOf(after);
      expect(set.mock.calls.map(([id]) => id)).toEqual([sid]);
      expect(destroy).toHaveBeenCalledTimes(1);
      expect((await agent.get('/connection')).body).toMatchObject({ connected: true, permissions: { blog: 'read' } });
    });

    it('answers 503 when the store cannot delete the old session, which it does alongside the first save', async () => {
      const agent = request.agent(fx.handle.app);
      await walkFlow(agent, fx.simulator);
      const link = await startFlow(agent, { perm_blog: 'read' });
      const callback = await authorizeAtSimulator(fx.simulator, link);
      jest.spyOn(fx.handle.sessions.store, 'destroy').mockImplementation((_sid, done) => setImmediate(() => done?.(new Error('store away'))));
      const answer = await agent.get(callback.pathname + callback.search).expect(503);
      expect(answer.text).toContain('SESSION_STORE_UNAVAILABLE');
    });

    it('sends a reload of the callback after success onward', async () => {
      const agent = request.agent(fx.handle.app);
      const warning = await agent.get('/connect?return_to=%2Fgallery');
      const start = await agent.post('/connect').type('form').send({ _csrf: csrfOf(warning.text), perm_doc: 'read', return_to: '/gallery' }).expect(303);
      const callback = await authorizeAtSimulator(fx.simulator, start.headers.location as string);
      await agent.get(callback.pathname + callback.search).expect(303).expect('Location', '/gallery');
      await agent.get(callback.pathname + callback.search).expect(303).expect('Location', '/gallery');
      expect((await agent.get('/connection')).body.connected).toBe(true);
    });

    it('ends connected when two tabs started attempts and one callback comes back', async () => {
      const agent = request.agent(fx.handle.app);
      const first = await startFlow(agent, { perm_doc: 'read' });
      await startFlow(agent, { perm_blog: 'read' });
      const callback = await authorizeAtSimulator(fx.simulator, first);
      const done = await agent.get(callback.pathname + callback.search);
      expect(done.status).toBe(303);
      expect((await agent.get('/connection')).body).toMatchObject({ connected: true, permissions: { doc: 'read' } });
    });

    it('shows a calm page when the visitor denies on ipernity', async () => {
      const agent = request.agent(fx.handle.app);
      const link = await startFlow(agent);
      const callback = await authorizeAtSimulator(fx.simulator, link, { decision: 'deny' });
      const page = await agent.get(callback.pathname + callback.search).expect(200);
      expect(page.text).toContain('Not connected');
      expect(page.text).not.toContain('Error code');
      expect(fx.handle.logs.events().map((e) => e.event)).toContain('denied');
    });

    it('escapes a real name that contains markup', async () => {
      fx.simulator.state.users.set('666', { userId: '666', username: 'mallory', realname: '<img src=x onerror=alert(1)>' });
      const agent = request.agent(fx.handle.app);
      await walkFlow(agent, fx.simulator, { userId: '666' });
      const home = await agent.get('/').expect(200);
      expect(home.text).toContain('&lt;img src=x onerror=alert(1)&gt;');
      expect(home.text).not.toContain('<img src=x');
    });
  });

  describe('when ipernity fails', () => {
    it.each([
      ['is slower than the timeout', { delayMs: 3000 }, 504, 'UPSTREAM_TIMEOUT'],
      ['answers HTTP 500', { status: 500 }, 502, 'UPSTREAM_HTTP_STATUS'],
      ['answers HTTP 503', { status: 503 }, 502, 'UPSTREAM_HTTP_STATUS'],
      ['answers HTML', { notJson: true }, 502, 'UPSTREAM_BAD_RESPONSE'],
      ['drops the connection', { drop: true }, 502, 'UPSTREAM_NETWORK'],
    ])('shows a page with a Try again action when ipernity %s, and keeps the earlier connection', async (_label, fault, status, code) => {
      fx.rebuild({ IPERNITY_TIMEOUT_MS: '300' });
      const agent = request.agent(fx.handle.app);
      await walkFlow(agent, fx.simulator, { query: 'perm_profile=read' });
      const link = await startFlow(agent, { perm_doc: 'write' });
      const callback = await authorizeAtSimulator(fx.simulator, link);
      fx.simulator.faults.set({ ...fault, methods: ['auth.getToken'] });
      const page = await agent.get(callback.pathname + callback.search).expect(status);
      expect(page.text).toContain(code);
      expect(page.text).toContain('id="retry"');
      expect(page.text).toContain('name="perm_doc" value="write"');
      fx.simulator.faults.clear();
      expect((await agent.get('/connection')).body).toMatchObject({ connected: true, permissions: { profile: 'read' } });
      const failed = fx.handle.logs.events().find((e) => e.event === 'failed');
      expect(failed).toMatchObject({ code });
      const logged = fx.handle.logs.events().find((e) => e.event === 'request_failed');
      expect(logged).toMatchObject({ code, err: { code } });
      // what broke under a lost connection is in the log, for whoever reads it after an outage
      if (code === 'UPSTREAM_NETWORK') expect(logged).toMatchObject({ err: { type: 'UpstreamNetworkError', cause: { code: 'ECONNRESET' } } });
    });

    it('answers 400 with its own page when ipernity refuses a spent frob', async () => {
      const agent = request.agent(fx.handle.app);
      const link = await startFlow(agent);
      const callback = await authorizeAtSimulator(fx.simulator, link);
      // the frob is spent elsewhere first
      const other = request.agent(fx.handle.app);
      await startFlow(other);
      await other.get(callback.pathname + callback.search).expect(303);
      const page = await agent.get(callback.pathname + callback.search).expect(400);
      expect(page.text).toContain('IPERNITY_API_ERROR');
      expect(page.text).toContain('already used');
      expect(page.text).toContain('id="retry"');
    });
  });
});
