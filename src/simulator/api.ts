import { setTimeout as sleep } from 'node:timers/promises';
import express, { type Request, type Response, type Router } from 'express';
import { sign } from '../ipernity/signature';
import type { RequestedPermissions } from '../ipernity/permissions';
import { isFrob } from '../ipernity/frob';
import { ApiFailure, flatten } from './common';
import type { FaultSwitch } from './faults';
import type { SimulatedUser, SimulatorState } from './state';

/** The methods the simulator answers; any other is ipernity's 103. */
const API_METHODS = new Set(['auth.getFrob', 'auth.getToken', 'auth.checkToken', 'user.get']);

/** The API (`/api/<method>/<format>`): signed calls answered in ipernity's JSON shapes, under the fault switches. */
export function apiRoutes(router: Router, state: SimulatorState, faults: FaultSwitch): void {
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

}
