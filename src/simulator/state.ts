import { randomBytes, randomInt } from 'node:crypto';
import type { RequestedPermissions } from '../ipernity/permissions';

/** A fictional ipernity account. */
export interface SimulatedUser {
  userId: string;
  username: string;
  realname: string;
  lang?: string;
  isPro?: boolean;
  /** A closed or suspended account: its tokens answer 108. */
  closed?: boolean;
}

/** An application registered with the simulator (an API key and its secret). */
export interface SimulatedApp {
  apiKey: string;
  apiSecret: string;
  name: string;
  /** Web applications: where the browser goes back with a frob. Absent for desktop keys. */
  callbackUrl?: string;
  /** A line under the name on the authorization page. */
  subtitle?: string;
  /** What the application does, by language (`{ en: '…', fr: '…' }`): the visitor reads theirs, else English, else the first. */
  description?: Readonly<Record<string, string>>;
  /** Who makes the application. */
  developer?: string;
  /** The application's website (shown as a link when it is http or https). */
  websiteUrl?: string;
}

export interface FrobRecord {
  apiKey: string;
  expiresAt: number;
  /** Set once the visitor authorized on the authorization page. */
  grant?: { userId: string; permissions: RequestedPermissions };
  used: boolean;
}

export interface TokenRecord {
  apiKey: string;
  userId: string;
  permissions: RequestedPermissions;
  revoked: boolean;
  /** An OAuth access token's secret: such a token is honoured only on OAuth-signed calls, a frob token only as `auth_token`. */
  secret?: string;
}

/** An OAuth request token: obtained by the application, authorized by the visitor, exchanged once for an access token. */
export interface RequestTokenRecord {
  apiKey: string;
  secret: string;
  /** Where the authorization page sends the browser back (`oauth_callback`). */
  callback: string;
  expiresAt: number;
  used: boolean;
  /** Set once the visitor authorized on the authorization page. */
  grant?: { userId: string; permissions: RequestedPermissions };
}

/** How far an OAuth timestamp may be from the simulator's clock (132 beyond), and how long a nonce is remembered. */
export const OAUTH_TIMESTAMP_WINDOW_MS = 5 * 60 * 1000;

/** Default lifetime of a frob, as ipernity says "a few minutes". */
export const DEFAULT_FROB_TTL_MS = 5 * 60 * 1000;
const MAX_FROBS = 200_000;

function frobValue(): string {
  return `${randomInt(100_000_000, 999_999_999)}-${randomBytes(4).toString('hex')}`;
}

function tokenValue(): string {
  return `${randomInt(100_000_000, 999_999_999)}-${randomBytes(8).toString('hex')}`;
}

/** The simulator's memory: apps, users, frobs, OAuth request tokens and tokens. Nothing is persisted. */
export class SimulatorState {
  readonly apps = new Map<string, SimulatedApp>();
  readonly users = new Map<string, SimulatedUser>();
  readonly #frobs = new Map<string, FrobRecord>();
  readonly #tokens = new Map<string, TokenRecord>();
  readonly #requestTokens = new Map<string, RequestTokenRecord>();
  /** Nonces seen per consumer, with the time they may be forgotten (their timestamp has left the window). */
  readonly #nonces = new Map<string, number>();

  constructor(
    apps: readonly SimulatedApp[],
    users: readonly SimulatedUser[],
    readonly frobTtlMs: number,
    /** Accept any numeric user id on the authorization form, inventing the account. */
    readonly openUsers: boolean,
  ) {
    for (const app of apps) this.apps.set(app.apiKey, app);
    for (const user of users) this.users.set(user.userId, { ...user });
  }

  /** A user by id; with `openUsers`, an unknown numeric id becomes a new account. */
  user(userId: string): SimulatedUser | undefined {
    const known = this.users.get(userId);
    if (known || !this.openUsers || !/^[0-9]{1,12}$/.test(userId)) return known;
    const invented = { userId, username: `user${userId}`, realname: `Test User ${userId}` };
    this.users.set(userId, invented);
    return invented;
  }

  /** A frob not yet authorized (desktop `auth.getFrob`). */
  createFrob(apiKey: string): string {
    return this.#storeFrob({ apiKey, expiresAt: Date.now() + this.frobTtlMs, used: false });
  }

  /** A frob already authorized (web flow, handed to the callback). */
  createAuthorizedFrob(apiKey: string, userId: string, permissions: RequestedPermissions): string {
    return this.#storeFrob({ apiKey, expiresAt: Date.now() + this.frobTtlMs, used: false, grant: { userId, permissions } });
  }

  /** The live frob of this app, or undefined when unknown, used or expired. */
  liveFrob(apiKey: string, frob: string): FrobRecord | undefined {
    const record = this.#frobs.get(frob);
    if (!record || record.apiKey !== apiKey || record.used || record.expiresAt <= Date.now()) return undefined;
    return record;
  }

  /** Exchanges an authorized frob for a token; undefined when the frob is not exchangeable. */
  exchangeFrob(apiKey: string, frob: string): { token: string; record: TokenRecord } | undefined {
    const record = this.liveFrob(apiKey, frob);
    if (!record?.grant) return undefined;
    record.used = true;
    const token = tokenValue();
    const tokenRecord: TokenRecord = { apiKey, userId: record.grant.userId, permissions: record.grant.permissions, revoked: false };
    this.#tokens.set(token, tokenRecord);
    return { token, record: tokenRecord };
  }

