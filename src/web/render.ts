import path from 'node:path';
import type { Request, Response } from 'express';
import { Eta } from 'eta';
import { languageOf, type Translate } from './i18n';
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
}

export type Renderer = (req: Request, res: Response, status: number, view: string, data: Record<string, unknown>) => void;

/** What a permission lets the application do, in the visitor's words: every level up to the one given. */
export function describer(t: Translate): (item: PermissionItem, level: GrantLevel) => string {
  return (item, level) =>
    LEVELS.filter((l): l is GrantLevel => l !== 'none' && rank(l) <= rank(level) && rank(l) <= rank(MAX_LEVEL[item]))
      .map((l) => t(`perm.${item}.${l}` as MessageKey))
      .join('; ');
}

/**
 * Renders a page in the visitor's language. Templates are compiled once and
 * cached; every page gets `no-store` since they show a visitor's own state.
 */
export function createRenderer(options: RendererOptions): Renderer {
  const eta = new Eta({ views: options.viewsDir ?? VIEWS_DIR, cache: true, autoTrim: false });
  return function render(req, res, status, view, data) {
    const { lang, t } = languageOf(req);
    const html = eta.render(`./${view}`, {
      lang,
      t,
      describe: describer(t),
      appName: options.appName,
      sandbox: options.sandbox,
      basePath: options.basePath,
      staticPath: options.staticPath,
      ...data,
    });
    res.status(status).set('Cache-Control', 'no-store').set('Content-Language', lang).type('html').send(html);
  };
}
