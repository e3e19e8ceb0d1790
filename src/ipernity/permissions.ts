import { Codes, InputError } from './errors';

/** The permission items an application can ask for, each with its link parameter. */
export const PERMISSION_ITEMS = ['doc', 'blog', 'post', 'network', 'profile'] as const;
export type PermissionItem = (typeof PERMISSION_ITEMS)[number];

/** Access levels in increasing order: each implies the ones before it. */
export const LEVELS = ['none', 'read', 'write', 'delete'] as const;
export type Level = (typeof LEVELS)[number];
export type GrantLevel = Exclude<Level, 'none'>;

/** The highest level each item accepts (profile has no `delete`). */
export const MAX_LEVEL: Readonly<Record<PermissionItem, GrantLevel>> = {
  doc: 'delete',
  blog: 'delete',
  post: 'delete',
  network: 'delete',
  profile: 'write',
};

/** Permissions asked for: only known items, only real levels. */
export type RequestedPermissions = Readonly<Partial<Record<PermissionItem, GrantLevel>>>;

/**
 * Permissions as ipernity reports them: known items plus any item a newer or
 * older API version names, each with a level (`none` when not granted).
 */
export type GrantedPermissions = Readonly<Record<string, Level>>;

const PARAM_PREFIX = 'perm_';

export function isPermissionItem(value: string): value is PermissionItem {
  return (PERMISSION_ITEMS as readonly string[]).includes(value);
}

export function isLevel(value: unknown): value is Level {
  return typeof value === 'string' && (LEVELS as readonly string[]).includes(value);
}

/** Rank of a level; unknown levels count as `none`. */
export function rank(level: Level | undefined): number {
  return level === undefined ? 0 : LEVELS.indexOf(level);
}

/** The query parameter that requests an item (`perm_doc`). */
export function parameterName(item: PermissionItem): string {
  return PARAM_PREFIX + item;
}

function invalid(parameter: string, message: string): InputError {
  return new InputError(Codes.PERMISSION_INVALID, message, parameter);
}

function checkLevel(item: PermissionItem, parameter: string, value: string): GrantLevel | undefined {
  if (!isLevel(value)) {
    throw invalid(parameter, `${parameter} must be one of read, write, delete (got "${value.slice(0, 40)}")`);
  }
  if (value === 'none') return undefined;
  if (rank(value) > rank(MAX_LEVEL[item])) {
    throw invalid(parameter, `${parameter} goes up to ${MAX_LEVEL[item]} (got "${value}")`);
  }
  return value;
}

/**
 * Reads `perm_*` parameters from a parsed query string. Unknown items,
 * unknown levels, `delete` for profile and repeated parameters are errors
 * naming the parameter. Returns `undefined` when no `perm_*` parameter is present.
 */
export function parsePermissionQuery(query: Readonly<Record<string, unknown>>): RequestedPermissions | undefined {
  const requested: Partial<Record<PermissionItem, GrantLevel>> = {};
  let seen = false;
  for (const parameter of Object.keys(query)) {
    if (!parameter.startsWith(PARAM_PREFIX)) continue;
    seen = true;
    const item = parameter.slice(PARAM_PREFIX.length);
    if (!isPermissionItem(item)) {
      throw invalid(parameter, `${parameter.slice(0, 40)} is not a permission ipernity knows`);
    }
    const value = query[parameter];
    if (Array.isArray(value)) throw invalid(parameter, `${parameter} is given more than once`);
    if (typeof value !== 'string') throw invalid(parameter, `${parameter} must be a single level`);
    const level = checkLevel(item, parameter, value);
    if (level) requested[item] = level;
  }
  return seen ? requested : undefined;
}

/**
 * Reads a list such as `doc:read,profile:read` (the configuration's form).
 * Throws with the offending entry named.
 */
