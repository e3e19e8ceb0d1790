import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import path from 'node:path';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { Eta } from 'eta';
import { sign } from '../ipernity/signature';
import { grantedItems, parsePermissionQuery, type RequestedPermissions } from '../ipernity/permissions';
import { isFrob } from '../ipernity/frob';
import { DEFAULT_FROB_TTL_MS, SimulatorState, type SimulatedApp, type SimulatedUser } from './state';
import { FaultSwitch, parseFault } from './faults';
import { createCsrf, CSRF_FIELD, type Csrf } from '../security/csrf';

export type { SimulatedApp, SimulatedUser } from './state';
export type { Fault } from './faults';

export interface SimulatorOptions {
  apps: SimulatedApp[];
  /** Accounts offered on the authorization page; the first is the default. */
  users?: SimulatedUser[];
  frobTtlMs?: number;
  /** Accept any numeric user id posted by the authorization form (tests, load). */
  openUsers?: boolean;
  /** Serve `/__simulator/*` to switch faults and revoke tokens over HTTP. */
  control?: boolean;
  /** Folder of the templates (`views/`). */
  viewsDir?: string;
  /**
   * The origin the authorization page is served from (the app's PUBLIC_URL
   * origin when mounted in it): a decision whose `Origin` header names
   * another is refused. Without it, the request's own `protocol://host`.
   */
  origin?: string;
  /** Signs the authorization form's CSRF tokens; a random one per simulator without it. */
  csrfSecret?: string;
}

/** The simulator's CSRF cookie: a name of its own, so it never meets the app's when mounted on the same host. */
export const SIMULATOR_CSRF_COOKIE = 'ipernity-sim.csrf';

/** The CSRF cookie's name: `__Host-` prefixed on https, as the app's own cookies are. */
function csrfCookieName(secure: boolean): string {
  return `${secure ? '__Host-' : ''}${SIMULATOR_CSRF_COOKIE}`;
}

/** The account the authorization page says is signed in. */
export const DEFAULT_USER: SimulatedUser = { userId: '1234', username: 'Superman', realname: 'Kal-El', lang: 'en' };

/** ipernity's error messages for the codes the simulator answers. */
const MESSAGES: Record<number, string> = {
  1: 'Required parameter missing',
  2: 'Invalid frob',
  100: 'API key missing',
  101: 'Invalid API key',
  102: 'Bad format',
  103: 'Method not found',
  104: 'Signature missing',
  105: 'Invalid signature',
  106: 'Token missing',
  107: 'Invalid token',
  108: 'Account closed or suspended',
};

/** The accounts the authorization page offers: the first 20 open ones (load tests invent thousands). */
function offeredUsers(users: Iterable<SimulatedUser>): SimulatedUser[] {
  const offered: SimulatedUser[] = [];
  for (const user of users) {
    if (user.closed) continue;
    offered.push(user);
    if (offered.length === 20) break;
  }
  return offered;
}

const API_METHODS = new Set(['auth.getFrob', 'auth.getToken', 'auth.checkToken', 'user.get']);

/** A simulated ipernity: an Express router plus the handles tests use to steer it. */
export interface Simulator {
  router: Router;
  state: SimulatorState;
  faults: FaultSwitch;
}

class ApiFailure extends Error {
  constructor(readonly apiCode: number) {
    super(MESSAGES[apiCode] ?? 'Error');
  }
}

function flatten(source: Record<string, unknown>, into: Record<string, string>, repeated: Set<string>): void {
  for (const [name, value] of Object.entries(source)) {
    if (typeof value === 'string') into[name] = value;
    else repeated.add(name);
  }
}

