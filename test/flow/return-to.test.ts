import fc from 'fast-check';
import { safeReturnTo } from '../../src/flow/return-to';

/** What a browser reads as a path on the site that sent it. */
function isPathOnSite(value: string): boolean {
  return (
    value.startsWith('/') &&
    !value.startsWith('//') &&
    !value.startsWith('/\\') &&
    // eslint-disable-next-line no-control-regex -- control characters are what this looks for
    !/[\u0000-\u0020\u007f-\u009f\\]/.test(value) &&
    new URL(value, 'https://site.example').origin === 'https://site.example'
  );
}

describe('safeReturnTo', () => {
  it.each([
    '/.//evil.example',
    '/..//evil.example',
    '/a/..//evil.example',
    '/%2e//evil.example',
    '/%2E%2E//evil.example',
    '/a/%2e%2e//evil.example/x?y#z',
    '/./\\evil.example',
  ])('prevents an open redirect through dot segments: %j gives the home page', (value) => {
    expect(safeReturnTo(value)).toBe('/');
  });

  it.each([
    ['/photos?album=1#top', '/photos?album=1#top'],
    ['/a/./b/../c', '/a/c'],
    ['/caf%C3%A9', '/caf%C3%A9'],
    ['/é', '/%C3%A9'],
  ])('keeps the site path %j, normalised as %j', (value, kept) => {
    expect(safeReturnTo(value)).toBe(kept);
  });

  it('answers a path on the site for any string, and applying it twice changes nothing', () => {
    const segment = fc.constantFrom('', '.', '..', '%2e', '%2E%2e', '/', '\\', '//', 'a', '?', '#', '%2f', '%5c', ' ', '\t', 'evil.example', ':', 'https:');
    const crafted = fc.array(segment, { maxLength: 8 }).map((parts) => `/${parts.join('')}`);
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: 'binary' }), crafted), (value) => {
        const once = safeReturnTo(value);
        expect(isPathOnSite(once)).toBe(true);
        expect(safeReturnTo(once)).toBe(once);
      }),
      { numRuns: 5000 },
    );
  });
});
