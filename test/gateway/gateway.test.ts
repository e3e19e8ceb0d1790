import request from 'supertest';
import { ConfigError } from '../../src/config';
import { SANDBOX_API_METHODS, loadConfig } from '../../src/config';
import { csrfOf, testConfig, useAppAgainstSimulator, walkFlow } from '../support/harness';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- ipernity's JSON answers, read field by field in the assertions
type Json = Record<string, any>;

const METHODS = 'doc.getList,doc.get,doc.getMedias,doc.set,doc.search,account.getQuota,test.echo';

/** How many calls the app made to ipernity so far (its own metric). */
async function upstreamCalls(fixture: ReturnType<typeof useAppAgainstSimulator>): Promise<number> {
  const text = await fixture.handle.metrics.registry.getSingleMetricAsString('ipernity_api_call_duration_seconds');
  return [...text.matchAll(/^ipernity_api_call_duration_seconds_count\{[^}]*\} (\d+)$/gm)].reduce((sum, match) => sum + Number(match[1]), 0);
}

describe('the API gateway (/api/ipernity/<method>)', () => {
  const fixture = useAppAgainstSimulator({ IPERNITY_API_METHODS: METHODS });

  async function connected(query = 'perm_doc=read'): Promise<ReturnType<typeof request.agent>> {
    const agent = request.agent(fixture.handle.app);
    await walkFlow(agent, fixture.simulator, { query });
    return agent;
  }

  describe('configuration', () => {
    it('is off unless IPERNITY_API_METHODS lists methods', async () => {
      const handle = fixture.rebuild({ IPERNITY_API_METHODS: '' });
      expect(handle.config.gateway.methods).toEqual([]);
      const answer = await request(handle.app).get('/api/ipernity/doc.getList').expect(404);
      expect(answer.text).not.toContain('METHOD_NOT_ALLOWED_HERE');
    });

    it('refuses auth.* methods and names that are not ipernity\'s, saying why', () => {
      expect(() => testConfig('http://127.0.0.1:9', { IPERNITY_API_METHODS: 'doc.getList,auth.getToken' })).toThrow(/auth\.getToken cannot be forwarded: the auth\.\* methods make and check tokens/);
      expect(() => testConfig('http://127.0.0.1:9', { IPERNITY_API_METHODS: 'doc.getlist' })).toThrow(ConfigError);
      expect(() => testConfig('http://127.0.0.1:9', { IPERNITY_API_METHODS: 'doc.getlist' })).toThrow(/not in ipernity's method list/);
    });

    it('forwards a demonstration set in sandbox mode', () => {
      const config = loadConfig({ SESSION_STORE: 'memory', LOG_LEVEL: 'silent' });
      expect(config.sandbox).toBe(true);
      expect(config.gateway.methods).toEqual([...SANDBOX_API_METHODS]);
    });
  });

  describe('what it forwards', () => {
    it("answers ipernity's JSON as it came, never cached by the browser, never with the token", async () => {
      const agent = await connected();
      const answer = await agent.get('/api/ipernity/doc.getList?user_id=1234&per_page=2').expect(200);
      expect(answer.headers['cache-control']).toBe('no-store');
      expect(answer.body).toMatchObject({ api: { status: 'ok' }, docs: { per_page: '2', doc: expect.any(Array) } });
      for (const token of fixture.simulator.state.issuedTokens()) {
        expect(answer.text).not.toContain(token);
        expect(fixture.handle.logs.text()).not.toContain(token);
      }
    });

    it('answers 404 METHOD_NOT_ALLOWED_HERE for a method not listed or not ipernity\'s, and sends nothing', async () => {
      const agent = await connected();
      const before = await upstreamCalls(fixture);
      for (const name of ['doc.delete', 'auth.getToken', 'doc.teleport', 'DOC.GETLIST', '..%2Fauth.getToken', '%2e%2e', 'x'.repeat(300)]) {
        const answer = await agent.get(`/api/ipernity/${name}`).expect(404);
        expect(answer.body.error).toMatchObject({ code: 'METHOD_NOT_ALLOWED_HERE', status: 404 });
      }
      expect(await upstreamCalls(fixture)).toBe(before);
    });

    it('answers JSON even to an address too long or badly encoded', async () => {
      const agent = await connected();
      const long = await agent.get(`/api/ipernity/doc.getList?user_id=${'1'.repeat(5000)}`).expect(414);
      expect(long.body.error.code).toBe('URI_TOO_LONG');
      const broken = await agent.get('/api/ipernity/%E0%A4%A').expect(400);
      expect(broken.body.error.code).toBe('BAD_REQUEST');
    });

    it('takes GET for the methods ipernity allows by GET, POST for every listed one, and nothing else', async () => {
      const agent = await connected('perm_doc=write');
      const put = await agent.put('/api/ipernity/doc.getList').expect(405);
      expect(put.headers.allow).toBe('GET, HEAD, POST');
      expect(put.body.error.code).toBe('METHOD_NOT_ALLOWED');
      const get = await agent.get('/api/ipernity/doc.set?doc_id=1').expect(405);
      expect(get.headers.allow).toBe('POST');
      await agent.post('/api/ipernity/doc.getList').set('Sec-Fetch-Site', 'same-origin').type('form').send({ user_id: '1234' }).expect(200);
    });
  });

  describe('POSTs', () => {
    it('are refused from another site, and accepted from the site as a form or a JSON object', async () => {
      const agent = await connected('perm_doc=write');
      const doc = fixture.simulator.library.docsOf('1234', undefined)[0]?.docId as string;
      const forged = await agent.post('/api/ipernity/doc.set').set('Sec-Fetch-Site', 'cross-site').type('form').send({ doc_id: doc, title: 'Hacked' }).expect(403);
      expect(forged.body.error.code).toBe('CSRF_INVALID');
      const noMetadata = await agent.post('/api/ipernity/doc.set').type('form').send({ doc_id: doc, title: 'Hacked' }).expect(403);
      expect(noMetadata.body.error.code).toBe('CSRF_INVALID');
      expect(fixture.simulator.library.doc(doc)?.title).not.toBe('Hacked');
      await agent.post('/api/ipernity/doc.set').set('Sec-Fetch-Site', 'same-origin').send({ doc_id: Number(doc), title: 'Renamed by JSON' }).expect(200);
      expect(fixture.simulator.library.doc(doc)?.title).toBe('Renamed by JSON');
      await agent.post('/api/ipernity/doc.set').set('Sec-Fetch-Site', 'same-origin').type('form').send({ doc_id: doc, title: 'Renamed by form' }).expect(200);
      expect(fixture.simulator.library.doc(doc)?.title).toBe('Renamed by form');
    });

    it('take the CSRF token in X-CSRF-Token from a client without Fetch Metadata', async () => {
      const agent = await connected('perm_doc=write');
      const doc = fixture.simulator.library.docsOf('1234', undefined)[0]?.docId as string;
      const token = csrfOf((await agent.get('/connect').expect(200)).text);
      await agent.post('/api/ipernity/doc.set').set('X-CSRF-Token', 'not-the-token').send({ doc_id: doc, title: 'Forged' }).expect(403);
      await agent.post('/api/ipernity/doc.set').set('X-CSRF-Token', token).send({ doc_id: doc, title: 'With the header' }).expect(200);
      expect(fixture.simulator.library.doc(doc)?.title).toBe('With the header');
    });
  });

  describe('parameters, all checked before any request', () => {
    it.each([
      ['a reserved one', '?user_id=1234&auth_token=x', 'auth_token'],
      ['the key', '?user_id=1234&api_key=x', 'api_key'],
      ['a frob', '?user_id=1234&frob=x', 'frob'],
      ['a repeated one', '?user_id=1234&user_id=5678', 'user_id'],
      ['one the method does not take', '?user_id=1234&colour=red', 'colour'],
      ['a required one missing', '?per_page=2', 'user_id'],
      ['a name that is not one', '?user_id=1234&__proto__=x', '__proto__'],
    ])('refuses %s, naming it', async (_label, query, parameter) => {
      const agent = await connected();
      const before = await upstreamCalls(fixture);
      const answer = await agent.get(`/api/ipernity/doc.getList${query}`).expect(400);
      expect(answer.body.error).toMatchObject({ code: 'API_PARAMETER_INVALID', status: 400, parameter });
      expect(await upstreamCalls(fixture)).toBe(before);
    });

    it('refuses JSON that is not an object of strings and numbers', async () => {
      const agent = await connected('perm_doc=write');
      for (const body of ['[1,2]', '{"doc_id":{"a":1}}', '{"doc_id":[1]}', '{"doc_id":true}', '{"__proto__":{"x":1},"doc_id":"1"}']) {
        const answer = await agent.post('/api/ipernity/doc.set').set('Sec-Fetch-Site', 'same-origin').type('json').send(body);
        expect(answer.status).toBe(400);
        expect(answer.body.error.code).toBe('API_PARAMETER_INVALID');
      }
    });
  });

  describe('answers for what goes wrong', () => {
    it('401 with the connect link for a visitor who is not connected', async () => {
      const answer = await request(fixture.handle.app).get('/api/ipernity/doc.getList?user_id=1234').expect(401);
      expect(answer.body.error).toMatchObject({ code: 'NOT_CONNECTED', connectUrl: expect.stringMatching(/^\/connect\?return_to=/) });
      expect(answer.headers.location).toBeUndefined();
    });

    it('403 PERMISSION_MISSING with what is missing and the upgrade link, without asking ipernity', async () => {
      const agent = await connected();
      const before = await upstreamCalls(fixture);
      const answer = await agent.get('/api/ipernity/account.getQuota').expect(403);
      expect(answer.body.error).toMatchObject({ code: 'PERMISSION_MISSING', missing: { doc: 'write' }, upgradeUrl: expect.stringContaining('perm_doc=write') });
      expect(await upstreamCalls(fixture)).toBe(before);
    });

    it("400 with ipernity's body for a method's own error", async () => {
      const agent = await connected();
      const answer = await agent.get('/api/ipernity/doc.get?doc_id=1').expect(400);
      expect(answer.body).toEqual({ api: { status: 'error', code: '1', message: 'Document not found' } });
    });

    it('401 CONNECTION_REVOKED once ipernity says the token is gone, and the connection is cleared', async () => {
      const agent = await connected();
      fixture.simulator.state.revoke();
      const answer = await agent.get('/api/ipernity/doc.getList?user_id=1234').expect(401);
      expect(answer.body.error.code).toBe('CONNECTION_REVOKED');
      expect((await agent.get('/connection')).body.connected).toBe(false);
    });

    it("429 with Retry-After for ipernity's 112 and 113", async () => {
      const agent = await connected();
      for (const code of [112, 113]) {
        fixture.simulator.faults.set({ apiError: code, times: 1 });
        const answer = await agent.get('/api/ipernity/test.echo?echo=x').expect(429);
        expect(answer.headers['retry-after']).toBe('60');
      }
    });

    it('502 and 504 when ipernity fails or is slow', async () => {
      const agent = await connected();
      fixture.simulator.faults.set({ status: 500, times: 1 });
      expect((await agent.get('/api/ipernity/test.echo?echo=x').expect(502)).body.error.code).toBe('UPSTREAM_HTTP_STATUS');
      fixture.simulator.faults.set({ notJson: true, times: 1 });
      expect((await agent.get('/api/ipernity/test.echo?echo=x').expect(502)).body.error.code).toBe('UPSTREAM_BAD_RESPONSE');
      fixture.simulator.faults.set({ delayMs: 2500, times: 1 });
      expect((await agent.get('/api/ipernity/test.echo?echo=x').expect(504)).body.error.code).toBe('UPSTREAM_TIMEOUT');
    });
  });

  describe('private photos through the server (/api/ipernity/media/<doc_id>/<label>)', () => {
    it("streams the visitor's private photo, found with their token, its secret address never shown", async () => {
      const agent = await connected('perm_doc=read');
      const hidden = fixture.simulator.library.docsOf('1234', { userId: '1234', canReadPrivate: true }).find((doc) => !doc.isPublic);
      const answer = await agent.get(`/api/ipernity/media/${hidden?.docId}/240`).buffer(true).expect(200);
      expect(answer.headers['content-type']).toBe('image/png');
      expect(answer.headers['cache-control']).toBe('private, max-age=3600');
      expect(answer.headers['content-disposition']).toBe('inline');
      expect((answer.body as Buffer).subarray(1, 4).toString()).toBe('PNG');
      expect(Number(answer.headers['content-length'])).toBe((answer.body as Buffer).length);
    });

    it('answers 404 for no such photo or size, and 403 without the permission doc.getMedias needs', async () => {
      const agent = await connected('perm_doc=read');
      const doc = fixture.simulator.library.docsOf('1234', undefined)[0]?.docId as string;
      expect((await agent.get('/api/ipernity/media/1/240').expect(404)).body.error.code).toBe('NOT_FOUND');
      await agent.get(`/api/ipernity/media/${doc}/9999`).expect(404);
      await agent.get(`/api/ipernity/media/${doc}/..%2F..`).expect(404);
      const reader = await connected('perm_profile=read');
      expect((await reader.get(`/api/ipernity/media/${doc}/240`).expect(403)).body.error).toMatchObject({ code: 'PERMISSION_MISSING', missing: { doc: 'read' } });
      expect((await request(fixture.handle.app).get(`/api/ipernity/media/${doc}/240`).expect(401)).body.error.code).toBe('NOT_CONNECTED');
    });

    it("answers another user's private photo as no such photo", async () => {
      const agent = await connected('perm_doc=read');
      fixture.simulator.library.seed('5678');
      const theirs = fixture.simulator.library.docsOf('5678', { userId: '5678', canReadPrivate: true }).find((doc) => !doc.isPublic);
      await agent.get(`/api/ipernity/media/${theirs?.docId}/240`).expect(404);
    });
  });

  describe('logs and metrics', () => {
    it('log the method, the outcome and the time, never the values', async () => {
      const agent = await connected();
      await agent.get('/api/ipernity/doc.search?user_id=1234&text=harbour-secret-word').expect(200);
      const calls = fixture.handle.logs.events().filter((entry) => entry.event === 'gateway_call');
      expect(calls.at(-1)).toMatchObject({ method: 'doc.search', outcome: 'ok', upstreamMs: expect.any(Number), req: { url: expect.stringContaining('/api/ipernity/doc.search?') } });
      expect(fixture.handle.logs.text()).not.toContain('harbour-secret-word');
      const metrics = await fixture.handle.metrics.registry.getSingleMetricAsString('ipernity_connect_gateway_calls_total');
      expect(metrics).toContain('method="doc.search",outcome="ok"');
    });
  });

  describe('the per-visitor cache (API_CACHE_SECONDS)', () => {
    it("keeps a visitor's reading answers, and drops them when that visitor writes", async () => {
      fixture.rebuild({ IPERNITY_API_METHODS: METHODS, API_CACHE_SECONDS: '60' });
      const agent = await connected('perm_doc=write');
      const doc = fixture.simulator.library.docsOf('1234', undefined)[0]?.docId as string;
      const first = await agent.get(`/api/ipernity/doc.get?doc_id=${doc}`).expect(200);
      const calls = await upstreamCalls(fixture);
      const second = await agent.get(`/api/ipernity/doc.get?doc_id=${doc}`).expect(200);
      expect(second.body).toEqual(first.body);
      expect(await upstreamCalls(fixture)).toBe(calls);
      await agent.post('/api/ipernity/doc.set').set('Sec-Fetch-Site', 'same-origin').send({ doc_id: doc, title: 'After the write' }).expect(200);
      const third = await agent.get(`/api/ipernity/doc.get?doc_id=${doc}`).expect(200);
      expect((third.body as Json).doc.title).toBe('After the write');
      // another visitor never gets this one's answers
      const other = await connected('perm_doc=read');
      await other.get(`/api/ipernity/doc.get?doc_id=${doc}`).expect(200);
      expect(await upstreamCalls(fixture)).toBeGreaterThan(calls + 2);
    });
  });

  describe('the per-visitor rate limit (API_RATE_LIMIT_PER_MINUTE)', () => {
    it('answers 429 API_RATE_LIMITED past the limit, per visitor', async () => {
      fixture.rebuild({ IPERNITY_API_METHODS: METHODS, API_RATE_LIMIT_PER_MINUTE: '3' });
      const agent = await connected();
      for (let i = 0; i < 3; i += 1) await agent.get('/api/ipernity/test.echo?echo=x').expect(200);
      const limited = await agent.get('/api/ipernity/test.echo?echo=x').expect(429);
      expect(limited.body.error.code).toBe('API_RATE_LIMITED');
      expect(limited.headers['retry-after']).toMatch(/^\d+$/);
      await (await connected()).get('/api/ipernity/test.echo?echo=x').expect(200);
    });
  });
});
