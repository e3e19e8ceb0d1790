import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { SqliteSessionStore } from '../../src/sessions/sqlite-store';
import { useAppAgainstSimulator, walkFlow } from '../support/harness';

const HOUR = 3600 * 1000;

describe('session lifetimes', () => {
  const fx = useAppAgainstSimulator({ SESSION_IDLE_TIMEOUT_SECONDS: '3600', SESSION_MAX_AGE_SECONDS: '7200', TOKEN_CHECK_INTERVAL_SECONDS: '86400' });

  /** A clock set to `minutes` after `start` on each call. */
  const minutesAfter = (start: number) => (minutes: number) => {
    jest.restoreAllMocks();
    jest.spyOn(Date, 'now').mockReturnValue(start + minutes * 60_000);
  };

  it('ends a session left idle longer than the idle timeout', async () => {
    const agent = request.agent(fx.handle.app);
    await walkFlow(agent, fx.simulator);
    minutesAfter(Date.now())(61);
    expect((await agent.get('/connection')).body).toEqual({ connected: false });
  });

  it('keeps an active visitor connected past the idle timeout, but not past the absolute lifetime', async () => {
    const agent = request.agent(fx.handle.app);
    await walkFlow(agent, fx.simulator);
    const clock = minutesAfter(Date.now());
    for (const minutes of [40, 80, 115]) {
      clock(minutes);
      expect((await agent.get('/connection')).body.connected).toBe(true);
    }
    clock(121);
    expect((await agent.get('/connection')).body).toEqual({ connected: false });
  });

  it('deletes an ended session without storing an empty one in its place', async () => {
    const stored = () => new Promise<number>((resolve, reject) => fx.handle.sessions.store.length?.((error, n) => (error ? reject(error) : resolve(n as number))));
    const agent = request.agent(fx.handle.app);
    await walkFlow(agent, fx.simulator);
    expect(await stored()).toBe(1);
    const clock = minutesAfter(Date.now());
    for (const minutes of [40, 80]) {
      clock(minutes);
      expect((await agent.get('/connection')).body.connected).toBe(true);
    }
    clock(121);
    expect((await agent.get('/connection')).body).toEqual({ connected: false });
    expect(await stored()).toBe(0);
    // starting again works as for any visitor without a session
    await walkFlow(agent, fx.simulator);
    expect((await agent.get('/connection')).body.connected).toBe(true);
    expect(await stored()).toBe(1);
  });
});

describe('SqliteSessionStore', () => {
  let dir: string;
  let store: SqliteSessionStore;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ipernity-connect-store-'));
    store = new SqliteSessionStore({ file: path.join(dir, 'sessions.sqlite'), defaultTtlMs: HOUR });
  });
  afterEach(async () => {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const session = (expires: number) => ({ cookie: { expires: new Date(expires), originalMaxAge: HOUR }, seenAt: 1 }) as never;
  const get = (sid: string) => new Promise((resolve, reject) => store.get(sid, (error, value) => (error ? reject(error) : resolve(value))));

  it('stores, reads and destroys sessions, and reads an expired one as none', async () => {
    store.set('a', session(Date.now() + HOUR));
    expect(await get('a')).toMatchObject({ seenAt: 1 });
    store.set('a', session(Date.now() - 1));
    expect(await get('a')).toBeNull();
    store.set('b', session(Date.now() + HOUR));
    store.destroy('b');
    expect(await get('b')).toBeNull();
  });

  it('has no touch, as the Redis store (disableTouch): a read writes nothing, and the idle timeout moves the expiry when seenAt is saved', () => {
    expect((store as { touch?: unknown }).touch).toBeUndefined();
  });

  it('sweeps expired sessions', async () => {
    store.set('old', session(Date.now() - 1000));
    store.set('new', session(Date.now() + HOUR));
    expect(await store.sweep()).toBe(1);
    const count = await new Promise((resolve) => store.length((_e, n) => resolve(n)));
    expect(count).toBe(1);
  });

  it('sweeps a batch at a time, serving other work between batches', async () => {
    for (let i = 0; i < 1200; i += 1) store.set(`old-${i}`, session(Date.now() - 1000));
    store.set('live', session(Date.now() + HOUR));
    let turns = 0;
    let sweeping = true;
    const turn = () => {
      turns += 1;
      if (sweeping) setImmediate(turn);
    };
    setImmediate(turn);
    expect(await store.sweep()).toBe(1200);
    sweeping = false;
    // three batches of at most 500, with the event loop free twice in between
    expect(turns).toBeGreaterThanOrEqual(2);
    expect(await get('live')).toMatchObject({ seenAt: 1 });
    expect(await store.sweep()).toBe(0);
  });

  it('hands errors to the callback instead of throwing', async () => {
    await store.close();
    await expect(get('a')).rejects.toThrow(/not open/);
    store = new SqliteSessionStore({ file: path.join(dir, 'sessions.sqlite'), defaultTtlMs: HOUR });
  });
});