/** Builds a simulated ipernity: authorization page under `/apps/authorize`, API under `/api/<method>/json`. */
export function createSimulator(options: SimulatorOptions): Simulator {
  const users = options.users?.length ? options.users : [DEFAULT_USER];
  const state = new SimulatorState(options.apps, users, options.frobTtlMs ?? DEFAULT_FROB_TTL_MS, options.openUsers ?? false);
  const faults = new FaultSwitch();
  const eta = new Eta({ views: options.viewsDir ?? path.join(__dirname, '..', '..', 'views'), cache: true });
  const router = express.Router();

  // The authorization form gets the app's own CSRF protection (Fetch Metadata, Origin, signed double submit).
  const csrfSecrets = [options.csrfSecret ?? randomBytes(32).toString('base64url')];
  const fixedSecure = options.origin !== undefined && new URL(options.origin).protocol === 'https:';
  const fixedCsrf: Csrf | undefined = options.origin
    ? createCsrf({ secrets: csrfSecrets, cookieName: csrfCookieName(fixedSecure), secure: fixedSecure, origin: new URL(options.origin).origin })
    : undefined;
  /**
   * The CSRF checks for a request. Without an `origin` option the simulator
   * is its own site, whichever host it is reached on, so the request's own
   * origin is the one a form may come from: a browser names in `Origin` the
   * page that sent a form, and a page of another site has another origin.
   */
  function csrfFor(req: Request): Csrf {
    if (fixedCsrf) return fixedCsrf;
    const secure = req.secure;
    return createCsrf({ secrets: csrfSecrets, cookieName: csrfCookieName(secure), secure, origin: `${req.protocol}://${req.get('host') ?? ''}` });
  }

  function page(res: Response, status: number, template: string, data: Record<string, unknown>): void {
    res.status(status).type('html').set('Cache-Control', 'no-store').send(eta.render(template, data));
  }

  /** Checks an authorization link's parameters; answers a page and undefined when they are wrong. */
  function checkLink(params: Record<string, unknown>, res: Response): { app: SimulatedApp; permissions: RequestedPermissions; frob?: string } | undefined {
    const fail = (code: number, detail?: string): undefined => {
      page(res, 400, 'simulator/message', { title: 'Authorization link refused', message: `Error ${code}: ${MESSAGES[code] ?? detail}${detail ? ` (${detail})` : ''}` });
      return undefined;
    };
    const flat: Record<string, string> = {};
    const repeated = new Set<string>();
    flatten(params, flat, repeated);
    if (repeated.size) return fail(0, `repeated parameter ${[...repeated].join(', ')}`);
    const apiKey = flat.api_key;
    if (!apiKey) return fail(100);
    const app = state.apps.get(apiKey);
    if (!app) return fail(101);
    if (!flat.api_sig) return fail(104);
    if (sign(flat, app.apiSecret) !== flat.api_sig) return fail(105);
    let permissions: RequestedPermissions;
    try {
      permissions = parsePermissionQuery(flat) ?? {};
    } catch (error) {
      return fail(0, (error as Error).message);
    }
    if (flat.frob !== undefined) {
      if (!state.liveFrob(apiKey, flat.frob)) return fail(2, 'the frob is unknown, used or expired');
      return { app, permissions, frob: flat.frob };
    }
    if (!app.callbackUrl) return fail(0, 'this key has no callback URL: a desktop key needs a frob in the link');
    return { app, permissions };
  }

  // The authorization page: who the application is, what it asks, Authorize or Deny.
  router.get('/apps/authorize', function authorizePage(req, res) {
    const link = checkLink(req.query as Record<string, unknown>, res);
    if (!link) return;
    const hidden = Object.entries(req.query as Record<string, string>).filter(([name]) => name !== CSRF_FIELD);
    page(res, 200, 'simulator/authorize', {
      appName: link.app.name,
      permissions: grantedItems(link.permissions),
      hidden,
      // undefined for a browser that sends Fetch Metadata: its POST says where it comes from
      csrfToken: csrfFor(req).token(req, res),
      users: offeredUsers(state.users.values()),
    });
  });

  // The visitor's decision: web keys go back to the callback, desktop keys get a "go back" page.
  // The body is parsed first: the CSRF check reads the form's `_csrf` field.
  router.post('/apps/authorize', express.urlencoded({ extended: false, limit: '8kb' }), function checkCsrf(req: Request, res: Response, next: NextFunction) {
    csrfFor(req).verify(req, res, (error?: unknown) => {
      if (error === undefined || error === null) {
        next();
        return;
      }
      page(res, 403, 'simulator/message', {
        title: 'Authorization form refused',
        message: `This authorization form was sent from another site or lacked its security token (${(error as Error).message}). Nothing was authorized: go back to the application and connect again.`,
      });
    });
  }, function authorizeDecision(req, res) {
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
      } else {
        res.redirect(303, link.app.callbackUrl as string);
      }
      return;
    }
    if (link.frob) {
      const record = state.liveFrob(link.app.apiKey, link.frob);
      if (record) record.grant = { userId: user.userId, permissions: link.permissions };
      page(res, 200, 'simulator/message', { title: 'Authorized', message: `${link.app.name} can now use your account. You can go back to the application and complete the authorization.` });
      return;
    }
    const frob = state.createAuthorizedFrob(link.app.apiKey, user.userId, link.permissions);
    const target = new URL(link.app.callbackUrl as string);
    target.searchParams.set('frob', frob);
    res.redirect(303, target.toString());
  });

  function userJson(user: SimulatedUser): Record<string, unknown> {
    const json: Record<string, unknown> = { user_id: user.userId, username: user.username, realname: user.realname };
    if (user.lang) json.lg = user.lang;
    if (user.isPro !== undefined) json.is_pro = user.isPro ? 1 : 0;
    return json;
  }

  function grantJson(token: string, userId: string, permissions: RequestedPermissions): Record<string, unknown> {
    const user = state.users.get(userId) as SimulatedUser;
    const levels: Record<string, string> = { doc: 'none', blog: 'none', post: 'none', network: 'none', profile: 'none' };
    Object.assign(levels, permissions);
    return { auth: { token, permissions: levels, user: userJson(user) } };
  }

  function answer(method: string, apiKey: string, params: Record<string, string>): Record<string, unknown> {
    switch (method) {
      case 'auth.getFrob':
        return { auth: { frob: state.createFrob(apiKey) } };
      case 'auth.getToken': {
        if (!params.frob) throw new ApiFailure(1);
        const exchanged = isFrob(params.frob) ? state.exchangeFrob(apiKey, params.frob) : undefined;
        if (!exchanged) throw new ApiFailure(2);
        return grantJson(exchanged.token, exchanged.record.userId, exchanged.record.permissions);
      }
      case 'auth.checkToken': {
        if (!params.auth_token) throw new ApiFailure(106);
        const record = state.token(apiKey, params.auth_token);
        if (!record || record.revoked) throw new ApiFailure(107);
        if (state.users.get(record.userId)?.closed) throw new ApiFailure(108);
        return grantJson(params.auth_token, record.userId, record.permissions);
      }
      case 'user.get': {
        const user = params.user_id ? state.users.get(params.user_id) : undefined;
        if (!user) throw new ApiFailure(1);
        return { user: userJson(user) };
      }
      default:
        throw new ApiFailure(103);
    }
  }

  // The API: signed calls answered in ipernity's JSON shapes.
  router.all('/api/:method/:format', express.urlencoded({ extended: false, limit: '16kb' }), async function apiCall(req: Request, res: Response) {
    const method = String(req.params.method);
    const fault = faults.take(method);
    if (fault?.delayMs) await sleep(fault.delayMs, undefined, { ref: false });
    if (fault?.drop) {
      req.socket.destroy();
      return;
    }
    if (fault?.status) {
      res.status(fault.status).type('html').send(`<!doctype html><title>${fault.status}</title><h1>Service unavailable</h1>`);
      return;
    }
    if (fault?.notJson) {
      res.status(200).type('html').send('<!doctype html><title>ipernity</title><p>Maintenance</p>');
      return;
    }
    const params: Record<string, string> = {};
    const repeated = new Set<string>();
    flatten(req.query as Record<string, unknown>, params, repeated);
    flatten((req.body ?? {}) as Record<string, unknown>, params, repeated);
    try {
      if (req.params.format !== 'json') throw new ApiFailure(102);
      if (!params.api_key) throw new ApiFailure(100);
      const app = state.apps.get(params.api_key);
      if (!app) throw new ApiFailure(101);
      if (!params.api_sig) throw new ApiFailure(104);
      if (repeated.size || sign(params, app.apiSecret, method) !== params.api_sig) throw new ApiFailure(105);
      if (!API_METHODS.has(method)) throw new ApiFailure(103);
      res.json({ ...answer(method, app.apiKey, params), api: { status: 'ok', at: Date.now() } });
    } catch (error) {
      if (!(error instanceof ApiFailure)) throw error;
      res.json({ api: { status: 'error', code: String(error.apiCode), message: error.message } });
    }
  });

  if (options.control) {
    // Steering for tests and benchmarks; never mounted in production.
    const control = express.Router();
    control.use(express.json({ limit: '4kb' }));
    control.post('/faults', function setFault(req, res) {
      const fault = parseFault(req.body);
      if (!fault) {
        res.status(400).json({ error: 'a fault is {delayMs?, status? (400-599), notJson?, drop?, methods?, times?}' });
        return;
      }
      faults.set(fault);
      res.status(204).end();
    });
    control.delete('/faults', function clearFaults(_req, res) {
      faults.clear();
      res.status(204).end();
    });
    control.post('/revoke', function revoke(req, res) {
      const body = (req.body ?? {}) as Record<string, unknown>;
      const revoked = typeof body.userId === 'string' ? state.revokeUser(body.userId) : state.revoke(typeof body.token === 'string' ? body.token : undefined);
      res.json({ revoked });
    });
    router.use('/__simulator', control);
  }

  return { router, state, faults };
}

/** A standalone simulator application (the router mounted at `/`). */
export function createSimulatorApp(options: SimulatorOptions): { app: express.Express } & Simulator {
  const simulator = createSimulator(options);
  const app = express();
  app.disable('x-powered-by');
  app.use(simulator.router);
  app.use(function notFound(_req, res) {
    res.status(404).type('text').send('Not found in the ipernity simulator');
  });
  return { app, ...simulator };
}
