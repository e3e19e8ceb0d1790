import { Codes, InputError, UnknownMethodError } from './errors';
import { METHODS } from './methods';
import { parsePermissionList, union, type GrantLevel, type PermissionItem, type RequestedPermissions } from './permissions';

/** The permission a method needs: an item at a level (`doc:write`). */
export interface MethodPermission {
  readonly item: PermissionItem;
  readonly level: GrantLevel;
}

/** One method of ipernity's list (src/ipernity/methods.tsv, generated into methods.ts). */
export interface MethodSpec {
  /** What the token must grant; `null` when the method needs no permission. */
  readonly permission: MethodPermission | null;
  /** Must be sent by POST (ipernity answers 120 to a GET). Every method accepts POST. */
  readonly postOnly: boolean;
  /** Must carry `api_sig` (the client signs every call anyway). */
  readonly signed: boolean;
  /** Needs `auth_token`. */
  readonly token: boolean;
  /** Required parameters, as far as the list knows them (`auth_token` and `api_key` included where listed). */
  readonly required: readonly string[];
  /** Optional parameters, as far as the list knows them. */
  readonly optional: readonly string[];
}

/** The name of a listed method, e.g. `'doc.getList'`. */
export type MethodName = keyof typeof METHODS;

const CATALOGUE: Readonly<Record<string, MethodSpec>> = METHODS;

/** True when `name` is in ipernity's list. */
export function isListedMethod(name: string): name is MethodName {
  return Object.prototype.hasOwnProperty.call(CATALOGUE, name);
}

/** The listed method's spec, or `undefined`. */
export function findMethod(name: string): MethodSpec | undefined {
  return isListedMethod(name) ? CATALOGUE[name] : undefined;
}

/** The listed method's spec; an `UnknownMethodError` naming it otherwise. */
export function methodSpec(name: string): MethodSpec {
  const spec = findMethod(name);
  if (!spec) throw new UnknownMethodError(name);
  return spec;
}

/** Every listed method name, in the list's (alphabetical) order. */
export function methodNames(): MethodName[] {
  return Object.keys(CATALOGUE) as MethodName[];
}

/** True when the method takes `page` and `per_page`, so that `paginate` can walk it. */
export function isPaginated(spec: MethodSpec): boolean {
  const params = [...spec.required, ...spec.optional];
  return params.includes('page') && params.includes('per_page');
}

/**
 * The smallest set of permissions that covers every method given:
 * `['doc.getList', 'upload.file']` gives `{ doc: 'write' }`. An unknown name
 * is an `UnknownMethodError` naming it.
 */
export function permissionsFor(methods: Iterable<string>): RequestedPermissions {
  let needed: RequestedPermissions = {};
  for (const name of methods) {
    const { permission } = methodSpec(name);
    if (permission) needed = union(needed, { [permission.item]: permission.level });
  }
  return needed;
}

/** The prefix of `IPERNITY_PERMISSIONS` given as method names. */
export const METHODS_PREFIX = 'methods:';

/**
 * Reads `IPERNITY_PERMISSIONS`: either `item:level,…` (`doc:read,profile:read`)
 * or `methods:` and the methods the site calls (`methods:doc.getList,upload.file`),
 * which asks for what those methods need and nothing more.
 */
export function parsePermissionSetting(value: string): RequestedPermissions {
  const text = value.trim();
  if (!text.startsWith(METHODS_PREFIX)) return parsePermissionList(text);
  const names = text.slice(METHODS_PREFIX.length).split(',').map((name) => name.trim()).filter(Boolean);
  if (names.length === 0) throw new InputError(Codes.PERMISSION_INVALID, 'methods: names no method', 'methods');
  return permissionsFor(names);
}
