import type { Request } from 'express';
import type session from 'express-session';
import { storeUnavailable } from '../web/errors';

// Why this is not `req.session.regenerate` (expressjs/session#935): docs/decisions/session-regeneration.md

const OLD_SESSION_DELETED = Symbol('oldSessionDeleted');
type Regenerated = Request & { [OLD_SESSION_DELETED]?: Promise<void> };

/**
 * `req.session.save` as a promise; a failure is a store outage. After
 * `regenerateSession`, it also waits for the old session's deletion.
 */
export async function saveSession(req: Request): Promise<void> {
  const written = new Promise<void>((resolve, reject) => {
    req.session.save((error) => (error ? reject(storeUnavailable(error)) : resolve()));
  });
  const deleted = (req as Regenerated)[OLD_SESSION_DELETED];
  (req as Regenerated)[OLD_SESSION_DELETED] = undefined;
  await Promise.all([written, deleted]);
}

/** The session as express-session compares it: everything but its cookie. */
const contentOf = (data: session.Session): string => JSON.stringify({ ...data, cookie: undefined });

/**
 * express-session saves a session made mid-request when the response ends,
 * whatever it holds (expressjs/session#935): it compares it with the id it
 * loaded, which the new session replaced. That would store an empty session,
 * or write a saved one a second time while the response waits. So a new
 * session's `save` writes only what differs from its last write (at first,
 * from the empty session it started as).
 */
function writeOnlyWhenChanged(data: session.Session): void {
  let stored = contentOf(data);
  const write = data.save;
  Object.defineProperty(data, 'save', {
    configurable: true,
    enumerable: false,
    writable: true,
    value: function saveWhenChanged(this: session.Session, callback?: (error?: unknown) => void): session.Session {
      const content = contentOf(this);
      if (content === stored) {
        callback?.();
        return this;
      }
      return write.call(this, (error?: unknown) => {
        if (!error) stored = content;
        callback?.(error);
      });
    },
  });
}

/**
 * A new session id and an empty session (session fixation), as
 * `req.session.regenerate` makes them, except that the old session is
 * deleted while the caller fills the new one rather than before: the
 * deletion and the first save go to the store together, and
 * `saveSession` fails if either does. The new session is written only
 * when it holds something (see `writeOnlyWhenChanged`).
 */
export function regenerateSession(req: Request): void {
  const oldId = req.sessionID;
  const deleted = new Promise<void>((resolve, reject) => {
    req.sessionStore.destroy(oldId, (error) => (error ? reject(storeUnavailable(error)) : resolve()));
  });
  deleted.catch(() => undefined); // handled where saveSession awaits it
  (req as Regenerated)[OLD_SESSION_DELETED] = deleted;
  req.sessionStore.generate(req);
  writeOnlyWhenChanged(req.session);
}
