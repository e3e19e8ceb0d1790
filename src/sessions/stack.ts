import path from 'node:path';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import session, { type SessionData, type Store } from 'express-session';
import { parse as parseCookies } from 'cookie';
import { unsign } from 'cookie-signature';
import type { RedisClientType } from 'redis';
import type { Logger } from 'pino';
import type { Config } from '../config';
import { cookieNameFor } from '../security/cookie-names';
import { SqliteSessionStore } from './sqlite-store';
import { storeUnavailable } from '../web/errors';
import { randomValue } from '../security/random';
import { isStoredSession } from './session-data';
import { regenerateSession } from './regenerate';

/** Longest wait for a store to answer a readiness ping. */
const PING_TIMEOUT_MS = 1000;

export interface SessionStack {
  store: Store;
  cookieName: string;
  /** Loads the visitor's session, creating an empty one when there is none (nothing is written until it changes). */
  required: RequestHandler;
  /** Loads the session only when the browser sends a session cookie; otherwise `req.session` stays undefined. */
  optional: RequestHandler;
  /** The session id the browser's cookie carries, when it is validly signed (the session may not exist). */
  sessionIdOf(req: Request): string | undefined;
  /** The Redis client, when sessions live in Redis (shared with the rate limiter). */
  redis?: RedisClientType;
  /** True when the store answers. */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

/** A store answers when it can read a session that does not exist (its ping, for stores without one of their own). */
function answers(store: Store): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, PING_TIMEOUT_MS, false);
    timer.unref();
    store.get(`ping-${randomValue()}`, (error) => {
      clearTimeout(timer);
      resolve(!error || (error as { code?: string }).code === 'ENOENT');
    });
  });
}

/** A read that failed because what is stored is not a session (Redis: a key of another type; any store: not JSON). */
function unreadable(error: unknown): boolean {
  return error instanceof SyntaxError || /^WRONGTYPE/.test((error as Error | undefined)?.message ?? '');
}

/**
 * Makes the store's reads answer only sessions (see `isStoredSession`): what
 * is stored under an id and is not one is deleted, logged as a warning, and
 * read as no session, so its visitor goes on as a new one instead of getting
 * an error on every page until it expires.
 */
function readValidated(store: Store, logger: Logger): void {
  const get = store.get.bind(store);
  store.get = function getValidated(sid, callback) {
    const answer = (error: unknown, data?: SessionData | null): void => {
      if (error ? !unreadable(error) : data === null || data === undefined || isStoredSession(data)) {
        callback(error, data);
        return;
      }
      logger.warn({ event: 'session_invalid', reason: error ? 'unreadable' : 'shape' }, 'a stored session could not be read; it was deleted and its visitor starts anew');
      store.destroy(sid, (destroyError?: unknown) => {
        if (destroyError) logger.warn({ event: 'session_invalid_kept', err: { message: (destroyError as Error).message } }, 'the unreadable session could not be deleted');
        callback(null, null);
      });
    };
    try {
      get(sid, answer);
    } catch (error) {
      // a store that parses as it reads, and throws instead of calling back (express-session's MemoryStore)
      answer(error);
    }
  };
}

const FROM_STORE = Symbol('sessionFromStore');
type Loaded = Request & { [FROM_STORE]?: boolean };

/** Notes on the request when express-session made `req.session` from stored data (see `wasStored`). */
function markLoads(store: Store): void {
  const createSession = store.createSession.bind(store);
  store.createSession = function createMarkedSession(req, data) {
    (req as Loaded)[FROM_STORE] = true;
    return createSession(req, data);
  };
}

/**
 * True when `req.session` was read from the store, whatever it holds: its id
 * was given to a browser before, so connecting gives it a new one.
 */
export function wasStored(req: Request): boolean {
  return (req as Loaded)[FROM_STORE] === true;
}

/**
 * The Redis modules are loaded only when sessions live in Redis: a server on
 * the embedded store does not carry them in memory.
 */
function loadRedisModule<M extends 'redis' | 'connect-redis'>(name: M): M extends 'redis' ? typeof import('redis') : typeof import('connect-redis') {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- a deliberate lazy load
  return require(name);
}

/** Creates the Redis client: no offline queue (fail fast while Redis is down), bounded reconnect delay. */
export function createRedisClient(url: string, logger: Logger): RedisClientType {
  const { createClient } = loadRedisModule('redis');
  let lastComplaint = 0;
  const client = createClient({
    url,
    disableOfflineQueue: true,
    // a Redis that stops answering (frozen, or a network partition) is noticed within seconds, not never
    pingInterval: 1000,
    socket: {
      connectTimeout: 2000,
      socketTimeout: 2000,
      // keep retrying for ever, at most every 2 s, so the server recovers by itself when Redis returns
      reconnectStrategy: (retries: number) => Math.min(50 * 2 ** Math.min(retries, 6), 2000),
    },
  }) as RedisClientType;
  client.on('error', (error: Error) => {
    const now = Date.now();
    if (now - lastComplaint > 10_000) {
      lastComplaint = now;
      logger.warn({ event: 'redis_error', err: { message: error.message } }, 'Redis is unavailable');
    }
  });
  client.on('ready', () => logger.info({ event: 'redis_ready' }, 'Redis connection ready'));
  return client;
}

/**
 * The session middleware and its store, chosen by `SESSION_STORE`. Each
 * express-session flag is set on purpose; see the comments beside them.
 */
