import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { NextFunction, Request, RequestHandler, Response, Router } from 'express';
import type { Eta } from 'eta';
import { grantedItems, LEVELS, MAX_LEVEL, rank, type GrantLevel, type PermissionItem, type RequestedPermissions } from '../ipernity/permissions';
import { createCsrf, type Csrf } from '../security/csrf';
import { sendPage } from './common';
import type { SimulatedApp, SimulatedUser, SimulatorState } from './state';

/** The simulator's CSRF cookie: a name of its own, so it never meets the app's when mounted on the same host. */
export const SIMULATOR_CSRF_COOKIE = 'ipernity-sim.csrf';

/** Where the simulator's stylesheet is served, below the simulator's own mount point. */
export const SIMULATOR_STYLESHEET_PATH = '/static/simulator.css';

/** The CSRF cookie's name: `__Host-` prefixed on https, as the app's own cookies are. */
function csrfCookieName(secure: boolean): string {
  return `${secure ? '__Host-' : ''}${SIMULATOR_CSRF_COOKIE}`;
}

/** One signing secret per simulator, shared by its authorization and settings forms (one cookie, one secret). */
const secretsOf = new WeakMap<SimulatorState, string[]>();

export interface FormOptions {
  state: SimulatorState;
  eta: Eta;
  origin?: string;
  csrfSecret?: string;
}

/** A link under a message ("Back to …"). */
export interface PageLink {
  href: string;
  text: string;
}

export interface SimulatorForms {
  /** The CSRF checks for a request. */
  csrfFor(req: Request): Csrf;
  /** Middleware: lets a form through when the CSRF checks pass, else answers a 403 page with `message(reason)` (and `link`, a way back). */
  verify(title: string, message: (reason: string) => string, link?: (req: Request) => PageLink): RequestHandler;
  /** Sends a simulator page; the layout gets `base`, the simulator's mount point. */
  page(req: Request, res: Response, status: number, template: string, data: Record<string, unknown>): void;
}

/**
 * The simulator's forms get the app's own CSRF protection (Fetch Metadata,
 * Origin, signed double submit), under a cookie of their own.
 */
export function simulatorForms({ state, eta, origin, csrfSecret }: FormOptions): SimulatorForms {
  let secrets = secretsOf.get(state);
  if (!secrets) {
    secrets = [csrfSecret ?? randomBytes(32).toString('base64url')];
    secretsOf.set(state, secrets);
  }
  const csrfSecrets = secrets;
  const fixedSecure = origin !== undefined && new URL(origin).protocol === 'https:';
  const fixedCsrf: Csrf | undefined = origin
    ? createCsrf({ secrets: csrfSecrets, cookieName: csrfCookieName(fixedSecure), secure: fixedSecure, origin: new URL(origin).origin })
    : undefined;

  /**
   * Without an `origin` option the simulator is its own site, whichever host
   * it is reached on, so the request's own origin is the one a form may come
   * from: a browser names in `Origin` the page that sent a form, and a page of
   * another site has another origin.
   */
  function csrfFor(req: Request): Csrf {
    if (fixedCsrf) return fixedCsrf;
    const secure = req.secure;
    return createCsrf({ secrets: csrfSecrets, cookieName: csrfCookieName(secure), secure, origin: `${req.protocol}://${req.get('host') ?? ''}` });
  }

  function page(req: Request, res: Response, status: number, template: string, data: Record<string, unknown>): void {
    sendPage(eta, res, status, template, { base: req.baseUrl, ...data });
  }

  function verify(title: string, message: (reason: string) => string, link?: (req: Request) => PageLink): RequestHandler {
    return function checkCsrf(req: Request, res: Response, next: NextFunction): void {
      csrfFor(req).verify(req, res, (error?: unknown) => {
        if (error === undefined || error === null) {
          next();
          return;
        }
        page(req, res, 403, 'simulator/message', { title, message: message((error as Error).message), link: link?.(req) });
      });
    };
  }

  return { csrfFor, verify, page };
}

/** Serves the simulator's stylesheet (its pages allow no inline style: the app's Content-Security-Policy forbids it). */
export function stylesheetRoute(router: Router, eta: Eta): void {
  const file = path.join(eta.config.views ?? path.join(__dirname, '..', '..', 'views'), 'simulator', 'simulator.css');
  let css: string | undefined;
  router.get(SIMULATOR_STYLESHEET_PATH, function simulatorStylesheet(_req, res) {
    css ??= fs.readFileSync(file, 'utf8');
    res.type('css').set('Cache-Control', 'public, max-age=3600').send(css);
  });
}

