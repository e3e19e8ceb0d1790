import { toParams, type RequestedPermissions } from './permissions';
import { sign } from './signature';
import type { ValidatedFrob } from './frob';

export interface AuthorizeLinkInput {
  /** The authorization page, e.g. `https://www.ipernity.com/apps/authorize`. */
  authorizeUrl: string;
  apiKey: string;
  apiSecret: string;
  permissions: RequestedPermissions;
  /** Desktop applications only: the frob from `auth.getFrob`. */
  frob?: ValidatedFrob;
}

/** The signed authorization link (signed without a method name, frob included when given). */
export function buildAuthorizeUrl(input: AuthorizeLinkInput): string {
  const params: Record<string, string> = { api_key: input.apiKey, ...toParams(input.permissions) };
  if (input.frob !== undefined) params.frob = input.frob;
  params.api_sig = sign(params, input.apiSecret);
  const url = new URL(input.authorizeUrl);
  for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
  return url.toString();
}

/**
 * OAuth mode: the authorization address for a request token, with the
 * `perm_*` parameters ipernity adds to OAuth's (unsigned: the request token
 * names the application).
 */
export function buildOAuthAuthorizeUrl(authorizeUrl: string, requestToken: string, permissions: RequestedPermissions): string {
  const url = new URL(authorizeUrl);
  url.searchParams.set('oauth_token', requestToken);
  for (const [name, value] of Object.entries(toParams(permissions))) url.searchParams.set(name, value);
  return url.toString();
}
