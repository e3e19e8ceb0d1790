import { TokenCipher, TokenUnreadableError } from '../../src/web/token-cipher';

const key = (n: number) => ({ id: `k${n}`, key: Buffer.alloc(32, n) });

describe('TokenCipher', () => {
  it('seals a token so that it can be read back but not seen', () => {
    const cipher = new TokenCipher([key(1)]);
    const sealed = cipher.encrypt('987654321-e5a5b9c3d5a77eab');
    expect(sealed).toMatch(/^v1\.k1\./);
    expect(sealed).not.toContain('987654321');
    expect(cipher.decrypt(sealed)).toBe('987654321-e5a5b9c3d5a77eab');
    expect(cipher.encrypt('same')).not.toBe(cipher.encrypt('same'));
  });

  it('reads tokens sealed with an older key after rotation', () => {
    const sealed = new TokenCipher([key(1)]).encrypt('token');
    const rotated = new TokenCipher([key(2), key(1)]);
    expect(rotated.decrypt(sealed)).toBe('token');
    expect(rotated.encrypt('token')).toMatch(/^v1\.k2\./);
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
});
