import type { Request, RequestHandler } from 'express';
import { grantedItems, parsePermissionQuery, satisfies, toParams } from '../ipernity';
import { fromThisSiteOrTyped } from '../security/csrf';
import { languageOf } from '../web/i18n';
import { single, type FlowContext } from './context';
import { safeReturnTo } from './return-to';

/**
 * The countdown submits the form by itself, so it runs only for a visitor who came from this site or typed the
 * address: a page another site opens (a window it scripts) would otherwise start a flow with one click anywhere.
 * A browser that sends no Fetch Metadata gets no countdown.
 */
function countdownAllowed(req: Request): boolean {
  return fromThisSiteOrTyped(req);
}

/** `GET /connect`: where the visitor is going, what is asked (and already granted), Continue or Cancel. */
export function warningPage(ctx: FlowContext): RequestHandler {
  return function warningPage(req, res) {
    const query = req.query as Record<string, unknown>;
    const requested = parsePermissionQuery(query) ?? ctx.ipernity.permissions;
    const granted = req.session?.connection?.permissions;
    ctx.render(req, res, 200, 'connect', {
      title: languageOf(req).t('connect.title'),
      requestedItems: grantedItems(requested),
      grantedItems: granted ? grantedItems(granted) : undefined,
      nothingNew: granted ? satisfies(granted, requested) : false,
      requestedParams: Object.entries(toParams(requested)),
      returnTo: safeReturnTo(single(query.return_to)),
      countdown: countdownAllowed(req) ? ctx.countdownSeconds : 0,
      csrfToken: ctx.csrf.token(req, res),
    });
  };
}
