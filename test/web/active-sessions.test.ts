import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { Metrics } from '../../src/web/metrics';
import { SqliteSessionStore } from '../../src/sessions/sqlite-store';
import { buildApp, testConfig, type TestApp } from '../support/harness';

/** No flow runs here: nothing calls the API. */
const NO_UPSTREAM = 'http://127.0.0.1:9';
const HOUR = 3_600_000;

const activeSessions = (text: string): number | undefined => {
  const match = /^ipernity_connect_active_sessions (\d+)$/m.exec(text);
  return match ? Number(match[1]) : undefined;
};

const lasting = (ms: number) => ({ cookie: { expires: new Date(Date.now() + ms), originalMaxAge: HOUR } }) as never;

describe('the active-sessions gauge', () => {
  it('counts once for two scrapes in a row', async () => {
    const count = jest.fn(async () => 7);
    const metrics = new Metrics(count);
    expect(activeSessions(await metrics.registry.metrics())).toBe(7);
    expect(activeSessions(await metrics.registry.metrics())).toBe(7);
    expect(count).toHaveBeenCalledTimes(1);
  });

  it('answers the last count once it is old, and counts again after the answer, not before it', async () => {
    let next = 1;
    let release: () => void = () => undefined;
    const count = jest.fn(() => {
      const value = next++;
      if (value === 1) return Promise.resolve(value);
      return new Promise<number>((resolve) => (release = () => resolve(value)));
    });
    const metrics = new Metrics(count, { activeSessionsMaxAgeMs: 0 });
    expect(activeSessions(await metrics.registry.metrics())).toBe(1);
    // the count is old: this scrape answers it without waiting for the new one, still under way
    expect(activeSessions(await metrics.registry.metrics())).toBe(1);
    expect(count).toHaveBeenCalledTimes(2);
    // a scrape while that count runs asks for no other
    expect(activeSessions(await metrics.registry.metrics())).toBe(1);
    expect(count).toHaveBeenCalledTimes(2);
    release();
    await new Promise((resolve) => setImmediate(resolve));
    expect(activeSessions(await metrics.registry.metrics())).toBe(2);
  });

  it('keeps the last count when a count fails', async () => {
    const count = jest.fn<Promise<number>, []>().mockResolvedValueOnce(4).mockRejectedValueOnce(new Error('SQLITE_BUSY'));
    const metrics = new Metrics(count, { activeSessionsMaxAgeMs: 0 });
    expect(activeSessions(await metrics.registry.metrics())).toBe(4);
    await metrics.registry.metrics(); // asks again, and that count fails
    await new Promise((resolve) => setImmediate(resolve));
    expect(activeSessions(await metrics.registry.metrics())).toBe(4);
  });

  describe('with SQLite sessions', () => {
    let dir: string;
    let handle: TestApp | undefined;
    beforeEach(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ipernity-connect-active-sessions-'));
    });
    afterEach(async () => {
      jest.restoreAllMocks();
      await handle?.close();
      handle = undefined;
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('counts on the checkpoint thread, never on the serving connection during a scrape', async () => {
      const onServingConnection = jest.spyOn(SqliteSessionStore.prototype, 'length');
      handle = buildApp(testConfig(NO_UPSTREAM, { SESSION_STORE: 'sqlite', DATA_DIR: dir }));
      const store = handle.sessions.store as SqliteSessionStore;
      for (const sid of ['a', 'b', 'c']) store.set(sid, lasting(HOUR));
      store.set('gone', lasting(-1000));
      const counted = jest.spyOn(store, 'countActive');
      const app = handle.app;
      const scrape = async (): Promise<number | undefined> => activeSessions((await request(app).get('/metrics').expect(200)).text);
      expect(await scrape()).toBe(3);
      expect(await scrape()).toBe(3);
      expect(counted).toHaveBeenCalledTimes(1);
      expect(onServingConnection).not.toHaveBeenCalled();
    });
  });
});

describe('SqliteSessionStore.countActive', () => {
  let dir: string;
  const stores: SqliteSessionStore[] = [];
  const open = (checkpointIntervalMs?: number): SqliteSessionStore => {
    const store = new SqliteSessionStore({ file: path.join(dir, 'sessions.sqlite'), defaultTtlMs: HOUR, checkpointIntervalMs });
    stores.push(store);
    return store;
  };
  const lengthOf = (store: SqliteSessionStore): Promise<number | undefined> => new Promise((resolve) => store.length((_error, n) => resolve(n)));
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ipernity-connect-count-'));
  });
  afterEach(async () => {
    jest.restoreAllMocks();
    await Promise.all(stores.splice(0).map((store) => store.close()));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('answers what length answers, counted on the thread', async () => {
    const store = open();
    for (let i = 0; i < 50; i += 1) store.set(`s${i}`, lasting(i < 40 ? HOUR : -1000));
    const length = jest.spyOn(store, 'length');
    expect(await store.countActive()).toBe(40);
    expect(length).not.toHaveBeenCalled();
    expect(await lengthOf(store)).toBe(40);
  });

  it('counts on the serving connection without a thread, but not in the caller\'s turn', async () => {
    const store = open(0);
    store.set('one', lasting(HOUR));
    const length = jest.spyOn(store, 'length');
    const counting = store.countActive();
    expect(length).not.toHaveBeenCalled();
    expect(await counting).toBe(1);
    expect(length).toHaveBeenCalledTimes(1);
  });

  it('does not leave a count unanswered when the store closes', async () => {
    const store = open();
    const counting = store.countActive();
    await store.close();
    await expect(counting.then(() => 'answered', () => 'refused')).resolves.toMatch(/answered|refused/);
  });
});
