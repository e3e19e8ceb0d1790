import path from 'node:path';
import type { Request, Response } from 'express';
import { Eta } from 'eta';
import { randomBytes } from 'node:crypto';
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

/** Renders a view in the visitor's language and sends it. */
export interface Renderer {
  (req: Request, res: Response, status: number, view: string, data: Record<string, unknown>): void;
  /**
   * For pages that differ between visitors only by their CSRF token: renders
   * once per view, language and `key` (which must name everything else the
   * page shows), then splices each visitor's token into the cached HTML. A
   * page without a token (see `Csrf.token`) is sent as cached. A connected
   * visitor's page names them (`viewer`), so it is rendered for them alone.
   */
  cached(req: Request, res: Response, view: string, key: string, data: () => Record<string, unknown>, csrfToken: string | undefined): void;
}

/** Cached pages kept at most; the cache starts over when full (keys can carry visitor input). */
const MAX_CACHED_PAGES = 500;

/** A rendered page cut where the visitor's CSRF token goes, and its length in bytes without a token. */
interface CachedPage {
  parts: string[];
  bytes: number;
}

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
  const pages = new Map<string, CachedPage>();
  const tokenMark = `csrf-${randomBytes(16).toString('hex')}`;

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
  function send(res: Response, status: number, lang: Lang, body: string, bytes: number = Buffer.byteLength(body)): void {
    res.statusCode = status;
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('Content-Language', lang);
    res.setHeader('Content-Type', 'text/html; charset=utf-8');
    res.setHeader('Content-Length', bytes);
    res.end(body);
  }

  const render = function render(req: Request, res: Response, status: number, view: string, data: Record<string, unknown>): void {
    const { lang, t } = languageOf(req);
    send(res, status, lang, html(lang, t, view, data, options.viewer?.(req, res)));
  } as Renderer;

  render.cached = function cached(req, res, view, key, data, csrfToken) {
    const { lang, t } = languageOf(req);
    // a page that names its visitor is theirs alone
    const viewer = options.viewer?.(req, res);
    if (viewer) {
      send(res, 200, lang, html(lang, t, view, { ...data(), csrfToken }, viewer));
      return;
    }
    const withToken = csrfToken !== undefined;
    const pageKey = `${view}\n${lang}\n${withToken ? 'token' : 'plain'}\n${key}`;
    let page = pages.get(pageKey);
    if (!page) {
      const parts = html(lang, t, view, { ...data(), csrfToken: withToken ? tokenMark : undefined }).split(tokenMark);
      page = { parts, bytes: Buffer.byteLength(parts.join('')) };
      if (pages.size >= MAX_CACHED_PAGES) pages.clear();
      pages.set(pageKey, page);
    }
    // the length is known without counting the page's bytes again (UTF-8: accented text takes two)
    if (withToken) send(res, 200, lang, page.parts.join(csrfToken), page.bytes + (page.parts.length - 1) * Buffer.byteLength(csrfToken));
    else send(res, 200, lang, page.parts[0] as string, page.bytes);
  };

  return render;
}
