import express, { type Response, type Router } from 'express';
import type { Eta } from 'eta';
import { sign } from '../ipernity/signature';
import { grantedItems, parsePermissionQuery, type RequestedPermissions } from '../ipernity/permissions';
import { CSRF_FIELD } from '../security/csrf';
import { flatten, MESSAGES } from './common';
import { appFacts, offeredUsers, permissionWords, simulatorForms, stylesheetRoute } from './forms';
import type { SimulatedApp, SimulatedUser, SimulatorState } from './state';

export { SIMULATOR_CSRF_COOKIE } from './forms';

export interface AuthorizeOptions {
  state: SimulatorState;
  /** The account offered first (signed in by default). */
  users: SimulatedUser[];
  eta: Eta;
  origin?: string;
  csrfSecret?: string;
}

/** An authorization link, checked: the application, what it asks, and how the visitor goes back. */
interface Link {
  app: SimulatedApp;
  permissions: RequestedPermissions;
  /** Desktop keys: the frob the link carries (the visitor goes back by hand). */
  frob?: string;
  /** OAuth: the request token the link carries. */
  requestToken?: string;
  /** Where the browser goes back: the key's callback URL, or the request token's `oauth_callback`. */
  callback?: string;
}

/** True for the OAuth authorization page's address. */
function oauthLink(path: string): boolean {
  return path.startsWith('/apps/oauth/');
}

/** ipernity's authorization page (`/apps/authorize`, and `/apps/oauth/authorize` for OAuth): who the application is, what it asks, Authorize or Deny. */
export function authorizeRoutes(router: Router, { state, users, eta, ...options }: AuthorizeOptions): void {
  // The authorization form gets the app's own CSRF protection (Fetch Metadata, Origin, signed double submit).
  const forms = simulatorForms({ state, eta, origin: options.origin, csrfSecret: options.csrfSecret });
  const { csrfFor } = forms;
  stylesheetRoute(router, eta);

  const page = (res: Response, status: number, template: string, data: Record<string, unknown>): void => forms.page(res.req, res, status, template, data);

  const fail = (res: Response, code: number, detail?: string): undefined => {
    page(res, 400, 'simulator/message', { title: 'Authorization link refused', message: `Error ${code}: ${MESSAGES[code] ?? detail}${detail ? ` (${detail})` : ''}` });
    return undefined;
  };

  /** The link's permissions; answers a page and undefined when they are wrong. */
  function permissionsOf(flat: Record<string, string>, res: Response): RequestedPermissions | undefined {
    try {
      return parsePermissionQuery(flat) ?? {};
    } catch (error) {
      return fail(res, 0, (error as Error).message);
    }
  }

  /** Checks an authorization link's parameters; answers a page and undefined when they are wrong. */
  function checkLink(params: Record<string, unknown>, res: Response): Link | undefined {
    const flat: Record<string, string> = {};
    const repeated = new Set<string>();
    flatten(params, flat, repeated);
    if (repeated.size) return fail(res, 0, `repeated parameter ${[...repeated].join(', ')}`);
    if (oauthLink(res.req.path)) {
      // OAuth: the request token names the application; the link itself is not signed
      const requestToken = flat.oauth_token;
      if (!requestToken) return fail(res, 131, 'oauth_token missing');
      const record = state.liveRequestToken(requestToken);
      const app = record && state.apps.get(record.apiKey);
      if (!record || !app) return fail(res, 107, 'the request token is unknown, used or expired');
      const permissions = permissionsOf(flat, res);
      return permissions && { app, permissions, requestToken, callback: record.callback };
    }
    const apiKey = flat.api_key;
    if (!apiKey) return fail(res, 100);
    const app = state.apps.get(apiKey);
    if (!app) return fail(res, 101);
    if (!flat.api_sig) return fail(res, 104);
    if (sign(flat, app.apiSecret) !== flat.api_sig) return fail(res, 105);
    const permissions = permissionsOf(flat, res);
    if (!permissions) return undefined;
    if (flat.frob !== undefined) {
      if (!state.liveFrob(apiKey, flat.frob)) return fail(res, 2, 'the frob is unknown, used or expired');
      return { app, permissions, frob: flat.frob };
    }
    if (!app.callbackUrl) return fail(res, 0, 'this key has no callback URL: a desktop key needs a frob in the link');
    return { app, permissions, callback: app.callbackUrl };
  }

  // The authorization page: who the application is, what it asks, Authorize or Deny (the same page for OAuth's request tokens).
  router.get(['/apps/authorize', '/apps/oauth/authorize'], function authorizePage(req, res) {
    const link = checkLink(req.query as Record<string, unknown>, res);
    if (!link) return;
    const hidden = Object.entries(req.query as Record<string, string>).filter(([name]) => name !== CSRF_FIELD);
    const offered = offeredUsers(state.users.values());
    page(res, 200, 'simulator/authorize', {
      ...appFacts(req, link.app, offered[0] ?? users[0]),
      permissions: grantedItems(link.permissions),
      permissionWords: permissionWords(link.permissions),
      hidden,
      // undefined for a browser that sends Fetch Metadata: its POST says where it comes from
      csrfToken: csrfFor(req).token(req, res),
      users: offered,
    });
  });

  // The visitor's decision: web keys go back to the callback, desktop keys get a "go back" page.
  // The body is parsed first: the CSRF check reads the form's `_csrf` field.
  router.post(
    ['/apps/authorize', '/apps/oauth/authorize'],
    express.urlencoded({ extended: false, limit: '8kb' }),
    forms.verify('Authorization form refused', (reason) => `This authorization form was sent from another site or lacked its security token (${reason}). Nothing was authorized: go back to the application and connect again.`),
    function authorizeDecision(req, res) {
      const body = (req.body ?? {}) as Record<string, unknown>;
      const { decision, user_id: userId, [CSRF_FIELD]: _csrf, ...linkParams } = body;
      const link = checkLink(linkParams, res);
      if (!link) return;
      const user = typeof userId === 'string' ? state.user(userId) : users[0];
      if (!user || user.closed) {
        page(res, 400, 'simulator/message', { title: 'Unknown account', message: 'Choose one of the accounts offered on the authorization page.' });
        return;
      }
      if (decision !== 'authorize') {
        if (link.frob) {
          page(res, 200, 'simulator/message', { title: 'Access denied', message: `You did not give ${link.app.name} access. You can close this page and go back to the application.` });
        } else if (link.requestToken) {
          // OAuth: back without oauth_token, naming the declined one in `denied` (the convention of OAuth 1.0a peers)
          const target = new URL(link.callback as string);
          target.searchParams.set('denied', link.requestToken);
          res.redirect(303, target.toString());
        } else {
          res.redirect(303, link.callback as string);
        }
        return;
      }
      if (link.frob) {
        const record = state.liveFrob(link.app.apiKey, link.frob);
        if (record) record.grant = { userId: user.userId, permissions: link.permissions };
        page(res, 200, 'simulator/message', { title: 'Authorized', message: `${link.app.name} can now use your account. You can go back to the application and complete the authorization.` });
        return;
      }
      const target = new URL(link.callback as string);
      if (link.requestToken) {
        // OAuth: the request token is authorized and goes back as it came (ipernity has no oauth_verifier)
        const record = state.liveRequestToken(link.requestToken);
        if (record) record.grant = { userId: user.userId, permissions: link.permissions };
        target.searchParams.set('oauth_token', link.requestToken);
      } else {
        target.searchParams.set('frob', state.createAuthorizedFrob(link.app.apiKey, user.userId, link.permissions));
      }
      res.redirect(303, target.toString());
    },
  );
}
