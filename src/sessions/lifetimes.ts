import type { Request } from 'express';
import type { SessionData } from 'express-session';
import './session-data';

/**
 * Idle timeout and absolute lifetime, checked on each request: `ended` when
 * either has run out, `refresh` when `seenAt` is due to be moved on. `seenAt`
 * is refreshed at most every few minutes, so an active visitor's session is
 * written (and its store TTL extended) rarely rather than on every request.
 */
export function lifetimes(idleTimeoutMs: number, maxAgeMs: number): (data: Partial<SessionData> | undefined) => 'current' | 'refresh' | 'ended' {
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
