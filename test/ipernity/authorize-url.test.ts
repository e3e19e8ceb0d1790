import { buildAuthorizeUrl } from '../../src/ipernity/authorize-url';
import { parseFrob } from '../../src/ipernity/frob';
import { sign } from '../../src/ipernity/signature';
import { Codes, InputError } from '../../src/ipernity/errors';

const base = { authorizeUrl: 'https://www.ipernity.com/apps/authorize', apiKey: 'KEY', apiSecret: 'SECRET' };

describe('buildAuthorizeUrl', () => {
  it('signs the link with every permission item and no method name', () => {
    const url = new URL(buildAuthorizeUrl({ ...base, permissions: { doc: 'delete', blog: 'write', post: 'read', network: 'read', profile: 'write' } }));
    expect(url.origin + url.pathname).toBe('https://www.ipernity.com/apps/authorize');
    const params = Object.fromEntries(url.searchParams);
    expect(params).toMatchObject({ api_key: 'KEY', perm_doc: 'delete', perm_blog: 'write', perm_post: 'read', perm_network: 'read', perm_profile: 'write' });
    const { api_sig: sig, ...signed } = params;
    expect(sig).toBe(sign(signed, 'SECRET'));
    expect(sig).toBe(sign({ api_key: 'KEY', perm_blog: 'write', perm_doc: 'delete', perm_network: 'read', perm_post: 'read', perm_profile: 'write' }, 'SECRET'));
  });

  it('includes and signs the frob of a desktop application', () => {
    const frob = parseFrob({ frob: '123456789-0ad5e2a8' });
    const url = new URL(buildAuthorizeUrl({ ...base, permissions: { doc: 'read' }, frob }));
    expect(url.searchParams.get('frob')).toBe('123456789-0ad5e2a8');
    expect(url.searchParams.get('api_sig')).toBe(sign({ api_key: 'KEY', frob: '123456789-0ad5e2a8', perm_doc: 'read' }, 'SECRET'));
  });

  it('never puts the secret in the link', () => {
    expect(buildAuthorizeUrl({ ...base, permissions: { doc: 'read' } })).not.toContain('SECRET');
  });
});

describe('parseFrob', () => {
  it('accepts the documented shape', () => {
    expect(parseFrob({ frob: '123456789-0ad5e2a8' })).toBe('123456789-0ad5e2a8');
  });

  it.each([
    ['missing', {}, Codes.FROB_MISSING],
    ['empty', { frob: '' }, Codes.FROB_MISSING],
    ['repeated', { frob: ['1234-a', '1234-b'] }, Codes.FROB_REPEATED],
    ['with markup', { frob: '<script>' }, Codes.FROB_MALFORMED],
    ['over-long', { frob: '1'.repeat(500) }, Codes.FROB_MALFORMED],
    ['with spaces', { frob: '1234 5678' }, Codes.FROB_MALFORMED],
    ['an object', { frob: { a: 1 } }, Codes.FROB_MALFORMED],
  ])('refuses a %s frob', (_label, query, code) => {
    expect(() => parseFrob(query)).toThrow(InputError);
    try {
      parseFrob(query);
    } catch (error) {
      expect((error as InputError).code).toBe(code);
    }
  });
});
