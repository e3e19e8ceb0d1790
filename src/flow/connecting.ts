import type { Request, Response } from 'express';
import { grantedItems, IpernityApiError, isFrob, samePermissions, satisfies, toParams, type GrantedPermissions, type TokenGrant, type ValidatedFrob } from '../ipernity';
import type { PendingAttempt } from '../sessions/session-data';
import { markActive } from '../sessions/lifetimes';
import { wasStored } from '../sessions/store-reads';
import { regenerateSession, saveSession } from '../sessions/regenerate';
import { languageOf } from '../web/i18n';
import { flowEvent } from '../web/logging';
import { seeOther } from '../web/see-other';
import type { FlowContext } from './context';
import { safeReturnTo } from './return-to';

/**
 * Connecting: exchanging what ipernity sent back (a frob, or an OAuth
 * request token) for a token and keeping the connection, what the web and
 * OAuth callbacks and the desktop "Complete authorization" share.
 */

/** A frob exchanged: what ipernity granted, and how long it took to answer. */
export interface Exchanged {
  grant: TokenGrant;
  upstreamMs: number;
}

/**
 * The attempt a grant answers, among a browser's live ones (oldest first): the newest that asked for exactly what was
 * granted; else the newest the grant covers; else the newest.
 */
export function attemptFor(live: readonly PendingAttempt[], granted: GrantedPermissions): PendingAttempt {
  const newestFirst = [...live].reverse();
  return (
    newestFirst.find((attempt) => samePermissions(granted, attempt.permissions)) ??
    newestFirst.find((attempt) => satisfies(granted, attempt.permissions)) ??
    (newestFirst[0] as PendingAttempt)
  );
}

/** Counts and logs a flow that could not be completed, sets up the error page's "Try again", and rethrows. */
export function failed(ctx: FlowContext, req: Request, res: Response, error: unknown, attempt: PendingAttempt): never {
  const code = (error as { code?: string }).code ?? 'INTERNAL';
  const apiCode = error instanceof IpernityApiError ? error.apiCode : undefined;
  ctx.metrics?.flowsFailed.inc({ reason: apiCode === undefined ? code : `${code}_${apiCode}` });
  flowEvent(req, ctx.logger, 'failed', { code, apiCode }, 'the connection could not be completed');
  // the error page offers "Try again" with the same request
  res.locals.retry = { params: Object.entries(toParams(attempt.permissions)), returnTo: attempt.returnTo };
  throw error;
}

/** The grant for a frob (web and desktop modes). */
export function frobGrant(ctx: FlowContext, frob: ValidatedFrob): () => Promise<TokenGrant> {
  return () => ctx.client.getToken(frob);
}

/**
 * Obtains the grant (`obtain`: `frobGrant`, or OAuth's access token); answers it, or undefined when the answer is
 * already sent. `spend` runs before any error is answered (the attempt this exchange used is then gone from the browser).
 */
export async function exchange(ctx: FlowContext, req: Request, res: Response, obtain: () => Promise<TokenGrant>, attempt: PendingAttempt, spend: () => void): Promise<Exchanged | undefined> {
  const asked = performance.now();
  try {
    const grant = await obtain();
    // how long ipernity took, on the request's line: what the callback's time is made of
    return { grant, upstreamMs: Math.round((performance.now() - asked) * 100) / 100 };
  } catch (error) {
    spend();
    if (error instanceof IpernityApiError && error.apiCode === 2 && req.session.connection) {
      // a reload of the callback after success: the frob is spent, the visitor is connected
      seeOther(res, safeReturnTo(req.session.connection.returnTo));
      return undefined;
    }
    if (error instanceof IpernityApiError && error.apiCode === 2 && ctx.mode === 'desktop' && req.method === 'POST') {
      // desktop: the visitor pressed "Complete authorization" before authorizing on ipernity
      renderComplete(ctx, req, res, 409, attempt, true);
      return undefined;
    }
    failed(ctx, req, res, error, attempt);
  }
}

/**
 * Keeps the connection, under a new session id when the browser's session was stored (session fixation: every
 * id a browser had before is replaced; a session made for this request already has one no browser was given).
 * `attempts` are the browser's: all but this one stay in its cookie (the cookie keeps only live ones).
 */
export async function keep(ctx: FlowContext, req: Request, res: Response, attempts: readonly PendingAttempt[], attempt: PendingAttempt, { grant, upstreamMs }: Exchanged): Promise<void> {
  const now = Date.now();
  if (wasStored(req)) regenerateSession(req);
  req.session.connection = {
    sealedToken: ctx.cipher.encrypt(grant.token),
    permissions: grant.permissions,
    user: grant.user,
    connectedAt: now,
    checkedAt: now,
    returnTo: attempt.returnTo,
  };
  markActive(req);
  await saveSession(req);
  ctx.attempts.write(res, attempts.filter((other) => other.nonce !== attempt.nonce));
  ctx.metrics?.flowsCompleted.inc();
  flowEvent(req, ctx.logger, 'connected', { userId: grant.user.userId, permissions: grant.permissions, mode: ctx.mode, upstreamMs }, 'ipernity account connected');
  if (ctx.mode === 'desktop') {
    // the visitor can see whose account this browser now uses: a frob link sent by someone else connects theirs
    renderConnected(ctx, req, res, attempt, grant);
    return;
  }
  seeOther(res, safeReturnTo(attempt.returnTo));
}

/** Desktop mode: exchanges the attempt's frob and keeps the connection. */
export async function connectDesktop(ctx: FlowContext, req: Request, res: Response, attempts: readonly PendingAttempt[], attempt: PendingAttempt, frob: ValidatedFrob): Promise<void> {
  const exchanged = await exchange(ctx, req, res, frobGrant(ctx, frob), attempt, () => undefined);
  if (exchanged) await keep(ctx, req, res, attempts, attempt, exchanged);
}

/** Desktop mode's last page: whose account was connected, with what, and the way out if it is not the visitor's. */
function renderConnected(ctx: FlowContext, req: Request, res: Response, attempt: PendingAttempt, grant: TokenGrant): void {
  const { t } = languageOf(req);
  ctx.render(req, res, 200, 'connected', {
    title: t('connected.title'),
    user: grant.user,
    grantedItems: grantedItems(grant.permissions),
    returnTo: safeReturnTo(attempt.returnTo),
    csrfToken: ctx.csrf.token(req, res),
  });
}

/** Desktop mode: the page that links to ipernity (with the frob) and offers "Complete authorization". */
export function renderComplete(ctx: FlowContext, req: Request, res: Response, status: number, attempt: PendingAttempt, notYet = false): void {
  const frob = attempt.frob;
  ctx.render(req, res, status, 'complete', {
    title: languageOf(req).t('complete.title'),
    authorizeUrl: frob && isFrob(frob) ? ctx.authorizeLink(attempt.permissions, frob) : '',
    attempt: attempt.nonce,
    csrfToken: ctx.csrf.token(req, res),
    notYet,
  });
}

