import path from 'node:path';
import type { Request, Response } from 'express';
import { Eta } from 'eta';
import { languageOf, LANGS, translator, type Lang, type Translate } from './i18n';
import { LEVELS, MAX_LEVEL, rank, type PermissionItem, type GrantLevel } from '../ipernity/permissions';
import type { MessageKey } from './i18n';

/** The project's templates. */
export const VIEWS_DIR = path.join(__dirname, '..', '..', 'views');

export interface RendererOptions {
  viewsDir?: string;
  appName: string;
  sandbox: boolean;
  /** Where the router's routes are mounted (`''` at the root). */
  basePath: string;
  staticPath: string;
  /**
   * Who is connected in this browser, for the line every page shows them ("Connected as … · Not you?
   * Disconnect"), with the CSRF token of its form; undefined for a visitor not connected.
   */
  viewer?: (req: Request, res: Response) => Viewer | undefined;
}

/** The connected visitor as every page names them. */
export interface Viewer {
  realname: string;
  username: string;
  csrfToken: string | undefined;
}

/** Renders a page (`views/pages/<view>.eta`) in the visitor's language and sends it. */
export type Renderer = (req: Request, res: Response, status: number, view: string, data: Record<string, unknown>) => void;

/** What a permission lets the application do, in the visitor's words: every level up to the one given. */
export function describer(t: Translate): (item: PermissionItem, level: GrantLevel) => string {
  return (item, level) =>
    LEVELS.filter((l): l is GrantLevel => l !== 'none' && rank(l) <= rank(level) && rank(l) <= rank(MAX_LEVEL[item]))
      .map((l) => t(`perm.${item}.${l}` as MessageKey))
      .join('; ');
}

/**
 * Renders pages in the visitor's language. Templates are compiled once and
 * cached; every page gets `no-store` since it shows a visitor's own state.
 */
export function createRenderer(options: RendererOptions): Renderer {
  const eta = new Eta({ views: options.viewsDir ?? VIEWS_DIR, cache: true, autoTrim: false });
  const describers = new Map(LANGS.map((lang) => [lang, describer(translator(lang))]));

  function html(lang: Lang, t: Translate, view: string, data: Record<string, unknown>, viewer?: Viewer): string {
    return eta.render(`./pages/${view}`, {
      viewer,
      lang,
      t,
      describe: describers.get(lang),
      appName: options.appName,
      sandbox: options.sandbox,
      basePath: options.basePath,
      staticPath: options.staticPath,
      ...data,
    });
  }

  // written straight to Node's response: the headers are known, and a string body goes out with them in one write
  function send(res: Response, status: number, lang: Lang, body: string): void {
    res.statusCode = status;
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('Content-Language', lang);
    res.setHeader('Content-Type', 'text/html; charset=utf-8');
    res.setHeader('Content-Length', Buffer.byteLength(body));
    res.end(body);
  }

  return function render(req, res, status, view, data) {
    const { lang, t } = languageOf(req);
    send(res, status, lang, html(lang, t, view, data, options.viewer?.(req, res)));
  };
}
