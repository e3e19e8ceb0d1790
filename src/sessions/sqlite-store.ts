import fs from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import session, { type SessionData } from 'express-session';
import type { CheckpointerData, CountAnswer } from './sqlite-checkpointer';

export interface SqliteStoreOptions {
  /** The database file; its folder is created when missing. */
  file: string;
  /** Lifetime used when a session carries no cookie expiry. */
  defaultTtlMs: number;
  /** How often expired sessions are deleted. */
  sweepIntervalMs?: number;
  /**
   * How often a thread of its own copies the write-ahead log into the
   * database file (default 1 s). 0 leaves that to SQLite, on the
   * connection that serves requests.
   */
  checkpointIntervalMs?: number;
  /** WAL pages past which the checkpoint thread starts the WAL over (default 16000: 64 MB of 4 KB pages). */
  walRestartPages?: number;
  /** Told when the checkpoint thread stops by itself; checkpoints then return to the serving connection. */
  onCheckpointerExit?: (error?: unknown) => void;
  /** Told when a timed sweep fails (the next one tries again). */
  onSweepError?: (error: unknown) => void;
}

/** Expired sessions deleted per statement: one batch holds up requests for a few milliseconds at most. */
const SWEEP_BATCH = 500;

type Callback<T = void> = (error?: unknown, value?: T) => void;

/**
 * The checkpoint thread: a second connection that copies the WAL into the
 * database file. A passive checkpoint never waits for the serving
 * connection; but under steady writes it never catches up either, and SQLite
 * starts the WAL over only once it has. So past `restartPages` the thread
 * asks for a restart, which waits for a gap between two writes and holds
 * the writer back while it copies what the last passive pass left and
 * syncs: a stall like SQLite's own checkpoint (longer by the busy handler's
 * sleeps), but once per 16000 pages instead of once per 1000.
 * The thread also counts the sessions that have not expired when asked
 * (`{ id, now }`, answered `{ id, count }` or `{ id, error }`): with many
 * sessions that takes milliseconds, which on the serving connection would
 * stall every request for as long.
 * The thread is `sqlite-checkpointer.ts`.
 */
/**
 * The checkpoint thread's compiled file. Under the tests, which run this
 * module from its TypeScript source, it is the build's (`npm test` builds
 * before jest): a worker thread cannot run TypeScript on Node 20.
 */
function checkpointerFile(): string {
  const beside = path.join(__dirname, 'sqlite-checkpointer.js');
  return fs.existsSync(beside) ? beside : path.join(__dirname, '..', '..', 'dist', 'sessions', 'sqlite-checkpointer.js');
}

/** SQLite's own threshold for a checkpoint, in WAL pages: what the serving connection goes back to without the thread. */
const AUTOCHECKPOINT_PAGES = 1000;
/** A WAL grown by a burst is cut back to this when SQLite starts it over. */
const WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024;

/**
 * An express-session store in one SQLite file (better-sqlite3): sessions
 * survive restarts of a single instance with no server to run. WAL mode,
 * expiry per row, a timer sweeps what has expired, a thread checkpoints.
 */
