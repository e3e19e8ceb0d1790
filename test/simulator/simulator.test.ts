import http from 'node:http';
import request from 'supertest';
import { sign } from '../../src/ipernity/signature';
import { createSimulatorApp, SIMULATOR_CSRF_COOKIE } from '../../src/simulator/app';
import { csrfOf, listen } from '../support/harness';

const app = { apiKey: 'K', apiSecret: 'S', name: 'Site <b>', callbackUrl: 'http://site.example/connect/callback' };

function signedLink(params: Record<string, string>, secret = 'S'): string {
  return new URLSearchParams({ ...params, api_sig: sign(params, secret) }).toString();
}

/** The authorization form as a client without Fetch Metadata gets it: its hidden fields (the `_csrf` token among them) and the CSRF cookie. */
async function openForm(server: Parameters<typeof request>[0], query: string): Promise<{ fields: Record<string, string>; token: string; cookie: string }> {
  const page = await request(server).get(`/apps/authorize?${query}`).expect(200);
  const fields = Object.fromEntries([...page.text.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)].map((m) => [m[1] as string, m[2] as string]));
  const setCookie = ([] as string[]).concat(page.headers['set-cookie'] ?? []);
  const cookie = setCookie.find((line) => line.startsWith(`${SIMULATOR_CSRF_COOKIE}=`))?.split(';', 1)[0] as string;
  return { fields, token: csrfOf(page.text), cookie };
}

function apiCall(method: string, params: Record<string, string>, secret = 'S'): Record<string, string> {
  return { ...params, api_sig: sign(params, secret, method) };
}

const FROB_CALLBACK = /^http:\/\/site\.example\/connect\/callback\?frob=\d{9}-[0-9a-f]{8}$/;

