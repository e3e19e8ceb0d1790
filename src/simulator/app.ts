import path from 'node:path';
import express, { type Router } from 'express';
import { Eta } from 'eta';
import { apiRoutes } from './api';
import { authorizeRoutes } from './authorize';
import { oauthRoutes } from './oauth';
import { controlRoutes } from './control';
import { settingsRoutes } from './settings';
import { DEFAULT_FROB_TTL_MS, SimulatorState, type SimulatedApp, type SimulatedUser } from './state';
import { FaultSwitch } from './faults';
import { Library } from './library';
import { mediaRoutes } from './media';
import type { UploadLimits } from './photos';
import { Tickets } from './upload';

export type { SimulatedApp, SimulatedUser } from './state';
export type { Fault } from './faults';
export { SIMULATOR_CSRF_COOKIE } from './authorize';

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
  /**
   * The simulator's address as browsers reach it, for the media addresses and
   * photo pages its answers give (the sandbox: `PUBLIC_URL` + `/sandbox/ipernity`).
   * Without it, each request's own `protocol://host` and mount path.
   */
  base?: string;
  /** What an account may upload (defaults: 20 MB a file, 200 MB in all) and how long an upload takes to process (2 s). */
  uploads?: Partial<UploadLimits> & { processingMs?: number };
}

/** The simulator's upload limits when none are given: an account's per-file limit, and a bound on the memory uploads hold. */
export const DEFAULT_UPLOAD_LIMITS: UploadLimits & { processingMs: number } = { maxFileBytes: 20 * 1024 * 1024, maxTotalBytes: 200 * 1024 * 1024, processingMs: 2000 };

/** The account the authorization page says is signed in. */
export const DEFAULT_USER: SimulatedUser = { userId: '1234', username: 'Superman', realname: 'Kal-El', lang: 'en' };

/** A simulated ipernity: an Express router plus the handles tests use to steer it. */
export interface Simulator {
  router: Router;
  state: SimulatorState;
  faults: FaultSwitch;
  /** Every user's photos and albums. */
  library: Library;
  /** The uploads being processed. */
  tickets: Tickets;
}

/** Builds a simulated ipernity: authorization page under `/apps/authorize`, API under `/api/<method>/json`, photos under `/media/` and `/doc/`. */
export function createSimulator(options: SimulatorOptions): Simulator {
  const users = options.users?.length ? options.users : [DEFAULT_USER];
  const state = new SimulatorState(options.apps, users, options.frobTtlMs ?? DEFAULT_FROB_TTL_MS, options.openUsers ?? false);
  const faults = new FaultSwitch();
  const eta = new Eta({ views: options.viewsDir ?? path.join(__dirname, '..', '..', 'views'), cache: true });
  const library = new Library();
  for (const user of state.users.values()) library.seed(user.userId);
  const uploads = { ...DEFAULT_UPLOAD_LIMITS, ...options.uploads };
  const tickets = new Tickets(uploads.processingMs);
  const limits = { maxFileBytes: uploads.maxFileBytes, maxTotalBytes: uploads.maxTotalBytes };
  const router = express.Router();
  authorizeRoutes(router, { state, users, eta, origin: options.origin, csrfSecret: options.csrfSecret });
  oauthRoutes(router, state);
  settingsRoutes(router, { state, users, eta, origin: options.origin, csrfSecret: options.csrfSecret });
  apiRoutes(router, { state, faults, context: { state, library, limits, tickets }, base: options.base });
  mediaRoutes(router, { library, state, eta, base: options.base });
  if (options.control) controlRoutes(router, state, faults);
  return { router, state, faults, library, tickets };
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
