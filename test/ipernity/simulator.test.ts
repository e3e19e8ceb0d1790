import request from 'supertest';
import { sign } from '../../src/ipernity/signature';
import { createSimulatorApp } from '../../src/simulator/app';

const app = { apiKey: 'K', apiSecret: 'S', name: 'Site <b>', callbackUrl: 'http://site.example/connect/callback' };

function signedLink(params: Record<string, string>, secret = 'S'): string {
  return new URLSearchParams({ ...params, api_sig: sign(params, secret) }).toString();
}

function apiCall(method: string, params: Record<string, string>, secret = 'S'): Record<string, string> {
  return { ...params, api_sig: sign(params, secret, method) };
}

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
      const link = Object.fromEntries(new URLSearchParams(signedLink({ api_key: 'K', perm_doc: 'read' })));
      const authorized = await request(server).post('/apps/authorize').type('form').send({ ...link, decision: 'authorize' }).expect(303);
      expect(authorized.headers.location).toMatch(/^http:\/\/site\.example\/connect\/callback\?frob=\d{9}-[0-9a-f]{8}$/);
      const denied = await request(server).post('/apps/authorize').type('form').send({ ...link, decision: 'deny' }).expect(303);
      expect(denied.headers.location).toBe('http://site.example/connect/callback');
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