describe('the simulator', () => {
  const { app: server, state } = createSimulatorApp({ apps: [app], frobTtlMs: 60_000 });

  describe('GET /apps/authorize', () => {
    it('shows the application and the permissions asked for, escaped', async () => {
      const page = await request(server).get(`/apps/authorize?${signedLink({ api_key: 'K', perm_doc: 'write' })}`).expect(200);
      expect(page.text).toContain('Site &lt;b&gt;');
      expect(page.text).toContain('doc: write');
      expect(page.text).toContain('keeps everything in memory');
    });

    it.each([
      ['no api_key', { perm_doc: 'read' }, 'Error 100'],
      ['an unknown api_key', { api_key: 'X', perm_doc: 'read' }, 'Error 101'],
    ])('refuses a link with %s', async (_label, params, text) => {
      const page = await request(server).get(`/apps/authorize?${new URLSearchParams({ ...params, api_sig: 'x' })}`).expect(400);
      expect(page.text).toContain(text);
    });

    it('refuses a link without a signature (104) or with a wrong one (105)', async () => {
      expect((await request(server).get('/apps/authorize?api_key=K&perm_doc=read').expect(400)).text).toContain('Error 104');
      expect((await request(server).get(`/apps/authorize?${signedLink({ api_key: 'K', perm_doc: 'read' }, 'wrong')}`).expect(400)).text).toContain('Error 105');
    });
  });

  describe('POST /apps/authorize', () => {
    it('sends a web visitor to the callback with a fresh frob, and without one on deny', async () => {
      const { fields, cookie } = await openForm(server, signedLink({ api_key: 'K', perm_doc: 'read' }));
      const authorized = await request(server).post('/apps/authorize').set('Cookie', cookie).type('form').send({ ...fields, decision: 'authorize' }).expect(303);
      expect(authorized.headers.location).toMatch(FROB_CALLBACK);
      const denied = await request(server).post('/apps/authorize').set('Cookie', cookie).type('form').send({ ...fields, decision: 'deny' }).expect(303);
      expect(denied.headers.location).toBe('http://site.example/connect/callback');
    });
  });

  describe('CSRF protection of the authorization form', () => {
    const link = Object.fromEntries(new URLSearchParams(signedLink({ api_key: 'K', perm_doc: 'read' })));
    const decide = (extra: Record<string, string> = {}) => ({ ...link, decision: 'authorize', ...extra });

    function expectRefused(answer: request.Response): void {
      expect(answer.status).toBe(403);
      expect(answer.headers['content-type']).toMatch(/^text\/html/);
      expect(answer.text).toContain('sent from another site or lacked its security token');
      expect(answer.text).toContain('ipernity simulator');
      expect(answer.headers.location).toBeUndefined();
    }

    it('refuses an authorization decision posted from another site (login CSRF at the simulator)', async () => {
      const { token, cookie } = await openForm(server, signedLink({ api_key: 'K', perm_doc: 'read' }));
      // a browser says where the form comes from, whatever token the attacker copied into it
      expectRefused(await request(server).post('/apps/authorize').set('Sec-Fetch-Site', 'cross-site').set('Cookie', cookie).type('form').send(decide({ _csrf: token })));
      expectRefused(await request(server).post('/apps/authorize').set('Sec-Fetch-Site', 'cross-site').type('form').send(decide()));
    });

    it('refuses an authorization decision whose Origin names another site, even with a valid token', async () => {
      const { token, cookie } = await openForm(server, signedLink({ api_key: 'K', perm_doc: 'read' }));
      expectRefused(await request(server).post('/apps/authorize').set('Origin', 'http://attacker.example').set('Cookie', cookie).type('form').send(decide({ _csrf: token })));
      expectRefused(await request(server).post('/apps/authorize').set('Origin', 'http://attacker.example').set('Sec-Fetch-Site', 'same-origin').type('form').send(decide()));
    });

    it('refuses an authorization decision without Fetch Metadata that lacks its token, its cookie, or a matching pair', async () => {
      const { token, cookie } = await openForm(server, signedLink({ api_key: 'K', perm_doc: 'read' }));
      const other = await openForm(server, signedLink({ api_key: 'K', perm_doc: 'read' }));
      expectRefused(await request(server).post('/apps/authorize').type('form').send(decide()));
      expectRefused(await request(server).post('/apps/authorize').set('Cookie', cookie).type('form').send(decide()));
      expectRefused(await request(server).post('/apps/authorize').type('form').send(decide({ _csrf: token })));
      expectRefused(await request(server).post('/apps/authorize').set('Cookie', other.cookie).type('form').send(decide({ _csrf: token })));
      expectRefused(await request(server).post('/apps/authorize').set('Cookie', cookie).type('form').send(decide({ _csrf: 'forged' })));
      // a sibling host (same-site) is not this origin: it needs the token too
      expectRefused(await request(server).post('/apps/authorize').set('Sec-Fetch-Site', 'same-site').type('form').send(decide()));
    });

    it('grants nothing to a desktop key\'s frob when the decision is refused', async () => {
      const desktop = createSimulatorApp({ apps: [{ apiKey: 'D', apiSecret: 'S', name: 'Desktop' }] });
      const frob = desktop.state.createFrob('D');
      const params = Object.fromEntries(new URLSearchParams(signedLink({ api_key: 'D', frob, perm_doc: 'write' })));
      expectRefused(await request(desktop.app).post('/apps/authorize').set('Sec-Fetch-Site', 'cross-site').type('form').send({ ...params, decision: 'authorize' }));
      expectRefused(await request(desktop.app).post('/apps/authorize').type('form').send({ ...params, decision: 'authorize' }));
      expect(desktop.state.liveFrob('D', frob)?.grant).toBeUndefined();
    });

    it('accepts a decision carrying the page\'s token and cookie: 303 to the callback with a frob', async () => {
      const page = await request(server).get(`/apps/authorize?${signedLink({ api_key: 'K', perm_doc: 'read' })}`).expect(200);
      const setCookie = ([] as string[]).concat(page.headers['set-cookie'] ?? []);
      expect(setCookie).toHaveLength(1);
      expect(setCookie[0]).toMatch(new RegExp(`^${SIMULATOR_CSRF_COOKIE.replace('.', '\\.')}=[\\w-]{43}; Path=/; HttpOnly; SameSite=Lax$`));
      const cookie = (setCookie[0] as string).split(';', 1)[0] as string;
      const answer = await request(server).post('/apps/authorize').set('Cookie', cookie).type('form').send(decide({ _csrf: csrfOf(page.text) })).expect(303);
      expect(answer.headers.location).toMatch(FROB_CALLBACK);
    });

    it('accepts a same-origin decision from a browser with Fetch Metadata, whose page carries no token and sets no cookie', async () => {
      const page = await request(server).get(`/apps/authorize?${signedLink({ api_key: 'K', perm_doc: 'read' })}`).set('Sec-Fetch-Site', 'cross-site').expect(200);
      expect(page.text).not.toContain('name="_csrf"');
      expect(page.headers['set-cookie']).toBeUndefined();
      const answer = await request(server).post('/apps/authorize').set('Sec-Fetch-Site', 'same-origin').type('form').send(decide()).expect(303);
      expect(answer.headers.location).toMatch(FROB_CALLBACK);
    });

    it('accepts an Origin equal to its own host when standalone, and only the configured origin when given one', async () => {
      const standalone = http.createServer(server);
      const url = await listen(standalone);
      try {
        const answer = await request(url).post('/apps/authorize').set('Origin', url).set('Sec-Fetch-Site', 'same-origin').type('form').send(decide()).expect(303);
        expect(answer.headers.location).toMatch(FROB_CALLBACK);
      } finally {
        standalone.closeAllConnections();
        await new Promise((resolve) => standalone.close(resolve));
      }
      const mounted = createSimulatorApp({ apps: [app], origin: 'http://site.example' });
      await request(mounted.app).post('/apps/authorize').set('Origin', 'http://site.example').set('Sec-Fetch-Site', 'same-origin').type('form').send(decide()).expect(303);
      // the Host header is the attacker's to choose only outside a browser; with an origin configured it is not even consulted
      expectRefused(await request(mounted.app).post('/apps/authorize').set('Host', 'attacker.example').set('Origin', 'http://attacker.example').set('Sec-Fetch-Site', 'same-origin').type('form').send(decide()));
    });

    it('signs its tokens with the secret it is given, so two simulators with one secret accept each other\'s forms', async () => {
      const first = createSimulatorApp({ apps: [app], csrfSecret: 'shared-secret' });
      const second = createSimulatorApp({ apps: [app], csrfSecret: 'shared-secret' });
      const { token, cookie } = await openForm(first.app, signedLink({ api_key: 'K', perm_doc: 'read' }));
      await request(second.app).post('/apps/authorize').set('Cookie', cookie).type('form').send(decide({ _csrf: token })).expect(303);
      // and a simulator with its own random secret does not
      expectRefused(await request(server).post('/apps/authorize').set('Cookie', cookie).type('form').send(decide({ _csrf: token })));
    });
  });

  describe('the API', () => {
    it('accepts a right signature and rejects a wrong one with 105', async () => {
      const ok = await request(server).post('/api/auth.getFrob/json').type('form').send(apiCall('auth.getFrob', { api_key: 'K' })).expect(200);
      expect(ok.body).toMatchObject({ api: { status: 'ok' }, auth: { frob: expect.stringMatching(/^\d{9}-[0-9a-f]{8}$/) } });
      const wrong = await request(server).post('/api/auth.getFrob/json').type('form').send(apiCall('auth.getFrob', { api_key: 'K' }, 'wrong')).expect(200);
      expect(wrong.body).toEqual({ api: { status: 'error', code: '105', message: 'Invalid signature' } });
    });

    it.each([
      ['no api_key', 'auth.getFrob', {}, '100'],
      ['an unknown method', 'photos.fly', { api_key: 'K' }, '103'],
      ['no signature', 'auth.getFrob', { api_key: 'K', api_sig: '' }, '104'],
      ['a missing frob', 'auth.getToken', { api_key: 'K' }, '1'],
      ['an unknown frob', 'auth.getToken', { api_key: 'K', frob: '123456789-00000000' }, '2'],
      ['a missing token', 'auth.checkToken', { api_key: 'K' }, '106'],
      ['an unknown token', 'auth.checkToken', { api_key: 'K', auth_token: '1-2' }, '107'],
    ])('answers %s with code %s', async (_label, method, params, code) => {
      const body = 'api_sig' in params ? params : apiCall(method, params as Record<string, string>);
      const answer = await request(server).post(`/api/${method}/json`).type('form').send(body).expect(200);
      expect(answer.body.api).toMatchObject({ status: 'error', code: (code as string) });
    });

    it('answers 102 for a format other than json', async () => {
      const answer = await request(server).post('/api/auth.getFrob/xml').type('form').send(apiCall('auth.getFrob', { api_key: 'K' })).expect(200);
      expect(answer.body.api.code).toBe('102');
    });

    it('expires frobs after their lifetime', async () => {
      const short = createSimulatorApp({ apps: [app], frobTtlMs: 1 });
      const frob = short.state.createAuthorizedFrob('K', '1234', { doc: 'read' });
      await new Promise((resolve) => setTimeout(resolve, 5));
      const answer = await request(short.app).post('/api/auth.getToken/json').type('form').send(apiCall('auth.getToken', { api_key: 'K', frob })).expect(200);
      expect(answer.body.api.code).toBe('2');
    });

    it('answers 108 for the token of a closed account', async () => {
      const frob = state.createAuthorizedFrob('K', '1234', { doc: 'read' });
      const token = (await request(server).post('/api/auth.getToken/json').type('form').send(apiCall('auth.getToken', { api_key: 'K', frob }))).body.auth.token as string;
      (state.users.get('1234') as { closed?: boolean }).closed = true;
      const answer = await request(server).post('/api/auth.checkToken/json').type('form').send(apiCall('auth.checkToken', { api_key: 'K', auth_token: token })).expect(200);
      expect(answer.body.api.code).toBe('108');
      (state.users.get('1234') as { closed?: boolean }).closed = false;
    });
  });
});
