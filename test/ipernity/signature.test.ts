import { sign, signatureBase } from '../../src/ipernity/signature';

describe('api_sig', () => {
  // the official example from ipernity's documentation
  const params = { api_key: '6fa87ba500002712bd4eed6020f3bd72', doc_id: '1234', keywords: 'easy' };
  const secret = 'e9a599f0cf6ce193';

  it('signs the documented string for a method call', () => {
    expect(signatureBase(params, secret, 'doc.tags.add')).toBe(
      'api_key6fa87ba500002712bd4eed6020f3bd72doc_id1234keywordseasydoc.tags.adde9a599f0cf6ce193',
    );
    expect(sign(params, secret, 'doc.tags.add')).toBe('a269b218feb341ef03bc093a0f2c8078');
  });

  it('sorts parameters by name whatever their order', () => {
    const shuffled = { keywords: 'easy', doc_id: '1234', api_key: '6fa87ba500002712bd4eed6020f3bd72' };
    expect(sign(shuffled, secret, 'doc.tags.add')).toBe('a269b218feb341ef03bc093a0f2c8078');
  });

  it('leaves api_sig itself out of the signed string', () => {
    expect(sign({ ...params, api_sig: 'whatever' }, secret, 'doc.tags.add')).toBe('a269b218feb341ef03bc093a0f2c8078');
  });

  it('signs an authorization link without a method name', () => {
    expect(signatureBase({ api_key: 'K', perm_doc: 'write' }, 'S')).toBe('api_keyKperm_docwriteS');
  });

  it('signs raw values as UTF-8 bytes: space, ampersand, accented letters and an emoji (md5 computed independently)', () => {
    // python3: hashlib.md5('api_keyKtitleCafé & crème 📷 au laituser_id1234user.getS'.encode('utf-8')).hexdigest()
    expect(sign({ api_key: 'K', user_id: '1234', title: 'Café & crème 📷 au lait' }, 'S', 'user.get')).toBe('ba88e1545a3910f75d3605c7bd1ec52d');
  });

  it('signs raw values, not URL-encoded ones', () => {
    expect(signatureBase({ api_key: 'K', keywords: 'a b&c' }, 'S', 'm')).toBe('api_keyKkeywordsa b&cmS');
  });
});
