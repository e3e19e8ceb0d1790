import {
  missing,
  parseGrantedPermissions,
  parsePermissionList,
  parsePermissionQuery,
  satisfies,
  toParams,
  union,
} from '../../src/ipernity/permissions';
import { Codes, InputError } from '../../src/ipernity/errors';

function codeOf(run: () => unknown): { code: string; parameter: string } | undefined {
  try {
    run();
  } catch (error) {
    if (error instanceof InputError) return { code: error.code, parameter: error.parameter };
    throw error;
  }
  return undefined;
}

describe('parsePermissionQuery', () => {
  it('reads every item at every level it has', () => {
    expect(
      parsePermissionQuery({ perm_doc: 'delete', perm_blog: 'write', perm_post: 'read', perm_network: 'delete', perm_profile: 'write', other: 'x' }),
    ).toEqual({ doc: 'delete', blog: 'write', post: 'read', network: 'delete', profile: 'write' });
  });

  it('answers undefined when no permission is named, and drops none', () => {
    expect(parsePermissionQuery({ return_to: '/' })).toBeUndefined();
    expect(parsePermissionQuery({ perm_doc: 'none' })).toEqual({});
  });

  it.each([
    ['an unknown item', { perm_photos: 'read' }, 'perm_photos'],
    ['an unknown level', { perm_doc: 'admin' }, 'perm_doc'],
    ['an empty level', { perm_doc: '' }, 'perm_doc'],
    ['delete for the profile', { perm_profile: 'delete' }, 'perm_profile'],
    ['a repeated parameter', { perm_doc: ['read', 'write'] }, 'perm_doc'],
    ['a nested value', { perm_doc: { a: 'b' } }, 'perm_doc'],
    ['an upper-case level', { perm_doc: 'READ' }, 'perm_doc'],
  ])('refuses %s, naming the parameter', (_label, query, parameter) => {
    expect(codeOf(() => parsePermissionQuery(query))).toEqual({ code: Codes.PERMISSION_INVALID, parameter });
  });
});

describe('parsePermissionList (configuration)', () => {
  it('reads item:level lists', () => {
    expect(parsePermissionList('doc:read, profile:read')).toEqual({ doc: 'read', profile: 'read' });
    expect(parsePermissionList('')).toEqual({});
  });

  it.each(['doc', 'doc:read:x', 'photo:read', 'profile:delete', 'doc:read,doc:write'])('refuses %s', (list) => {
    expect(codeOf(() => parsePermissionList(list))?.code).toBe(Codes.PERMISSION_INVALID);
  });
});

describe('parseGrantedPermissions', () => {
  it('keeps unknown items and reads none', () => {
    expect(parseGrantedPermissions({ doc: 'write', blog: 'none', user: 'read' })).toEqual({ doc: 'write', blog: 'none', user: 'read' });
  });

  it('counts unknown levels and odd values as none, and ignores non-objects', () => {
    expect(parseGrantedPermissions({ doc: 'superuser', blog: 3 })).toEqual({ doc: 'none', blog: 'none' });
    expect(parseGrantedPermissions(null)).toEqual({});
    expect(parseGrantedPermissions('doc')).toEqual({});
    expect(parseGrantedPermissions(['read'])).toEqual({});
  });

  it('never lets a key reach the prototype', () => {
    const parsed = parseGrantedPermissions(JSON.parse('{"__proto__":{"polluted":"read"},"doc":"read"}'));
    expect(parsed).toEqual({ doc: 'read' });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('comparison and union', () => {
  it('orders read < write < delete', () => {
    expect(satisfies({ doc: 'delete' }, { doc: 'write' })).toBe(true);
    expect(satisfies({ doc: 'write' }, { doc: 'read' })).toBe(true);
    expect(satisfies({ doc: 'read' }, { doc: 'write' })).toBe(false);
    expect(satisfies({ doc: 'none' }, { doc: 'read' })).toBe(false);
    expect(satisfies({}, {})).toBe(true);
  });

  it('says what is missing', () => {
    expect(missing({ doc: 'read', profile: 'read' }, { doc: 'write', profile: 'read', blog: 'read' })).toEqual({ doc: 'write', blog: 'read' });
  });

  it('keeps the higher level of each item, so an upgrade loses nothing', () => {
    expect(union({ doc: 'write', profile: 'read', user: 'read' }, { doc: 'read', blog: 'delete' })).toEqual({ doc: 'write', profile: 'read', blog: 'delete' });
  });

  it('turns permissions into link parameters', () => {
    expect(toParams({ profile: 'read', doc: 'write' })).toEqual({ perm_doc: 'write', perm_profile: 'read' });
  });
});