export function createSessionStack(config: Config, logger: Logger, options: { store?: Store } = {}): SessionStack {
  let store: Store;
  let redis: RedisClientType | undefined;
  let ping: () => Promise<boolean>;
  let close: () => Promise<void>;

  if (options.store) {
    store = options.store;
    ping = () => answers(store);
    close = async () => undefined;
  } else if (config.session.store === 'redis') {
    redis = createRedisClient(config.session.redisUrl as string, logger);
    redis.connect().catch((error: Error) => logger.warn({ event: 'redis_error', err: { message: error.message } }, 'Redis connection failed'));
    const client = redis;
    // the idle timeout is enforced by `seenAt` below, so a read never needs a TTL refresh round trip
    const { RedisStore } = loadRedisModule('connect-redis');
    store = new RedisStore({ client, prefix: config.session.redisKeyPrefix, disableTouch: true });
    ping = async () => {
      if (!client.isReady) return false;
      try {
        const answer = await Promise.race([client.ping(), new Promise((resolve) => setTimeout(resolve, PING_TIMEOUT_MS, 'timeout').unref())]);
        return answer === 'PONG';
      } catch {
        return false;
      }
    };
    close = async () => {
      if (client.isOpen) await client.close().catch(() => client.destroy());
    };
  } else if (config.session.store === 'sqlite') {
    const sqlite = new SqliteSessionStore({
      file: path.join(config.session.dataDir, 'sessions.sqlite'),
      defaultTtlMs: config.session.idleTimeoutMs,
      onCheckpointerExit(error) {
        logger.warn({ event: 'sqlite_checkpointer_exit', err: error }, 'the SQLite checkpoint thread stopped; checkpoints run on the serving connection again');
      },
      onSweepError(error) {
        logger.warn({ event: 'sqlite_sweep_failed', err: error }, 'expired sessions could not be deleted; the next sweep tries again');
      },
    });
    store = sqlite;
    ping = async () => {
      try {
        return sqlite.ping();
      } catch {
        return false;
      }
    };
    close = () => sqlite.close();
  } else {
    store = new session.MemoryStore();
    ping = () => answers(store);
    close = async () => undefined;
  }
  readValidated(store, logger);
  markLoads(store);

  const cookieName = cookieNameFor(config, 'sid');
  const middleware = session({
    name: cookieName,
    secret: config.sessionSecrets, // newest first: signs with the first, accepts all
    store,
    resave: false, // write only sessions that changed
    saveUninitialized: false, // no session for visitors who start nothing
    rolling: false, // the cookie is re-sent when the session changes, which `seenAt` makes happen on activity
    unset: 'keep', // nothing sets req.session to null; 'destroy' deleted sessions whose load had failed
    genid: randomValue, // 256 random bits
    cookie: {
      httpOnly: true,
      sameSite: 'lax', // not strict: the callback is a top-level navigation from ipernity
      secure: config.secure,
      path: '/',
      maxAge: config.session.idleTimeoutMs,
    },
  });

  const lifetimeOf = lifetimes(config.session.idleTimeoutMs, config.session.maxAgeMs);

  function required(req: Request, res: Response, next: NextFunction): void {
    let called = false;
    middleware(req, res, (error?: unknown) => {
      if (called) {
        // express-session calls back again when its end-of-response save fails: the answer is already out
        if (error) logger.warn({ event: 'late_error', code: 'SESSION_STORE_UNAVAILABLE', err: { message: (error as Error)?.message } }, 'session could not be saved after the response');
        return;
      }
      called = true;
      if (error) {
        next(storeUnavailable(error));
        return;
      }
      const data = req.session;
      const lifetime = lifetimeOf(data);
      // a new id and an empty session, as a visitor without one gets: stored only if the route fills it
      if (lifetime === 'ended') regenerateSession(req);
      if (lifetime === 'refresh') data.seenAt = Date.now();
      next();
    });
  }

  function optional(req: Request, res: Response, next: NextFunction): void {
    const cookies = req.headers.cookie;
    if (!cookies || !cookies.includes(cookieName)) {
      next();
      return;
    }
    required(req, res, next);
  }

  /** The session id the browser's signed cookie carries, when one of the secrets signed it (as express-session reads it). */
  function sessionIdOf(req: Request): string | undefined {
    const cookies = req.headers.cookie;
    const value = cookies && cookies.includes(cookieName) ? parseCookies(cookies)[cookieName] : undefined;
    if (!value?.startsWith('s:')) return undefined;
    for (const secret of config.sessionSecrets) {
      const id = unsign(value.slice(2), secret);
      if (id !== false) return id;
    }
    return undefined;
  }

  return { store, cookieName, required, optional, sessionIdOf, redis, ping, close };
}

/**
 * Idle timeout and absolute lifetime, checked on each request: `ended` when
 * either has run out, `refresh` when `seenAt` is due to be moved on. `seenAt`
 * is refreshed at most every few minutes, so an active visitor's session is
 * written (and its store TTL extended) rarely rather than on every request.
 */
function lifetimes(idleTimeoutMs: number, maxAgeMs: number): (data: Partial<SessionData> | undefined) => 'current' | 'refresh' | 'ended' {
  const refreshEveryMs = Math.min(idleTimeoutMs / 4, 15 * 60 * 1000);
  return function lifetimeOf(data) {
    if (!data || data.createdAt === undefined) return 'current';
    const now = Date.now();
    const seenAt = data.seenAt ?? data.createdAt;
    if (now - data.createdAt > maxAgeMs || now - seenAt > idleTimeoutMs) return 'ended';
    return now - seenAt > refreshEveryMs ? 'refresh' : 'current';
  };
}

/** Marks the session as holding something worth keeping (starts its lifetimes). */
export function markActive(req: Request): void {
  const now = Date.now();
  req.session.createdAt ??= now;
  req.session.seenAt = now;
}
