import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { createClient } from 'redis';
import request from 'supertest';
import { sign as signCookie } from 'cookie-signature';
import { buildApp, csrfOf, sealedV1, SESSION_SECRET, startSimulator, testConfig, walkFlow, authorizeAtSimulator, type RunningSimulator, type TestApp } from '../support/harness';
import type { TokenKey } from '../../src/config';
import { startRedis, stopRedis } from '../support/redis';
import type { AppHandle } from '../../src/app';

const redisUrl = process.env.TEST_REDIS_URL;
if (!redisUrl) {
  const message = 'No redis-server binary and no REDIS_URL: the Redis session-store suite cannot run.';
  if (process.env.CI) throw new Error(`${message} CI must install Debian's redis-server.`);
  console.warn(`\n*** SKIPPED: ${message} Install redis-server to run it. ***\n`);
}
const describeRedis = redisUrl ? describe : describe.skip;

async function untilReady(handle: AppHandle, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await handle.sessions.ping())) {
    if (Date.now() > deadline) throw new Error('the session store never became ready');
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** A stored value that is not a session, each way a store can hold one. */
const NOT_SESSIONS: Array<[string, string]> = [
  ['not JSON', '{"cookie":'],
  ['JSON of another type', '[1,2,3]'],
  ['no cookie', '{"connection":null}'],
  ['a connection missing fields', '{"cookie":{"originalMaxAge":60000},"connection":{"sealedToken":"v2.x"}}'],
  ['a field of another type', '{"cookie":{"originalMaxAge":60000},"createdAt":"yesterday"}'],
];

/** The browser cookie that names session `sid`, signed as express-session signs it. */
function sessionCookieFor(sid: string): string {
  return `ipernity-connect.sid=${encodeURIComponent(`s:${signCookie(sid, SESSION_SECRET)}`)}`;
}

/** Every page a visitor with that cookie may open, POST /disconnect included, answers as for a new visitor. */
async function expectNewVisitor(handle: TestApp, cookie: string): Promise<void> {
  await request(handle.app).get('/').set('Cookie', cookie).expect(200);
  await request(handle.app).get('/connect').set('Cookie', cookie).expect(200);
  expect((await request(handle.app).get('/connection').set('Cookie', cookie).expect(200)).body).toEqual({ connected: false });
  await request(handle.app).post('/disconnect').set('Cookie', cookie).set('Sec-Fetch-Site', 'same-origin').expect(200);
}

let simulator: RunningSimulator;
beforeAll(async () => {
  simulator = await startSimulator();
});
afterAll(async () => {
  await simulator.close();
});

describe('SESSION_STORE=sqlite', () => {
  let dataDir: string;
  let handle: TestApp;

  beforeEach(() => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ipernity-connect-sqlite-'));
    handle = buildApp(testConfig(simulator.url, { SESSION_STORE: 'sqlite', DATA_DIR: dataDir }));
  });
  afterEach(async () => {
    await handle.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('keeps a connected visitor connected across a restart of the app', async () => {
    const agent = request.agent(handle.app);
    await walkFlow(agent, simulator, { query: 'perm_doc=write' });
    await handle.close();
    handle = buildApp(testConfig(simulator.url, { SESSION_STORE: 'sqlite', DATA_DIR: dataDir }));
    const restarted = request.agent(handle.app);
    restarted.jar.setCookies(agent.jar.getCookies({ domain: '127.0.0.1', path: '/', secure: false, script: false }).toValueString().split('; '));
    expect((await restarted.get('/connection').expect(200)).body).toMatchObject({ connected: true, permissions: { doc: 'write' } });
  });

  it('keeps connections whose token was sealed before subkeys (v1): the token still checks', async () => {
    const agent = request.agent(handle.app);
    await walkFlow(agent, simulator, { query: 'perm_doc=write' });
    await handle.close();
    // the stored token, sealed again the way earlier versions did: under the configured key itself
    const [token] = simulator.state.issuedTokens();
    const v1 = sealedV1(token as string, handle.config.tokenKeys[0] as TokenKey);
    const db = new Database(path.join(dataDir, 'sessions.sqlite'));
    const row = db.prepare('SELECT sid, data FROM sessions').get() as { sid: string; data: string };
    const data = JSON.parse(row.data);
    data.connection.sealedToken = v1;
    db.prepare('UPDATE sessions SET data = ? WHERE sid = ?').run(JSON.stringify(data), row.sid);
    db.close();

    handle = buildApp(testConfig(simulator.url, { SESSION_STORE: 'sqlite', DATA_DIR: dataDir }));
    const restarted = request.agent(handle.app);
    restarted.jar.setCookies(agent.jar.getCookies({ domain: '127.0.0.1', path: '/', secure: false, script: false }).toValueString().split('; '));
    // a token that did not decrypt, or that ipernity refused, would end the connection here
    expect((await restarted.get('/connection?check=1').expect(200)).body).toMatchObject({ connected: true, permissions: { doc: 'write' } });
    expect((await restarted.get('/connection').expect(200)).body).toMatchObject({ connected: true });
  });

  it('never holds the ipernity token in clear in the database file', async () => {
    const agent = request.agent(handle.app);
    await walkFlow(agent, simulator);
    await handle.close();
    const db = new Database(path.join(dataDir, 'sessions.sqlite'), { readonly: true });
    const rows = db.prepare('SELECT data FROM sessions').all() as Array<{ data: string }>;
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    db.close();
    expect(rows).toHaveLength(1);
    const raw = rows.map((row) => row.data).join('\n') + fs.readFileSync(path.join(dataDir, 'sessions.sqlite')).toString('latin1');
    for (const token of simulator.state.issuedTokens()) expect(raw).not.toContain(token);
    expect(JSON.parse(rows[0]?.data as string).connection.sealedToken).toMatch(/^v2\./);
    handle = buildApp(testConfig(simulator.url, { SESSION_STORE: 'sqlite', DATA_DIR: dataDir }));
  });

  it.each(NOT_SESSIONS)('deletes a stored value that is %s and serves its visitor as a new one (no error on every page for days)', async (_label, data) => {
    const file = path.join(dataDir, 'sessions.sqlite');
    const db = new Database(file);
    db.prepare('INSERT INTO sessions (sid, data, expires) VALUES (?, ?, ?)').run('broken', data, Date.now() + 3_600_000);
    await expectNewVisitor(handle, sessionCookieFor('broken'));
    expect(db.prepare('SELECT count(*) AS n FROM sessions WHERE sid = ?').get('broken')).toEqual({ n: 0 });
    db.close();
    expect(handle.logs.events().filter((e) => e.event === 'session_invalid').length).toBeGreaterThan(0);
    expect(handle.logs.events().some((e) => e.event === 'request_failed')).toBe(false);
  });

  it('does not write a session for a visitor who only reads pages', async () => {
    await request(handle.app).get('/').expect(200);
    await request(handle.app).get('/connect').expect(200);
    await request(handle.app).get('/connection').expect(200);
    const count = await new Promise<number | undefined>((resolve) => handle.sessions.store.length?.((_e, n) => resolve(n)));
    expect(count).toBe(0);
  });
});

describeRedis('SESSION_STORE=redis', () => {
  const prefix = `test-${process.pid}:`;
  const env = { SESSION_STORE: 'redis', REDIS_URL: redisUrl as string, REDIS_KEY_PREFIX: prefix };
  let handles: TestApp[] = [];

  async function app(extra: Record<string, string> = {}): Promise<TestApp> {
    const handle = buildApp(testConfig(simulator.url, { ...env, ...extra }));
    handles.push(handle);
    await untilReady(handle);
    return handle;
  }

  afterEach(async () => {
    await Promise.all(handles.map((h) => h.close()));
    handles = [];
  });

  it('keeps a connected visitor connected across a restart, with keys under the configured prefix', async () => {
    const first = await app();
    const agent = request.agent(first.app);
    await walkFlow(agent, simulator, { query: 'perm_blog=read' });
    await first.close();
    const second = await app();
    const cookies = agent.jar.getCookies({ domain: '127.0.0.1', path: '/', secure: false, script: false }).toValueString();
    expect((await request(second.app).get('/connection').set('Cookie', cookies).expect(200)).body).toMatchObject({ connected: true, permissions: { blog: 'read' } });

    const client = createClient({ url: redisUrl });
    await client.connect();
    const keys = await client.keys(`${prefix}*`);
    expect(keys.length).toBeGreaterThan(0);
    const values = await Promise.all(keys.filter((key) => !key.includes(':rl:')).map((key) => client.get(key)));
    const raw = values.join('\n');
    expect(raw).toContain('sealedToken');
    for (const token of simulator.state.issuedTokens()) expect(raw).not.toContain(token);
    const ttl = await client.ttl(keys[0] as string);
    expect(ttl).toBeGreaterThan(0);
    await client.close();
  });

  it('finishes on a second instance a flow started on the first', async () => {
    const one = await app();
    const two = await app();
    const agentOne = request.agent(one.app);
    const warning = await agentOne.get('/connect');
    const start = await agentOne.post('/connect').type('form').send({ _csrf: csrfOf(warning.text), perm_doc: 'read' }).expect(303);
    const callback = await authorizeAtSimulator(simulator, start.headers.location as string);
    const cookies = agentOne.jar.getCookies({ domain: '127.0.0.1', path: '/', secure: false, script: false }).toValueString();
    const done = await request(two.app).get(callback.pathname + callback.search).set('Cookie', cookies).expect(303);
    const sid = ([] as string[]).concat(done.headers['set-cookie'] ?? []).find((c) => c.startsWith('ipernity-connect.sid='))?.split(';')[0] as string;
    expect((await request(one.app).get('/connection').set('Cookie', sid).expect(200)).body.connected).toBe(true);
  });

  it('keeps the gateway cache and rate limit in Redis, shared by every instance, and answers forward auth from it', async () => {
    const shared = { IPERNITY_API_METHODS: 'doc.get,doc.set', API_CACHE_SECONDS: '60', API_RATE_LIMIT_PER_MINUTE: '6', REDIS_KEY_PREFIX: `${prefix}api-${Date.now()}:` };
    const one = await app(shared);
    const two = await app(shared);
    const agent = request.agent(one.app);
    await walkFlow(agent, simulator, { query: 'perm_doc=write' });
    const cookies = agent.jar.getCookies({ domain: '127.0.0.1', path: '/', secure: false, script: false }).toValueString();
    const auth = await request(two.app).get('/connect/auth').set('Cookie', cookies).expect(200);
    expect(auth.headers['x-ipernity-permissions']).toBe('doc=write');
    expect(auth.headers['set-cookie']).toBeUndefined();
    const doc = simulator.library.docsOf('1234', undefined)[0]?.docId as string;
    const first = await request(one.app).get(`/api/ipernity/doc.get?doc_id=${doc}`).set('Cookie', cookies).expect(200);
    // the other instance answers from the cache: ipernity's title changed meanwhile, the kept answer did not
    const kept = simulator.library.doc(doc)?.title;
    (simulator.library.doc(doc) as { title: string }).title = 'Changed at ipernity';
    expect((await request(two.app).get(`/api/ipernity/doc.get?doc_id=${doc}`).set('Cookie', cookies).expect(200)).body).toEqual(first.body);
    // a write on one instance drops the answers kept for the visitor everywhere
    await request(two.app).post('/api/ipernity/doc.set').set('Cookie', cookies).set('Sec-Fetch-Site', 'same-origin').send({ doc_id: doc, title: String(kept) }).expect(200);
    expect((await request(one.app).get(`/api/ipernity/doc.get?doc_id=${doc}`).set('Cookie', cookies).expect(200)).body.doc.title).toBe(kept);
    // four calls so far, counted across both instances: two more pass, the next is limited on either
    await request(one.app).get(`/api/ipernity/doc.get?doc_id=${doc}`).set('Cookie', cookies).expect(200);
    await request(two.app).get(`/api/ipernity/doc.get?doc_id=${doc}`).set('Cookie', cookies).expect(200);
    expect((await request(one.app).get(`/api/ipernity/doc.get?doc_id=${doc}`).set('Cookie', cookies).expect(429)).body.error.code).toBe('API_RATE_LIMITED');
  });

  it('keeps the flow rate limit in Redis, so it holds across instances', async () => {
    const limited = { RATE_LIMIT_PER_MINUTE: '2', REDIS_KEY_PREFIX: `${prefix}limit-${Date.now()}:` };
    const one = await app(limited);
    const two = await app(limited);
    await request(one.app).get('/connect/callback').expect(400);
    await request(two.app).get('/connect/callback').expect(400);
    await request(one.app).get('/connect/callback').expect(429);
    await request(two.app).get('/connect/callback').expect(429);
  });

  it.each([...NOT_SESSIONS, ['a key of another type', '']])('deletes a stored value that is %s and serves its visitor as a new one', async (label, data) => {
    const handle = await app();
    const client = createClient({ url: redisUrl });
    await client.connect();
    try {
      const key = `${prefix}broken`;
      if (label === 'a key of another type') await client.hSet(key, 'cookie', '{}');
      else await client.set(key, data, { EX: 3600 });
      await expectNewVisitor(handle, sessionCookieFor('broken'));
      expect(await client.exists(key)).toBe(0);
      expect(handle.logs.events().some((e) => e.event === 'session_invalid')).toBe(true);
      expect(handle.logs.events().some((e) => e.event === 'request_failed')).toBe(false);
    } finally {
      await client.close();
    }
  });

  describe('when Redis goes away', () => {
    it('answers 503 quickly, reports not ready, and recovers when Redis returns', async () => {
      const redis = await startRedis();
      try {
        const handle = await app({ REDIS_URL: redis.url });
        const agent = request.agent(handle.app);
        await walkFlow(agent, simulator);
        await stopRedis(redis);
        const started = Date.now();
        const page = await agent.get('/connect').expect(503);
        expect(page.text).toContain('SESSION_STORE_UNAVAILABLE');
        expect(Date.now() - started).toBeLessThan(2000);
        await request(handle.app).get('/readyz').expect(503);
        await request(handle.app).get('/healthz').expect(200);
        const restarted = await startRedis(redis.port, redis.dir);
        Object.assign(redis, restarted);
        await untilReady(handle, 10_000);
        await request(handle.app).get('/readyz').expect(200);
        // Redis kept nothing on disk in this test, so the visitor starts over and connects again
        const again = request.agent(handle.app);
        await walkFlow(again, simulator);
        expect((await again.get('/connection')).body.connected).toBe(true);
      } finally {
        await stopRedis(redis);
      }
    });
  });
});
