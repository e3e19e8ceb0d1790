import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import session, { type SessionData } from 'express-session';

export interface SqliteStoreOptions {
  /** The database file; its folder is created when missing. */
  file: string;
  /** Lifetime used when a session carries no cookie expiry. */
  defaultTtlMs: number;
  /** How often expired sessions are deleted. */
  sweepIntervalMs?: number;
}

/** A touch that moves the expiry by less than this writes nothing. */
const TOUCH_RESOLUTION_MS = 60_000;
const MAX_KNOWN_EXPIRIES = 50_000;

type Callback<T = void> = (error?: unknown, value?: T) => void;

/**
 * An express-session store in one SQLite file (better-sqlite3): sessions
 * survive restarts of a single instance with no server to run. WAL mode,
 * expiry per row, a timer sweeps what has expired.
 */
export class SqliteSessionStore extends session.Store {
  readonly #db: Database.Database;
  readonly #defaultTtlMs: number;
  readonly #timer: NodeJS.Timeout;
  readonly #knownExpiry = new Map<string, number>();
  readonly #statements: {
    get: Database.Statement<[string, number], { data: string; expires: number }>;
    set: Database.Statement<[string, string, number]>;
    touch: Database.Statement<[number, string]>;
    destroy: Database.Statement<[string]>;
    sweep: Database.Statement<[number]>;
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
    this.#db.exec('CREATE TABLE IF NOT EXISTS sessions (sid TEXT PRIMARY KEY, data TEXT NOT NULL, expires INTEGER NOT NULL) WITHOUT ROWID');
    this.#db.exec('CREATE INDEX IF NOT EXISTS sessions_expires ON sessions (expires)');
    this.#statements = {
      get: this.#db.prepare('SELECT data, expires FROM sessions WHERE sid = ? AND expires > ?'),
      set: this.#db.prepare('INSERT INTO sessions (sid, data, expires) VALUES (?, ?, ?) ON CONFLICT(sid) DO UPDATE SET data = excluded.data, expires = excluded.expires'),
      touch: this.#db.prepare('UPDATE sessions SET expires = ? WHERE sid = ?'),
      destroy: this.#db.prepare('DELETE FROM sessions WHERE sid = ?'),
      sweep: this.#db.prepare('DELETE FROM sessions WHERE expires <= ?'),
      count: this.#db.prepare('SELECT count(*) AS n FROM sessions WHERE expires > ?'),
      clear: this.#db.prepare('DELETE FROM sessions'),
    };
    this.#defaultTtlMs = options.defaultTtlMs;
    this.#timer = setInterval(() => this.sweep(), options.sweepIntervalMs ?? 10 * 60 * 1000);
    this.#timer.unref();
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
        this.#remember(sid, row.expires);
        return JSON.parse(row.data) as SessionData;
      },
    );
  }

  override set(sid: string, sess: SessionData, callback?: (error?: unknown) => void): void {
    this.#run(callback, () => {
      const expires = this.#expires(sess);
      this.#statements.set.run(sid, JSON.stringify(sess), expires);
      this.#remember(sid, expires);
    });
  }

  override touch(sid: string, sess: SessionData, callback?: () => void): void {
    this.#run(callback as Callback | undefined, () => {
      const expires = this.#expires(sess);
      // express-session touches on every read: write only when the expiry moves by a minute or more
      const known = this.#knownExpiry.get(sid);
      if (known !== undefined && Math.abs(expires - known) < TOUCH_RESOLUTION_MS) return;
      this.#statements.touch.run(expires, sid);
      this.#remember(sid, expires);
    });
  }

  /** Expiries this process last read or wrote, so that touch can skip writes that change nothing that matters. */
  #remember(sid: string, expires: number): void {
    if (this.#knownExpiry.size >= MAX_KNOWN_EXPIRIES) this.#knownExpiry.clear();
    this.#knownExpiry.set(sid, expires);
  }

  override destroy(sid: string, callback?: (error?: unknown) => void): void {
    this.#run(callback, () => {
      this.#statements.destroy.run(sid);
      this.#knownExpiry.delete(sid);
    });
  }

  override length(callback: (error: unknown, length?: number) => void): void {
    this.#run<number>((error, value) => callback(error, value), () => this.#statements.count.get(Date.now())?.n ?? 0);
  }

  override clear(callback?: (error?: unknown) => void): void {
    this.#run(callback, () => {
      this.#statements.clear.run();
      this.#knownExpiry.clear();
    });
  }

  /** Deletes expired sessions; answers how many went. */
  sweep(): number {
    return this.#statements.sweep.run(Date.now()).changes;
  }

  /** True when the database answers. */
  ping(): boolean {
    return this.#db.prepare('SELECT 1 AS ok').get() !== undefined;
  }

  close(): void {
    clearInterval(this.#timer);
    if (this.#db.open) this.#db.close();
  }
}
