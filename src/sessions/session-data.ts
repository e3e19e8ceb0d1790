import { z } from 'zod';
import type { GrantedPermissions, IpernityUser, RequestedPermissions } from '../ipernity';

/** A connection attempt this browser started, kept in its attempts cookie: the callback is honoured only against one of these. */
export interface PendingAttempt {
  /** Random id, also used by the desktop "Complete authorization" form. */
  nonce: string;
  permissions: RequestedPermissions;
  returnTo: string;
  startedAt: number;
  /** Desktop mode: the frob from `auth.getFrob`, put in the authorization link. */
  frob?: string;
  /** OAuth mode: the request token obtained for this attempt (the callback must bring it back) and its secret. */
  requestToken?: string;
  requestSecret?: string;
}

/** The visitor's ipernity connection as kept in the session (the token sealed). */
export interface StoredConnection {
  /** The ipernity token, encrypted with `TokenCipher`; never in clear in a store. */
  sealedToken: string;
  permissions: GrantedPermissions;
  user: IpernityUser;
  connectedAt: number;
  checkedAt: number;
  /** Where the flow that connected went on to: a reload of the callback goes there again. */
  returnTo?: string;
}

declare module 'express-session' {
  interface SessionData {
    connection?: StoredConnection;
    /** Shown once on the home page. */
    notice?: 'revoked';
    /** When something was first kept for this visitor (absolute lifetime). */
    createdAt?: number;
    /** Last activity, refreshed coarsely (idle timeout). */
    seenAt?: number;
  }
}

/**
 * What a stored session must look like to be used: express-session's cookie
 * and, when present, each field this server reads, of its type. Unknown
 * fields are kept (a newer version may have written them).
 */
const storedSession = z.looseObject({
  cookie: z.looseObject({}),
  connection: z
    .looseObject({
      sealedToken: z.string(),
      permissions: z.record(z.string(), z.string()),
      user: z.looseObject({ userId: z.string(), username: z.string(), realname: z.string() }),
      connectedAt: z.number(),
      checkedAt: z.number(),
      returnTo: z.string().optional(),
    })
    .optional(),
  notice: z.literal('revoked').optional(),
  createdAt: z.number().optional(),
  seenAt: z.number().optional(),
});

/** True when a value read from the store is a session this server can use. */
export function isStoredSession(value: unknown): boolean {
  return storedSession.safeParse(value).success;
}
