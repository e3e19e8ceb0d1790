import type { Request } from 'express';
import type { Logger } from 'pino';
import { IpernityApiError, type IpernityClient, type GrantedPermissions, type IpernityUser } from '../ipernity';
import type { TokenCipher } from '../security/token-cipher';
import { TokenUnreadableError } from '../security/token-cipher';
import type { StoredConnection } from '../sessions/session-data';
import '../sessions/session-data';
import type { Metrics } from '../web/metrics';
import { flowEvent } from '../web/logging';

/** What the site may see of a connection: never the token. */
export interface ConnectionView {
  user: IpernityUser;
  permissions: GrantedPermissions;
  connectedAt: string;
  checkedAt: string;
}

export function viewOf(connection: StoredConnection): ConnectionView {
  return {
    user: connection.user,
    permissions: connection.permissions,
    connectedAt: new Date(connection.connectedAt).toISOString(),
    checkedAt: new Date(connection.checkedAt).toISOString(),
  };
}

/** ipernity codes that mean the stored token can no longer be used. */
const TOKEN_GONE_CODES = new Set([107, 108]);

export interface TokenCheckOptions {
  client: IpernityClient;
  cipher: TokenCipher;
  intervalMs: number;
  onRevoked?: (req: Request, reason: string) => void;
}

/** True when the stored connection is old enough to be checked with `auth.checkToken`. */
export function shouldCheckToken(connection: StoredConnection, intervalMs: number, now = Date.now()): boolean {
  return now - connection.checkedAt >= intervalMs;
}

/**
 * Checks the session's token with ipernity when it is due (or `force`d).
 * A revoked token (107) or a closed account (108) clears the connection and
 * leaves a notice; an unreachable ipernity keeps the connection as it is
 * (rethrown only when forced, so the caller can say so).
 */
export async function refreshConnection(req: Request, options: TokenCheckOptions, force: boolean, logger: Logger): Promise<StoredConnection | undefined> {
  const connection = req.session?.connection;
  if (!connection) return undefined;
  if (!force && !shouldCheckToken(connection, options.intervalMs)) return connection;
  let token: string;
  try {
    token = options.cipher.decrypt(connection.sealedToken);
  } catch (error) {
    if (!(error instanceof TokenUnreadableError)) throw error;
    forgetConnection(req, options, 'TOKEN_UNREADABLE');
    return undefined;
  }
  try {
    const grant = await options.client.checkToken(token);
    connection.permissions = grant.permissions;
    connection.user = { ...connection.user, ...grant.user };
    connection.checkedAt = Date.now();
    return connection;
  } catch (error) {
    if (error instanceof IpernityApiError && TOKEN_GONE_CODES.has(error.apiCode)) {
      forgetConnection(req, options, `IPERNITY_${error.apiCode}`);
      return undefined;
    }
    if (force) throw error;
    logger.warn({ event: 'token_check_failed', code: (error as { code?: string }).code }, 'token check failed; the connection is kept');
    return connection;
  }
}

/** Clears the session's connection that ipernity no longer honours, leaving the home page's notice. */
export function forgetConnection(req: Request, options: Pick<TokenCheckOptions, 'onRevoked'>, reason: string): void {
  delete req.session.connection;
  req.session.notice = 'revoked';
  options.onRevoked?.(req, reason);
}

/** The token-check settings the home page, the guard and the router share. */
export function tokenCheckOptions(client: IpernityClient, cipher: TokenCipher, intervalMs: number, metrics: Metrics | undefined, logger: Logger): TokenCheckOptions {
  return {
    client,
    cipher,
    intervalMs,
    onRevoked(req, reason) {
      metrics?.tokensRevoked.inc();
      flowEvent(req, logger, 'token_revoked', { reason }, 'the stored ipernity connection is no longer valid');
    },
  };
}
