import type { Request } from 'express';
import type { SessionData, Store } from 'express-session';
import type { Logger } from 'pino';
import { isStoredSession } from './session-data';

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
export function readValidated(store: Store, logger: Logger): void {
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
export function markLoads(store: Store): void {
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
