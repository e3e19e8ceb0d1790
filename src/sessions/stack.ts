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
import { lifetimes } from './lifetimes';
import { createRedisClient, loadRedisModule } from './redis';
import { markLoads, readValidated } from './store-reads';
import { regenerateSession } from './regenerate';
import { Codes } from '../errors';

/** The sessions `peek` read, by request. */
const peeked = new WeakMap<Request, Readonly<Partial<SessionData>>>();

/** The session `peek` read for this request, if any. */
export function peekedSession(req: Request): Readonly<Partial<SessionData>> | undefined {
  return peeked.get(req);
}

/** Longest wait for a store to answer a readiness ping. */
const PING_TIMEOUT_MS = 1000;

export interface SessionStack {
  store: Store;
  cookieName: string;
  /** Loads the visitor's session, creating an empty one when there is none (nothing is written until it changes). */
  required: RequestHandler;
  /** Loads the session only when the browser sends a session cookie; otherwise `req.session` stays undefined. */
  optional: RequestHandler;
  /**
   * Reads the session, when the browser sends a cookie, for this request only:
   * `peekedSession(req)` then gives it, `req.session` stays undefined, and
   * nothing is written or set (a session whose lifetime ran out reads as none).
   */
  peek: RequestHandler;
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
        if (error) logger.warn({ event: 'late_error', code: Codes.SESSION_STORE_UNAVAILABLE, err: { message: (error as Error)?.message } }, 'session could not be saved after the response');
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

  // express-session's own reading, so a peek sees what every other route sees
  function peek(req: Request, res: Response, next: NextFunction): void {
    const cookies = req.headers.cookie;
    if (!cookies || !cookies.includes(cookieName)) {
      next();
      return;
    }
    middleware(req, res, (error?: unknown) => {
      if (error) {
        next(storeUnavailable(error));
        return;
      }
      const data = req.session;
      if (lifetimeOf(data) !== 'ended') peeked.set(req, data);
      // without req.session, express-session neither saves the session nor sets its cookie
      delete (req as { session?: unknown }).session;
      next();
    });
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

  return { store, cookieName, required, optional, peek, sessionIdOf, redis, ping, close };
}
