import { randomBytes } from 'node:crypto';
import { TokenCipher, TokenUnreadableError } from '../../src/security/token-cipher';
import { sealedV1 } from '../support/harness';

const key = (n: number) => ({ id: `k${n}`, key: Buffer.alloc(32, n) });

/** A sealed value with one of its dot-separated parts replaced. */
function withPart(sealed: string, index: number, part: (old: string) => string): string {
  const parts = sealed.split('.');
  parts[index] = part(parts[index] as string);
  return parts.join('.');
}

describe('TokenCipher', () => {
  it('seals a token so that it can be read back but not seen', () => {
    const cipher = new TokenCipher([key(1)]);
    const sealed = cipher.encrypt('987654321-e5a5b9c3d5a77eab');
    expect(sealed).toMatch(/^v2\.k1\.[\w-]{22}\./);
    expect(sealed).not.toContain('987654321');
    expect(cipher.decrypt(sealed)).toBe('987654321-e5a5b9c3d5a77eab');
    expect(cipher.encrypt('same')).not.toBe(cipher.encrypt('same'));
  });

  it('reads tokens sealed with an older key after rotation', () => {
    const sealed = new TokenCipher([key(1)]).encrypt('token');
    const rotated = new TokenCipher([key(2), key(1)]);
    expect(rotated.decrypt(sealed)).toBe('token');
    expect(rotated.encrypt('token')).toMatch(/^v2\.k2\./);
  });

  it('still reads tokens sealed before subkeys, so no stored connection is lost', () => {
    const cipher = new TokenCipher([key(2), key(1)]);
    expect(cipher.decrypt(sealedV1('987654321-e5a5b9c3d5a77eab', key(1)))).toBe('987654321-e5a5b9c3d5a77eab');
    expect(() => cipher.decrypt(sealedV1('token', key(3)))).toThrow(TokenUnreadableError);
  });

  it('seals under a subkey of its own process, which every instance sharing the key can read', () => {
    const one = new TokenCipher([key(1)]);
    const other = new TokenCipher([key(1)]);
    const fromOne = one.encrypt('token');
    const fromOther = other.encrypt('token');
    // the salt: drawn per process, so two instances never share a subkey
    expect(fromOne.split('.')[2]).not.toBe(fromOther.split('.')[2]);
    expect(one.decrypt(fromOther)).toBe('token');
    expect(other.decrypt(fromOne)).toBe('token');
    expect(one.encrypt('again').split('.')[2]).toBe(fromOne.split('.')[2]);
  });

  it('draws a new subkey once one has sealed its share of values, and reads what the old one sealed', () => {
    const cipher = new TokenCipher([key(1)], { messagesPerSubkey: 2 });
    const sealed = ['a', 'b', 'c', 'd', 'e'].map((text) => cipher.encrypt(text));
    const salts = sealed.map((value) => value.split('.')[2]);
    expect(new Set(salts).size).toBe(3);
    expect(salts[0]).toBe(salts[1]);
    expect(salts[1]).not.toBe(salts[2]);
    expect(sealed.map((value) => cipher.decrypt(value))).toEqual(['a', 'b', 'c', 'd', 'e']);
  });

  it('binds a sealed value to its purpose: a token does not open as attempts, nor attempts as a token', () => {
    const cipher = new TokenCipher([key(1)]);
    expect(() => cipher.decrypt(cipher.encrypt('token'), 'attempts')).toThrow(TokenUnreadableError);
    expect(() => cipher.decrypt(cipher.encrypt('[]', 'attempts'))).toThrow(TokenUnreadableError);
    expect(cipher.decrypt(cipher.encrypt('[]', 'attempts'), 'attempts')).toBe('[]');
  });

  it('refuses a sealed token that was altered or whose key is gone', () => {
    const sealed = new TokenCipher([key(1)]).encrypt('token');
    const altered = sealed.slice(0, -2) + (sealed.endsWith('A') ? 'BB' : 'AA');
    expect(() => new TokenCipher([key(1)]).decrypt(altered)).toThrow(TokenUnreadableError);
    expect(() => new TokenCipher([key(2)]).decrypt(sealed)).toThrow(TokenUnreadableError);
    expect(() => new TokenCipher([key(1)]).decrypt('garbage')).toThrow(TokenUnreadableError);
  });

  it('refuses a value whose salt was changed, or shortened to another length', () => {
    const cipher = new TokenCipher([key(1)]);
    const sealed = cipher.encrypt('token');
    const otherSalt = randomBytes(16).toString('base64url');
    expect(() => cipher.decrypt(withPart(sealed, 2, () => otherSalt))).toThrow(TokenUnreadableError);
    expect(() => cipher.decrypt(withPart(sealed, 2, (salt) => salt.slice(0, 11)))).toThrow(TokenUnreadableError);
    expect(() => cipher.decrypt(withPart(sealed, 2, () => ''))).toThrow(TokenUnreadableError);
  });

  it('refuses a shortened authentication tag, which would be easier to forge', () => {
    const cipher = new TokenCipher([key(1)]);
    const shorten = (tag: string) => Buffer.from(tag, 'base64url').subarray(0, 4).toString('base64url');
    expect(() => cipher.decrypt(withPart(cipher.encrypt('token'), 4, shorten))).toThrow(TokenUnreadableError);
    expect(() => cipher.decrypt(withPart(sealedV1('token', key(1)), 3, shorten))).toThrow(TokenUnreadableError);
  });
});
