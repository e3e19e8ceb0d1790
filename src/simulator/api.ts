import { setTimeout as sleep } from 'node:timers/promises';
import express, { type Request, type Response, type Router } from 'express';
import { methodNames } from '../ipernity/catalogue';
import { isFrob } from '../ipernity/frob';
import type { RequestedPermissions } from '../ipernity/permissions';
import { ApiFailure, flatten, sendFailure, sendOk } from './common';
import type { FaultSwitch } from './faults';
import { PHOTO_METHODS, type Handler, type PhotoContext } from './photos';
import { admitRequest } from './rules';
import type { SimulatedUser, SimulatorState } from './state';
import { receiveUpload, UPLOAD_METHODS } from './upload';

type Json = Record<string, unknown>;

function userJson(user: SimulatedUser): Json {
  const json: Json = { user_id: user.userId, username: user.username, realname: user.realname };
  if (user.lang) json.lg = user.lang;
  if (user.isPro !== undefined) json.is_pro = user.isPro ? '1' : '0';
  return json;
}

function grantJson(state: SimulatorState, token: string, userId: string, permissions: RequestedPermissions): Json {
  const user = state.users.get(userId) as SimulatedUser;
  const levels: Record<string, string> = { doc: 'none', blog: 'none', post: 'none', network: 'none', profile: 'none' };
  Object.assign(levels, permissions);
  return { auth: { token, permissions: levels, user: userJson(user) } };
}

/** The account methods, the test methods and the method list. */
const ACCOUNT_METHODS: Readonly<Record<string, Handler>> = {
  'auth.getFrob': (call, { state }) => ({ auth: { frob: state.createFrob(call.app.apiKey) } }),
  'auth.getToken'(call, { state }) {
    const frob = call.params.frob ?? '';
    const exchanged = isFrob(frob) ? state.exchangeFrob(call.app.apiKey, frob) : undefined;
    if (!exchanged) throw new ApiFailure(2, 'Invalid frob');
    return grantJson(state, exchanged.token, exchanged.record.userId, exchanged.record.permissions);
  },
  'auth.checkToken': (call, { state }) => grantJson(state, call.tokenValue ?? '', call.token?.userId ?? '', call.token?.permissions ?? {}),
  'user.get'(call, { state, library, base }) {
    const user = state.users.get(call.params.user_id ?? '');
    if (!user) throw new ApiFailure(1, 'User not found');
    const docs = library.docsOf(user.userId, undefined).length;
    return { user: { ...userJson(user), link: `${base}/home/${user.userId}`, count: { docs: String(docs), posts: '0', network: '0' } } };
  },
  'test.echo': (call) => ({ echo: call.params.echo ?? '' }),
  'test.hello': () => ({ hello: 'Hello from the ipernity simulator' }),
  'api.methods.getList': () => {
    const names = methodNames();
    return { methods: { total: String(names.length), method: names.map((name) => ({ name })) } };
  },
};

/** Every method the simulator answers; the other listed methods answer that they are not implemented here. */
export const IMPLEMENTED: Readonly<Record<string, Handler>> = { ...ACCOUNT_METHODS, ...PHOTO_METHODS, ...UPLOAD_METHODS };

/** Where callers reach the simulator: the configured base, or this request's own origin and mount path. */
export function baseOf(req: Request, configured: string | undefined): string {
  return configured ?? `${req.protocol}://${req.get('host') ?? 'localhost'}${req.baseUrl}`;
}

export interface ApiOptions {
  state: SimulatorState;
  faults: FaultSwitch;
  context: Omit<PhotoContext, 'base'>;
  /** The simulator's address as callers reach it (see `baseOf`). */
  base?: string;
}

/** The API (`/api/<method>/<format>`): ipernity's rules for every listed method, answers in its JSON shapes, under the fault switches. */
export function apiRoutes(router: Router, { state, faults, context, base }: ApiOptions): void {
  const form = express.urlencoded({ extended: false, limit: '64kb' });
  router.all('/api/:method/:format', async function apiCall(req: Request, res: Response, next) {
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
    const here: PhotoContext = { ...context, base: baseOf(req, base) };
    if (method === 'upload.file' && req.is('multipart/form-data')) {
      if (req.params.format !== 'json') {
        sendFailure(res, new ApiFailure(102));
        return;
      }
      receiveUpload(req, res, here, fault).catch(next);
      return;
    }
    form(req, res, (parseError?: unknown) => {
      if (parseError) {
        next(parseError);
        return;
      }
      const params: Record<string, string> = {};
      const repeated = new Set<string>();
      flatten(req.query as Record<string, unknown>, params, repeated);
      flatten((req.body ?? {}) as Record<string, unknown>, params, repeated);
      try {
        if (req.params.format !== 'json') throw new ApiFailure(102);
        const call = admitRequest(state, req, method, params, repeated);
        if (fault?.apiError) throw new ApiFailure(fault.apiError);
        const handler = Object.prototype.hasOwnProperty.call(IMPLEMENTED, method) ? IMPLEMENTED[method] : undefined;
        if (!handler) throw new ApiFailure(103, `${method} is in ipernity's method list, but the simulator does not implement it (docs/simulator.md lists those it does)`);
        sendOk(res, handler(call, here));
      } catch (error) {
        if (error instanceof ApiFailure) sendFailure(res, error);
        else next(error);
      }
    });
  });
}
