import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import request from 'supertest';
import { buildApp, SESSION_SECRET, startSimulator, testConfig, walkFlow, type RunningSimulator, type TestApp } from '../support/harness';

const MINUTE = 60_000;

/**
 * The warning page and `GET /connection` only show the session: they must
 * show what a connected visitor has and write nothing, while every lifetime
 * rule and token check applies as on every other page.
 */
describe('the pages that show the session write nothing', () => {
  let simulator: RunningSimulator;
  let dataDir: string;
  let handle: TestApp;
  const build = (extra: Record<string, string> = {}): TestApp =>
    buildApp(testConfig(simulator.url, { SESSION_STORE: 'sqlite', DATA_DIR: dataDir, SESSION_IDLE_TIMEOUT_SECONDS: '3600', SESSION_MAX_AGE_SECONDS: '86400', ...extra }));

  beforeAll(async () => {
    simulator = await startSimulator();
  });
  afterAll(async () => {
    await simulator.close();
  });
  beforeEach(() => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ipernity-connect-session-reads-'));
    handle = build();
  });
  afterEach(async () => {
    jest.restoreAllMocks();
    await handle.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  /** The one session row, as stored. */
  function storedRow(): { data: string; expires: number } {
    const db = new Database(path.join(dataDir, 'sessions.sqlite'), { readonly: true });
    try {
      return db.prepare('SELECT data, expires FROM sessions').get() as { data: string; expires: number };
    } finally {
      db.close();
    }
  }

  function later(ms: number): void {
    const now = Date.now();
    jest.spyOn(Date, 'now').mockReturnValue(now + ms);
  }

  const sessionCookieOf = (response: request.Response) => ([] as string[]).concat(response.headers['set-cookie'] ?? []).find((c) => c.startsWith('ipernity-connect.sid='));

  it('shows what is granted, and neither saves, touches nor re-sends the session', async () => {
    const agent = request.agent(handle.app);
    await walkFlow(agent, simulator, { query: 'perm_blog=write' });
    const before = storedRow();
    // past the store's once-a-minute touch threshold, before the activity refresh is due
    later(5 * MINUTE);
    const page = await agent.get('/connect?perm_doc=read').expect(200);
    expect(page.text).toContain('id="granted-permissions"');
    expect(sessionCookieOf(page)).toBeUndefined();
    expect(storedRow()).toEqual(before);
  });

  it('moves the activity time on when it is due, as every other page does', async () => {
    const agent = request.agent(handle.app);
    await walkFlow(agent, simulator);
    const before = storedRow();
    later(16 * MINUTE);
    const page = await agent.get('/connect').expect(200);
    expect(page.text).toContain('id="granted-permissions"');
    expect(sessionCookieOf(page)).toBeDefined();
    const after = storedRow();
    expect(JSON.parse(after.data).seenAt).toBeGreaterThan(JSON.parse(before.data).seenAt);
    expect(after.expires).toBeGreaterThan(before.expires);
  });

  it('treats a session idle past its timeout as none', async () => {
    const agent = request.agent(handle.app);
    await walkFlow(agent, simulator);
    later(61 * MINUTE);
    const page = await agent.get('/connect').expect(200);
    expect(page.text).not.toContain('id="granted-permissions"');
    expect((await agent.get('/connection')).body).toEqual({ connected: false });
  });

  describe('GET /connection', () => {
    it('answers from the stored session without saving, touching or re-sending it while no token check is due', async () => {
      const agent = request.agent(handle.app);
      await walkFlow(agent, simulator, { query: 'perm_blog=write', userId: '51' });
      const before = storedRow();
      later(5 * MINUTE);
      const answer = await agent.get('/connection').expect(200).expect('Cache-Control', 'no-store');
      expect(answer.body).toMatchObject({ connected: true, user: { userId: '51' }, permissions: { blog: 'write' } });
      expect(answer.body.checkedAt).toBe(new Date(JSON.parse(before.data).connection.checkedAt).toISOString());
      expect(sessionCookieOf(answer)).toBeUndefined();
      expect(storedRow()).toEqual(before);
    });

    it('checks the token once its interval has passed, and keeps what ipernity answered', async () => {
      await handle.close();
      handle = build({ TOKEN_CHECK_INTERVAL_SECONDS: '600' });
      const agent = request.agent(handle.app);
      await walkFlow(agent, simulator, { userId: '52' });
      simulator.state.revokeUser('52');
      later(5 * MINUTE);
      // not due yet: the stored connection is what the visitor has
      expect((await agent.get('/connection').expect(200)).body.connected).toBe(true);
      jest.restoreAllMocks();
      later(11 * MINUTE);
      expect((await agent.get('/connection').expect(200)).body).toEqual({ connected: false, reason: 'revoked' });
      expect(JSON.parse(storedRow().data).connection).toBeUndefined();
      expect((await agent.get('/connection').expect(200)).body).toEqual({ connected: false });
    });

    it('checks at once when asked with ?check=1, and stores the time of the check', async () => {
      const agent = request.agent(handle.app);
      await walkFlow(agent, simulator, { userId: '53' });
      later(5 * MINUTE);
      const checked = await agent.get('/connection?check=1').expect(200);
      expect(checked.body.connected).toBe(true);
      expect(JSON.parse(storedRow().data).connection.checkedAt).toBe(Date.now());
      expect((await agent.get('/connection').expect(200)).body.checkedAt).toBe(checked.body.checkedAt);
    });
  });

  it('reads a cookie signed with a previous secret, and ignores one whose signature is wrong', async () => {
    const agent = request.agent(handle.app);
    await walkFlow(agent, simulator);
    const cookie = agent.jar.getCookies({ domain: '127.0.0.1', path: '/', secure: false, script: false }).toValueString();
    await handle.close();
    handle = build({ SESSION_SECRET: `rotated-session-secret-that-is-long-enough-0123,${SESSION_SECRET}` });
    expect((await request(handle.app).get('/connect').set('Cookie', cookie).expect(200)).text).toContain('id="granted-permissions"');
    const tampered = cookie.replace(/(ipernity-connect\.sid=[^.;]+\.)(.)/, (_m, head: string, first: string) => head + (first === 'A' ? 'B' : 'A'));
    expect(tampered).not.toBe(cookie);
    expect((await request(handle.app).get('/connect').set('Cookie', tampered).expect(200)).text).not.toContain('id="granted-permissions"');
  });
});