export class SqliteSessionStore extends session.Store {
  readonly #db: Database.Database;
  readonly #defaultTtlMs: number;
  readonly #timer: NodeJS.Timeout;
  #checkpointer: Worker | undefined;
  /** Counts asked of the checkpoint thread and not answered yet, by id. */
  readonly #counts = new Map<number, { resolve: (count: number) => void; reject: (error: Error) => void }>();
  #lastCountId = 0;
  #sweeping = false;
  readonly #statements: {
    get: Database.Statement<[string, number], { data: string; expires: number }>;
    set: Database.Statement<[string, string, number]>;
    destroy: Database.Statement<[string]>;
    sweep: Database.Statement<[number, number]>;
    count: Database.Statement<[number], { n: number }>;
    clear: Database.Statement<[]>;
  };

  constructor(options: SqliteStoreOptions) {
    super();
    fs.mkdirSync(path.dirname(options.file), { recursive: true });
    this.#db = new Database(options.file);
    this.#db.pragma('journal_mode = WAL');
    // WAL with synchronous=NORMAL stays consistent after a crash and may lose only the last commits on power loss
    this.#db.pragma('synchronous = NORMAL');
    this.#db.pragma('busy_timeout = 5000');
    this.#db.pragma(`journal_size_limit = ${WAL_SIZE_LIMIT_BYTES}`);
    this.#db.exec('CREATE TABLE IF NOT EXISTS sessions (sid TEXT PRIMARY KEY, data TEXT NOT NULL, expires INTEGER NOT NULL) WITHOUT ROWID');
    this.#db.exec('CREATE INDEX IF NOT EXISTS sessions_expires ON sessions (expires)');
    this.#statements = {
      get: this.#db.prepare('SELECT data, expires FROM sessions WHERE sid = ? AND expires > ?'),
      set: this.#db.prepare('INSERT INTO sessions (sid, data, expires) VALUES (?, ?, ?) ON CONFLICT(sid) DO UPDATE SET data = excluded.data, expires = excluded.expires'),
      destroy: this.#db.prepare('DELETE FROM sessions WHERE sid = ?'),
      sweep: this.#db.prepare('DELETE FROM sessions WHERE sid IN (SELECT sid FROM sessions WHERE expires <= ? LIMIT ?)'),
      count: this.#db.prepare('SELECT count(*) AS n FROM sessions WHERE expires > ?'),
      clear: this.#db.prepare('DELETE FROM sessions'),
    };
    this.#defaultTtlMs = options.defaultTtlMs;
    this.#timer = setInterval(() => {
      this.sweep().catch((error: unknown) => options.onSweepError?.(error));
    }, options.sweepIntervalMs ?? 10 * 60 * 1000);
    this.#timer.unref();
    const checkpointIntervalMs = options.checkpointIntervalMs ?? 1000;
    if (checkpointIntervalMs > 0) {
      this.#startCheckpointer(options.file, { intervalMs: checkpointIntervalMs, restartPages: options.walRestartPages ?? 16_000 }, options.onCheckpointerExit);
    }
  }

  /**
   * A checkpoint copies the WAL into the database file and syncs it to disk:
   * several milliseconds on a real disk (about 10 ms here), during which a
   * connection on the event loop would stall every request. SQLite runs one
   * on the writing connection every 1000 pages; here a thread runs them.
   */
  #startCheckpointer(file: string, timing: { intervalMs: number; restartPages: number }, onExit?: (error?: unknown) => void): void {
    this.#db.pragma('wal_autocheckpoint = 0');
    const workerData: CheckpointerData = { file, ...timing };
    const worker = new Worker(checkpointerFile(), {
      workerData,
      resourceLimits: { maxOldGenerationSizeMb: 16, maxYoungGenerationSizeMb: 4 },
    });
    let failure: unknown;
    worker.once('error', (error) => {
      failure = error;
    });
    worker.on('message', ({ id, count, error }: CountAnswer) => {
      const asked = this.#counts.get(id);
      this.#counts.delete(id);
      if (error) asked?.reject(Object.assign(new Error(error.message), { code: error.code }));
      else asked?.resolve(count ?? 0);
    });
    // after the 'message' listener, which refs the worker's port again: a forgotten store never keeps the process alive
    worker.unref();
    worker.once('exit', () => {
      for (const asked of this.#counts.values()) asked.reject(new Error('the SQLite checkpoint thread stopped before it counted'));
      this.#counts.clear();
      if (this.#checkpointer !== worker) return; // closed on purpose
      this.#checkpointer = undefined;
      // never let the WAL grow without bound: the serving connection checkpoints again
      if (this.#db.open) this.#db.pragma(`wal_autocheckpoint = ${AUTOCHECKPOINT_PAGES}`);
      onExit?.(failure);
    });
    this.#checkpointer = worker;
  }

  #expires(sess: SessionData): number {
    const expires = sess.cookie?.expires;
    return expires ? new Date(expires).getTime() : Date.now() + this.#defaultTtlMs;
  }

  /** Runs `work` and hands its result or error to an express-session callback. */
  #run<T>(callback: Callback<T> | undefined, work: () => T): void {
    let value: T;
    try {
      value = work();
    } catch (error) {
      callback?.(error);
      return;
    }
    callback?.(undefined, value);
  }

  override get(sid: string, callback: (error: unknown, session?: SessionData | null) => void): void {
    this.#run<SessionData | null>(
      (error, value) => callback(error, value),
      () => {
        const row = this.#statements.get.get(sid, Date.now());
        if (!row) return null;
        return JSON.parse(row.data) as SessionData;
      },
    );
  }

  override set(sid: string, sess: SessionData, callback?: (error?: unknown) => void): void {
    this.#run(callback, () => {
      const expires = this.#expires(sess);
      this.#statements.set.run(sid, JSON.stringify(sess), expires);
    });
  }

  override destroy(sid: string, callback?: (error?: unknown) => void): void {
    this.#run(callback, () => {
      this.#statements.destroy.run(sid);
    });
  }

  override length(callback: (error: unknown, length?: number) => void): void {
    this.#run<number>((error, value) => callback(error, value), () => this.#statements.count.get(Date.now())?.n ?? 0);
  }

  /**
   * The sessions that have not expired, as `length` answers, counted where
   * the event loop does not wait: on the checkpoint thread's connection. With
   * no thread (`checkpointIntervalMs: 0`, or it stopped), on the serving
   * connection, but after the events already queued rather than in the
   * caller's turn. For metrics, which ask at most every few seconds.
   */
  countActive(): Promise<number> {
    const worker = this.#checkpointer;
    if (!worker) {
      return new Promise((resolve, reject) => {
        setImmediate(() => this.length((error, length) => (error ? reject(error as Error) : resolve(length ?? 0))));
      });
    }
    return new Promise((resolve, reject) => {
      const id = (this.#lastCountId += 1);
      this.#counts.set(id, { resolve, reject });
      worker.postMessage({ id, now: Date.now() });
    });
  }

  override clear(callback?: (error?: unknown) => void): void {
    this.#run(callback, () => {
      this.#statements.clear.run();
    });
  }

  /**
   * Deletes expired sessions, a batch at a time with requests served in
   * between (one statement for 20000 rows held the event loop for 230 ms);
   * answers how many went. A sweep still running makes the next one a no-op.
   */
  async sweep(): Promise<number> {
    if (this.#sweeping) return 0;
    this.#sweeping = true;
    let total = 0;
    try {
      const now = Date.now();
      while (this.#db.open) {
        const { changes } = this.#statements.sweep.run(now, SWEEP_BATCH);
        total += changes;
        if (changes < SWEEP_BATCH) break;
        await new Promise((resolve) => setImmediate(resolve));
      }
      return total;
    } finally {
      this.#sweeping = false;
    }
  }

  /** True when the database answers. */
  ping(): boolean {
    return this.#db.prepare('SELECT 1 AS ok').get() !== undefined;
  }

  /** Stops the sweeps and the checkpoint thread, then closes the database (its last checkpoint removes the WAL). */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    const checkpointer = this.#checkpointer;
    this.#checkpointer = undefined;
    // waits for a checkpoint under way: native work is never cut short
    if (checkpointer) await checkpointer.terminate();
    if (this.#db.open) this.#db.close();
  }
}
