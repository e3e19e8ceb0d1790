import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SqliteSessionStore } from '../../src/sessions/sqlite-store';

const HOUR = 3_600_000;

/** A session of about the size a connected visitor's is. */
const session = () => ({ cookie: { expires: new Date(Date.now() + HOUR), originalMaxAge: HOUR }, connection: { sealedToken: 'v1.k.'.padEnd(400, 'x') } }) as never;

const sizeOf = (file: string): number => fs.statSync(file, { throwIfNoEntry: false })?.size ?? 0;

async function until(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return true;
}

describe('the SQLite store checkpoints from a thread of its own', () => {
  let dir: string;
  let file: string;
  const stores: SqliteSessionStore[] = [];
  const open = (options: { checkpointIntervalMs?: number; walRestartPages?: number }) => {
    const store = new SqliteSessionStore({ file, defaultTtlMs: HOUR, ...options });
    stores.push(store);
    return store;
  };
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ipernity-connect-checkpoint-'));
    file = path.join(dir, 'sessions.sqlite');
  });
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((store) => store.close()));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('copies the WAL into the database file without waiting for SQLite to checkpoint on the serving connection', async () => {
    // 100 sessions fill a few hundred WAL pages: fewer than the 1000 after which SQLite checkpoints by itself
    const bySqlite = open({ checkpointIntervalMs: 0 });
    const empty = sizeOf(file);
    for (let i = 0; i < 100; i += 1) bySqlite.set(`s${i}`, session());
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(sizeOf(file)).toBe(empty);
    await bySqlite.close();

    const byThread = open({ checkpointIntervalMs: 20 });
    for (let i = 0; i < 100; i += 1) byThread.set(`t${i}`, session());
    expect(await until(() => sizeOf(file) > empty + 100 * 400, 5000)).toBe(true);
  });

  it('starts the WAL over under steady writes, so it stays bounded', async () => {
    const store = open({ checkpointIntervalMs: 10, walRestartPages: 300 });
    let largest = 0;
    // writes in small batches with the event loop free between them, as requests come
    for (let batch = 0; batch < 200; batch += 1) {
      for (let i = 0; i < 20; i += 1) {
        store.set(`b${batch}-${i}`, session());
        if (i % 2) store.destroy(`b${batch}-${i}`);
      }
      largest = Math.max(largest, sizeOf(`${file}-wal`));
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    // 4000 writes leave about 70 MB of WAL when nothing starts it over; here it stays at a few MB,
    // and under half that on a machine so busy that the thread runs late
    expect(largest).toBeGreaterThan(0);
    expect(largest).toBeLessThan(32 * 1024 * 1024);
  });

  it('checkpoints on the serving connection again, and says why, when the thread stops', async () => {
    let exited: unknown = 'not yet';
    const store = new SqliteSessionStore({ file, defaultTtlMs: HOUR, checkpointIntervalMs: 20, onCheckpointerExit: (error) => (exited = error) });
    stores.push(store);
    // the thread opens the file by name once it has started; moved away before that, it cannot, and stops
    const moved = path.join(dir, 'moved.sqlite');
    fs.renameSync(file, moved);
    expect(await until(() => exited !== 'not yet', 5000)).toBe(true);
    expect(exited).toMatchObject({ code: 'SQLITE_CANTOPEN' });
    const empty = sizeOf(moved);
    // about 2700 WAL pages: past the 1000 after which the serving connection checkpoints by itself again
    for (let i = 0; i < 600; i += 1) store.set(`f${i}`, session());
    expect(sizeOf(moved)).toBeGreaterThan(empty + 100 * 400);
  });

  it('stops the thread on close, so the last checkpoint removes the WAL', async () => {
    const store = open({ checkpointIntervalMs: 20 });
    for (let i = 0; i < 50; i += 1) store.set(`c${i}`, session());
    expect(fs.existsSync(`${file}-wal`)).toBe(true);
    await store.close();
    expect(fs.existsSync(`${file}-wal`)).toBe(false);
    expect(fs.existsSync(file)).toBe(true);
  });
});
