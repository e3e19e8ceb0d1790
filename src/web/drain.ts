import type { Request } from 'express';

/** Longest wait for the rest of a refused request's body. */
const DRAIN_MS = 2000;
/** A client that sends nothing for this long has nothing in flight to be reset under the answer. */
const DRAIN_IDLE_MS = 100;
/** A body declared longer than this is not waited for. */
const DRAIN_MAX_BYTES = 16 * 2 ** 20;

/**
 * Reads and drops what the client is still sending of a request answered
 * before its body was read (a refused upload). A connection closed with
 * bytes it never read is reset, and the reset can reach the client before
 * the answer does: the client then sees no answer at all. Resolves once the
 * body has ended, the client has gone or paused for DRAIN_IDLE_MS, or
 * DRAIN_MS have passed; at once for a request that arrived whole or declares
 * more than DRAIN_MAX_BYTES.
 */
export function drainBody(req: Request): Promise<void> {
  const declared = Number(req.headers['content-length']);
  if (req.complete || req.destroyed || declared > DRAIN_MAX_BYTES) return Promise.resolve();
  return new Promise((resolve) => {
    let idle: NodeJS.Timeout | undefined;
    const done = (): void => {
      clearTimeout(timer);
      clearTimeout(idle);
      req.off('data', moving);
      req.off('end', done);
      req.off('close', done);
      resolve();
    };
    const moving = (): void => {
      clearTimeout(idle);
      idle = setTimeout(done, DRAIN_IDLE_MS);
    };
    const timer = setTimeout(done, DRAIN_MS);
    moving();
    req.on('data', moving);
    req.once('end', done);
    req.once('close', done);
    req.resume();
  });
}