export function parsePermissionList(list: string): RequestedPermissions {
  const requested: Partial<Record<PermissionItem, GrantLevel>> = {};
  for (const entry of list.split(',').map((part) => part.trim()).filter(Boolean)) {
    const [item, level, extra] = entry.split(':');
    if (item === undefined || level === undefined || extra !== undefined || !isPermissionItem(item)) {
      throw invalid(entry, `"${entry}" is not item:level with item one of ${PERMISSION_ITEMS.join(', ')}`);
    }
    if (item in requested) throw invalid(entry, `${item} is listed more than once`);
    const granted = checkLevel(item, item, level);
    if (granted) requested[item] = granted;
  }
  return requested;
}

/**
 * Reads the permissions of an `auth.getToken` or `auth.checkToken` answer.
 * Tolerant by design: unknown items are kept, unknown levels count as `none`,
 * anything that is not an object gives no permissions.
 */
export function parseGrantedPermissions(value: unknown): GrantedPermissions {
  // a plain object: the one key that could reach its prototype is skipped
  const granted: Record<string, Level> = {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return granted;
  for (const [item, level] of Object.entries(value as Record<string, unknown>)) {
    if (item === '__proto__' || item === 'constructor' || item === 'prototype') continue;
    granted[item] = isLevel(level) ? level : 'none';
  }
  return granted;
}

/** True when `granted` gives at least every level in `required`. */
export function satisfies(granted: GrantedPermissions | RequestedPermissions, required: RequestedPermissions): boolean {
  return Object.keys(missing(granted, required)).length === 0;
}

/** What `required` asks for beyond `granted` (empty when it is satisfied). */
export function missing(granted: GrantedPermissions | RequestedPermissions, required: RequestedPermissions): RequestedPermissions {
  const lacking: Partial<Record<PermissionItem, GrantLevel>> = {};
  const have = granted as Readonly<Record<string, Level | undefined>>;
  for (const item of PERMISSION_ITEMS) {
    const level = required[item];
    if (level && rank(have[item]) < rank(level)) lacking[item] = level;
  }
  return lacking;
}

/** True when both sets give every known item the same level (`none` and absent alike). */
export function samePermissions(a: GrantedPermissions | RequestedPermissions, b: GrantedPermissions | RequestedPermissions): boolean {
  const left = a as Readonly<Record<string, Level | undefined>>;
  const right = b as Readonly<Record<string, Level | undefined>>;
  return PERMISSION_ITEMS.every((item) => rank(left[item]) === rank(right[item]));
}

/** The higher level of each known item in either set: an upgrade never loses a grant. */
export function union(a: GrantedPermissions | RequestedPermissions, b: GrantedPermissions | RequestedPermissions): RequestedPermissions {
  const merged: Partial<Record<PermissionItem, GrantLevel>> = {};
  const left = a as Readonly<Record<string, Level | undefined>>;
  const right = b as Readonly<Record<string, Level | undefined>>;
  for (const item of PERMISSION_ITEMS) {
    const level = rank(left[item]) >= rank(right[item]) ? left[item] : right[item];
    if (level && level !== 'none') merged[item] = level;
  }
  return merged;
}

/** Link parameters for a set of permissions (`{ perm_doc: 'write' }`). */
export function toParams(requested: RequestedPermissions): Record<string, string> {
  const params: Record<string, string> = {};
  for (const item of PERMISSION_ITEMS) {
    const level = requested[item];
    if (level) params[parameterName(item)] = level;
  }
  return params;
}

/** Known items with a level above `none`, in the documented order. */
export function grantedItems(granted: GrantedPermissions | RequestedPermissions): Array<[PermissionItem, GrantLevel]> {
  const have = granted as Readonly<Record<string, Level | undefined>>;
  const items: Array<[PermissionItem, GrantLevel]> = [];
  for (const item of PERMISSION_ITEMS) {
    const level = have[item];
    if (level && level !== 'none') items.push([item, level]);
  }
  return items;
}