/** The accounts the simulator's pages offer: the first 20 open ones (load tests invent thousands). */
export function offeredUsers(users: Iterable<SimulatedUser>): SimulatedUser[] {
  const offered: SimulatedUser[] = [];
  for (const user of users) {
    if (user.closed) continue;
    offered.push(user);
    if (offered.length === 20) break;
  }
  return offered;
}

/** What each permission lets an application do, in the simulator's own words (each level implies the ones below). */
const PERMISSION_WORDS: Readonly<Record<PermissionItem, Readonly<Partial<Record<GrantLevel, string>>>>> = {
  doc: {
    read: 'See your private photos and documents',
    write: 'Upload and edit your photos and documents',
    delete: 'Delete your photos and documents',
  },
  blog: {
    read: 'Read your private blog posts',
    write: 'Write and edit posts on your blog',
    delete: 'Delete posts from your blog',
  },
  post: {
    read: 'Read your private articles',
    write: 'Write and edit your articles',
    delete: 'Delete your articles',
  },
  network: {
    read: 'See your contacts and their relationship to you',
    write: 'Add contacts and change how they are listed',
    delete: 'Remove your contacts',
  },
  profile: {
    read: 'See your profile, including its private details',
    write: 'Edit your profile',
  },
};

/** One line of a permission list in words. */
export interface PermissionWords {
  item: PermissionItem;
  level: GrantLevel;
  words: string;
}

/** The permissions in words, item by item in the documented order, each level with the ones it implies. */
export function permissionWords(permissions: RequestedPermissions): PermissionWords[] {
  const lines: PermissionWords[] = [];
  for (const [item, granted] of grantedItems(permissions)) {
    for (const level of LEVELS) {
      if (level === 'none' || rank(level) > rank(granted) || rank(level) > rank(MAX_LEVEL[item])) continue;
      const words = PERMISSION_WORDS[item][level];
      if (words) lines.push({ item, level, words });
    }
  }
  return lines;
}

/** The website of an application as a link target: only an http(s) address (never `javascript:`). */
export function safeWebsite(address: string | undefined): string | undefined {
  if (!address) return undefined;
  try {
    const url = new URL(address);
    return url.protocol === 'https:' || url.protocol === 'http:' ? url.toString() : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The application's description in the visitor's language: the best one
 * `Accept-Language` asks for, else the signed-in account's language, else
 * English, else the first given.
 */
export function descriptionFor(req: Request, app: SimulatedApp, user: SimulatedUser | undefined): { lang: string; text: string } | undefined {
  const texts = Object.entries(app.description ?? {}).filter(([, text]) => typeof text === 'string' && text.trim() !== '');
  if (texts.length === 0) return undefined;
  const langs = texts.map(([lang]) => lang);
  const asked = req.headers['accept-language'] ? (req.acceptsLanguages(...langs) as string | false) : false;
  const byAccount = user?.lang ? langs.find((lang) => lang.toLowerCase() === user.lang?.toLowerCase()) : undefined;
  const lang = asked || byAccount || (langs.includes('en') ? 'en' : (langs[0] as string));
  const [chosen, text] = texts.find(([candidate]) => candidate === lang) ?? (texts[0] as [string, string]);
  return { lang: chosen, text };
}

/** What the pages say about an application: its name and what it tells of itself, escaped by the templates. */
export function appFacts(req: Request, app: SimulatedApp, user: SimulatedUser | undefined): Record<string, unknown> {
  const website = safeWebsite(app.websiteUrl);
  return {
    appName: app.name,
    subtitle: app.subtitle,
    description: descriptionFor(req, app, user),
    developer: app.developer,
    website,
    // an address that is not http(s) is shown as text, never as a link
    websiteText: website ?? app.websiteUrl,
  };
}

/**
 * A description as an environment variable gives it: a JSON object of
 * language → text (`{"en":"…","fr":"…"}`), else plain English text; undefined when empty.
 */
export function parseDescription(value: string | undefined): Record<string, string> | undefined {
  const text = value?.trim();
  if (!text) return undefined;
  if (text.startsWith('{')) {
    try {
      const parsed = JSON.parse(text) as unknown;
      if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) {
        const texts = Object.entries(parsed as Record<string, unknown>).filter((entry): entry is [string, string] => typeof entry[1] === 'string' && entry[1].trim() !== '');
        if (texts.length) return Object.fromEntries(texts);
      }
    } catch {
      // not JSON after all: plain text that starts with a brace
    }
  }
  return { en: text };
}
