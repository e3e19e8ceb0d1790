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

export interface HomeRouterOptions {
  session: RequestHandler;
  csrf: Csrf;
  attempts: AttemptCookie;
  render: Renderer;
  tokenCheck: TokenCheckOptions;
  logger: Logger;
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

/** The home page: "Connect ipernity", or who is connected with what, "Request more permissions" and "Disconnect". */
export function createHomeRouter(options: HomeRouterOptions): Router {
  const router = express.Router();

  router.get('/', options.session, async function home(req, res) {
    const connection = await refreshConnection(req, options.tokenCheck, false, options.logger);
    const notice = req.session?.notice;
    if (notice) delete req.session.notice;
    // a desktop attempt waiting for "Complete authorization", shown only to a visitor not connected
    const pending = connection ? undefined : liveAttempts(options.attempts.read(req)).filter((attempt) => attempt.frob).pop();
    const { lang, t } = languageOf(req);
    const have = (connection?.permissions ?? {}) as Record<string, string | undefined>;
    options.render(req, res, 200, 'home', {
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
  return router;
}