  /** OAuth: a request token for this app, to be authorized and then exchanged once (it lives as long as a frob). */
  createRequestToken(apiKey: string, callback: string): { token: string; secret: string } {
    if (this.#requestTokens.size >= MAX_FROBS) this.sweep();
    const token = randomBytes(16).toString('hex');
    const secret = randomBytes(16).toString('hex');
    this.#requestTokens.set(token, { apiKey, secret, callback, expiresAt: Date.now() + this.frobTtlMs, used: false });
    return { token, secret };
  }

  /** The live request token (any app's), or undefined when unknown, used or expired. */
  liveRequestToken(token: string): RequestTokenRecord | undefined {
    const record = this.#requestTokens.get(token);
    return record && !record.used && record.expiresAt > Date.now() ? record : undefined;
  }

  /** OAuth: exchanges an authorized request token (once) for an access token bound to its user and grant. */
  exchangeRequestToken(apiKey: string, token: string): { token: string; secret: string } | undefined {
    const record = this.liveRequestToken(token);
    if (!record?.grant || record.apiKey !== apiKey) return undefined;
    record.used = true;
    const access = tokenValue();
    const secret = randomBytes(16).toString('hex');
    this.#tokens.set(access, { apiKey, userId: record.grant.userId, permissions: record.grant.permissions, revoked: false, secret });
    return { token: access, secret };
  }

  /**
   * Records an OAuth nonce of a consumer (with its token, as RFC 5849 allows);
   * false when that nonce was already used within the timestamp window (133).
   */
  spendNonce(apiKey: string, token: string | undefined, nonce: string, timestampMs: number): boolean {
    const now = Date.now();
    if (this.#nonces.size >= MAX_FROBS) {
      for (const [key, until] of this.#nonces) if (until <= now) this.#nonces.delete(key);
    }
    const key = `${apiKey}\n${token ?? ''}\n${nonce}`;
    const until = this.#nonces.get(key);
    if (until !== undefined && until > now) return false;
    this.#nonces.set(key, Math.max(now, timestampMs) + OAUTH_TIMESTAMP_WINDOW_MS);
    return true;
  }

  token(apiKey: string, token: string): TokenRecord | undefined {
    const record = this.#tokens.get(token);
    return record && record.apiKey === apiKey ? record : undefined;
  }

  /**
   * Every token issued so far, with the OAuth secrets (tests scan responses
   * and logs for them; a request token itself travels in the browser's
   * addresses, as OAuth has it, but never its secret).
   */
  issuedTokens(): string[] {
    const secrets = [...this.#tokens.values()].flatMap((record) => (record.secret ? [record.secret] : []));
    return [...this.#tokens.keys(), ...secrets, ...[...this.#requestTokens.values()].map((record) => record.secret)];
  }

  /** Revokes one token, or every token when none is named; answers how many. */
  revoke(token?: string): number {
    let count = 0;
    for (const [value, record] of this.#tokens) {
      if ((token === undefined || value === token) && !record.revoked) {
        record.revoked = true;
        count += 1;
      }
    }
    return count;
  }

  /** Revokes every token held for a user (as when they remove the application on ipernity). */
  revokeUser(userId: string): number {
    let count = 0;
    for (const record of this.#tokens.values()) {
      if (record.userId === userId && !record.revoked) {
        record.revoked = true;
        count += 1;
      }
    }
    return count;
  }

  #storeFrob(record: FrobRecord): string {
    if (this.#frobs.size >= MAX_FROBS) this.sweep();
    const frob = frobValue();
    this.#frobs.set(frob, record);
    return frob;
  }

  /** Forgets used and expired frobs. */
  sweep(): void {
    const now = Date.now();
    for (const [frob, record] of this.#frobs) {
      if (record.used || record.expiresAt <= now) this.#frobs.delete(frob);
    }
    for (const [token, record] of this.#requestTokens) {
      if (record.used || record.expiresAt <= now) this.#requestTokens.delete(token);
    }
  }

  /**
   * The applications holding a live (not revoked) token of this user, in the
   * order they were first authorized, each with the grants of those tokens.
   */
  authorizedApps(userId: string): Array<{ app: SimulatedApp; grants: RequestedPermissions[] }> {
    const byApp = new Map<string, RequestedPermissions[]>();
    for (const record of this.#tokens.values()) {
      if (record.userId !== userId || record.revoked || !this.apps.has(record.apiKey)) continue;
      const grants = byApp.get(record.apiKey) ?? [];
      grants.push(record.permissions);
      byApp.set(record.apiKey, grants);
    }
    return [...byApp].map(([apiKey, grants]) => ({ app: this.apps.get(apiKey) as SimulatedApp, grants }));
  }

  /** Revokes a user's tokens for one application (as when they remove it from their ipernity settings); answers how many. */
  revokeApp(userId: string, apiKey: string): number {
    let count = 0;
    for (const record of this.#tokens.values()) {
      if (record.userId === userId && record.apiKey === apiKey && !record.revoked) {
        record.revoked = true;
        count += 1;
      }
    }
    return count;
  }
}
