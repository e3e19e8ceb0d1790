import express, { type Request, type RequestHandler, type Router } from 'express';
import type { Logger } from 'pino';
import { grantedItems, LEVELS, MAX_LEVEL, PERMISSION_ITEMS, rank } from '../ipernity';
import { SANDBOX_PATH } from '../config';
import type { Csrf } from '../security/csrf';
import type { Renderer } from '../web/render';
import { refreshConnection, type TokenCheckOptions } from './token-check';
import { liveAttempts, type AttemptCookie } from './attempts';
import { languageOf } from '../web/i18n';
import { methodNotAllowed } from '../web/errors';
import type { VisitorClient } from '../connection/visitor-client';
import { createPhotoPage, type PhotoPageOptions } from './photo-page';

export interface HomeRouterOptions {
  session: RequestHandler;
  csrf: Csrf;
  attempts: AttemptCookie;
  render: Renderer;
  tokenCheck: TokenCheckOptions;
  logger: Logger;
  /** The visitor-bound client (`ipernity(req)`): the photo page calls ipernity through it, as a site's own code does. */
  ipernity: (req: Request) => VisitorClient;
  /** Set: the home page is the photo page (the visitor's latest photos, an upload form, `POST /photos/upload`). */
  photos?: PhotoPageOptions;
}

/** The visitor's own variant of the page language (en-GB rather than en) for dates, when they sent one. */
function localeFor(req: Request, lang: string): string {
  const tags = req.headers['accept-language'] ? (req.acceptsLanguages() as string[]) : [];
  return tags.find((tag) => tag.toLowerCase().split('-')[0] === lang) ?? lang;
}

function formatDate(time: number, locale: string): string {
  const options = { dateStyle: 'long', timeStyle: 'short' } as const;
  try {
    return new Intl.DateTimeFormat(locale, options).format(time);
  } catch {
    // a malformed language tag: the page language alone is always valid
    return new Intl.DateTimeFormat(locale.split('-')[0], options).format(time);
  }
}

/**
 * The home page: "Connect ipernity", or who is connected with what, "Request more permissions" and "Disconnect".
 * With `photos` (HOME_PAGE=photos, the sandbox's default) it is also a small photo site: the visitor's latest
 * photos, read on the server with `ipernity(req)`, and an upload form posted to `POST /photos/upload`.
 */
export function createHomeRouter(options: HomeRouterOptions): Router {
  const router = express.Router();

  const photoPage = options.photos && createPhotoPage({ ...options.photos, ipernity: options.ipernity, session: options.session, csrf: options.csrf, logger: options.logger });

  router.get('/', options.session, async function home(req, res) {
    let connection = await refreshConnection(req, options.tokenCheck, false, options.logger);
    const { lang, t } = languageOf(req);
    const photoData = photoPage ? await photoPage.section(req, t) : undefined;
    // ipernity said the token is revoked while the photos were asked for: the page is the one for a visitor not connected
    if (!req.session?.connection) connection = undefined;
    const notice = req.session?.notice;
    if (notice) delete req.session.notice;
    // a desktop attempt waiting for "Complete authorization", shown only to a visitor not connected
    const pending = connection ? undefined : liveAttempts(options.attempts.read(req)).filter((attempt) => attempt.frob).pop();
    const have = (connection?.permissions ?? {}) as Record<string, string | undefined>;
    options.render(req, res, 200, 'home', {
      photoPage: Boolean(connection && photoData),
      ...(connection ? photoData : {}),
      title: connection ? t('home.connected.title') : t('home.title'),
      notice,
      pendingAttempt: pending?.nonce,
      connection,
      grantedItems: connection ? grantedItems(connection.permissions) : [],
      connectedSince: connection ? formatDate(connection.connectedAt, localeFor(req, lang)) : '',
      upgradeChoices: PERMISSION_ITEMS.map((item) => ({
        item,
        levels: LEVELS.filter((level) => rank(level) <= rank(MAX_LEVEL[item])),
        current: have[item] ?? 'none',
      })),
      csrfToken: connection ? options.csrf.token(req, res) : undefined,
      // in sandbox mode, the simulator's "Your authorized applications" (the page renders it only then)
      ipernitySettingsUrl: `${SANDBOX_PATH}/apps/settings`,
    });
  });
  router.all('/', methodNotAllowed(['GET', 'HEAD']));

  if (photoPage) router.use(photoPage.router);
  return router;
}
