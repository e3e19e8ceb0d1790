import express, { type Request, type Response, type Router } from 'express';
import { grantedItems, union, type RequestedPermissions } from '../ipernity/permissions';
import type { AuthorizeOptions } from './authorize';
import { appFacts, offeredUsers, permissionWords, simulatorForms, type PageLink } from './forms';
import type { SimulatedUser } from './state';

/** The settings page, below the simulator's mount point. */
export const SETTINGS_PATH = '/apps/settings';

/** A query or form value given once, else undefined. */
function single(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/** ipernity's account settings: the applications a user authorized, each with a Revoke button. */
export function settingsRoutes(router: Router, { state, users, eta, ...options }: AuthorizeOptions): void {
  // the same CSRF protection as the authorization form, under the same cookie and secret
  const forms = simulatorForms({ state, eta, origin: options.origin, csrfSecret: options.csrfSecret });
  const settingsUrl = (req: Request, query: Record<string, string> = {}): string => {
    const search = new URLSearchParams(query).toString();
    return `${req.baseUrl}${SETTINGS_PATH}${search ? `?${search}` : ''}`;
  };
  const backLink = (req: Request): PageLink => ({ href: settingsUrl(req), text: 'Back to your authorized applications' });

  /** The signed-in account: `user_id` when it names an open account, the default one without it. */
  function signedIn(userId: string | undefined): SimulatedUser | undefined {
    const user = userId === undefined ? users[0] : state.users.get(userId);
    return user && !user.closed ? user : undefined;
  }

  function unknownAccount(req: Request, res: Response): void {
    forms.page(req, res, 400, 'simulator/message', {
      title: 'Unknown account',
      message: 'This is not one of the accounts the simulator offers (or it is closed). Go back to your authorized applications and choose an account offered there.',
      link: backLink(req),
    });
  }

  router.get(SETTINGS_PATH, function settingsPage(req, res) {
    const query = req.query as Record<string, unknown>;
    const requested = query.user_id;
    if (requested !== undefined && single(requested) === undefined) {
      unknownAccount(req, res);
      return;
    }
    const user = signedIn(single(requested));
    if (!user) {
      unknownAccount(req, res);
      return;
    }
    const removed = state.apps.get(single(query.revoked) ?? '');
    const apps = state.authorizedApps(user.userId).map(({ app, grants }) => {
      const granted = grants.reduce<RequestedPermissions>((all, grant) => union(all, grant), {});
      return { ...appFacts(req, app, user), apiKey: app.apiKey, permissions: grantedItems(granted), permissionWords: permissionWords(granted) };
    });
    const offered = offeredUsers(state.users.values());
    if (!offered.some((candidate) => candidate.userId === user.userId)) offered.unshift(user);
    forms.page(req, res, 200, 'simulator/settings', {
      title: 'Your authorized applications',
      user,
      users: offered,
      apps,
      removed: removed?.name,
      action: `${req.baseUrl}${SETTINGS_PATH}/revoke`,
      settingsAction: `${req.baseUrl}${SETTINGS_PATH}`,
      // undefined for a browser that sends Fetch Metadata; no cookie when there is nothing to revoke
      csrfToken: apps.length ? forms.csrfFor(req).token(req, res) : undefined,
    });
  });

  // Revoke: the user's tokens for this application stop working (the API answers 107), then back to the list.
  router.post(
    `${SETTINGS_PATH}/revoke`,
    express.urlencoded({ extended: false, limit: '4kb' }),
    forms.verify(
      'Revocation refused',
      (reason) => `This form was sent from another site or lacked its security token (${reason}). Nothing was revoked: go back to your authorized applications and use the Revoke button there.`,
      backLink,
    ),
    function revokeApplication(req, res) {
      const body = (req.body ?? {}) as Record<string, unknown>;
      const user = signedIn(single(body.user_id) ?? '');
      if (!user) {
        unknownAccount(req, res);
        return;
      }
      const app = state.apps.get(single(body.api_key) ?? '');
      if (!app) {
        forms.page(req, res, 400, 'simulator/message', {
          title: 'Unknown application',
          message: 'No application is registered with this API key. Go back to your authorized applications and use the Revoke button next to the application you want to remove.',
          link: { href: settingsUrl(req, { user_id: user.userId }), text: 'Back to your authorized applications' },
        });
        return;
      }
      state.revokeApp(user.userId, app.apiKey);
      res.redirect(303, settingsUrl(req, { user_id: user.userId, revoked: app.apiKey }));
    },
  );
}
