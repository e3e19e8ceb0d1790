import type { Request } from 'express';
import { findMethod, type MethodSpec } from '../ipernity/catalogue';
import { rank, type RequestedPermissions } from '../ipernity/permissions';
import { sign } from '../ipernity/signature';
import { ApiFailure } from './common';
import type { Viewer } from './library';
import { accessTokenSecret, isOAuthRequest, verifyOAuth, type OAuthIdentity } from './oauth';
import type { SimulatedApp, SimulatorState, TokenRecord } from './state';

/** A call that passed ipernity's common checks: who calls, for whom, with what. */
export interface Admitted {
  method: string;
  spec: MethodSpec;
  app: SimulatedApp;
  params: Readonly<Record<string, string>>;
  /** The token's grant, when the call carries a valid one. */
  token?: TokenRecord;
  /** That token as sent (`auth_token`, or the OAuth access token the call was signed with). */
  tokenValue?: string;
  /** The token's user and whether its grant reads private photos; undefined for an anonymous call. */
  viewer?: Viewer;
}

/** The level the token grants for an item ('none' without a token). */
export function grantedLevel(permissions: RequestedPermissions | undefined, item: string): number {
  return rank((permissions as Record<string, 'read' | 'write' | 'delete' | undefined> | undefined)?.[item]);
}

/**
 * ipernity's rules for every method, from its method list, in the order the
 * simulator applies them: api_key (100, 101), the method (103), POST (120),
 * the signature where the method is signed or one is given (104, 105), the
 * token where needed or given (106, 107, 108), the permission where the method
 * needs a token (110; a method without one answers what an anonymous visitor
 * sees instead), then the required parameters (1). An OAuth-signed call
 * (`oauth`, checked by `verifyOAuth`) has no api_key, api_sig or auth_token:
 * its consumer and access token stand for them.
 */
export function admit(state: SimulatorState, method: string, params: Readonly<Record<string, string>>, repeated: ReadonlySet<string>, httpMethod: string, unsigned: readonly string[] = [], oauth?: OAuthIdentity): Admitted {
  let app = oauth?.app;
  if (!app) {
    if (!params.api_key) throw new ApiFailure(100);
    app = state.apps.get(params.api_key);
    if (!app) throw new ApiFailure(101);
  }
  const spec = findMethod(method);
  if (!spec) throw new ApiFailure(103);
  if (spec.postOnly && httpMethod !== 'POST') throw new ApiFailure(120);
  if (!oauth && (spec.signed || params.api_sig !== undefined)) {
    if (!params.api_sig) throw new ApiFailure(104);
    const signedParams = Object.fromEntries(Object.entries(params).filter(([name]) => !unsigned.includes(name)));
    if (repeated.size || sign(signedParams, app.apiSecret, method) !== params.api_sig) throw new ApiFailure(105);
  }
  const tokenValue = oauth ? oauth.token : params.auth_token || undefined;
  let token: TokenRecord | undefined;
  if (tokenValue !== undefined) {
    token = state.token(app.apiKey, tokenValue);
    // an OAuth access token (one with a secret) is honoured on OAuth-signed calls only, a frob token never on them
    if (!token || token.revoked || (token.secret !== undefined) !== (oauth !== undefined)) throw new ApiFailure(107);
    if (state.users.get(token.userId)?.closed) throw new ApiFailure(108);
  } else if (spec.token) {
    throw new ApiFailure(106);
  }
  if (spec.token && spec.permission && grantedLevel(token?.permissions, spec.permission.item) < rank(spec.permission.level)) {
    throw new ApiFailure(110, `Insufficient permissions: ${method} needs ${spec.permission.item}:${spec.permission.level}`);
  }
  for (const name of spec.required) {
    if (name !== 'auth_token' && name !== 'api_key' && name !== 'file' && !params[name]) throw new ApiFailure(1, `Required parameter missing: ${name}`);
  }
  const viewer = token ? { userId: token.userId, canReadPrivate: grantedLevel(token.permissions, 'doc') >= rank('read') } : undefined;
  return { method, spec, app, params, ...(token ? { token, tokenValue } : {}), ...(viewer ? { viewer } : {}) };
}

/** `admit` for a request as it came: OAuth-signed (checked by `verifyOAuth` first) or signed ipernity's way. */
export function admitRequest(state: SimulatorState, req: Request, method: string, params: Readonly<Record<string, string>>, repeated: ReadonlySet<string>, unsigned: readonly string[] = []): Admitted {
  if (!isOAuthRequest(req, params)) return admit(state, method, params, repeated, req.method, unsigned);
  const signedParams = Object.fromEntries(Object.entries(params).filter(([name]) => !unsigned.includes(name)));
  const verified = verifyOAuth(state, req, signedParams, repeated, accessTokenSecret(state));
  return admit(state, method, verified.params, repeated, req.method, unsigned, verified.identity);
}
