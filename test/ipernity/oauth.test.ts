import express from 'express';
import http from 'node:http';
import { decodeCredential, encodeCredential, IpernityClient, IpernityOAuthError, OAuthSigner, parseOAuthHeader, type OAuthCredential } from '../../src/ipernity';
import { createSimulator } from '../../src/simulator/app';
import { failure, listen, startSimulator, API_KEY, API_SECRET, type RunningSimulator } from '../support/harness';

describe('OAuth 1.0a signatures (the oauth-1.0a package, with ipernity\'s methods)', () => {
  // RFC 5849 section 1.2 and OAuth Core 1.0 appendix A: the photos.example.net example
  const consumer = { consumerKey: 'dpf43f3p2l4k3l03', consumerSecret: 'kd94hf93k423kf44' };
  const photos = { method: 'GET' as const, url: 'http://photos.example.net/photos', params: { file: 'vacation.jpg', size: 'original' } };
  const base = { oauth_consumer_key: 'dpf43f3p2l4k3l03', oauth_token: 'nnch734d00sl2jdk', oauth_signature_method: 'HMAC-SHA1' };

  it('gives RFC 5849\'s HMAC-SHA1 signature for its example request (section 1.2)', () => {
    const signer = new OAuthSigner(consumer);
    expect(signer.expected(photos, { ...base, oauth_timestamp: '137131202', oauth_nonce: 'chapoH' }, 'pfkkdhi9sl3r4s00')).toBe('MdpQcU8iPSUjWoN/UDMsK2sui9I=');
  });

  it('gives OAuth Core 1.0\'s signature for its appendix A example (with oauth_version)', () => {
    const signer = new OAuthSigner(consumer);
    expect(signer.expected(photos, { ...base, oauth_timestamp: '1191242096', oauth_nonce: 'kllo9940pd9333jh', oauth_version: '1.0' }, 'pfkkdhi9sl3r4s00')).toBe('tR3+Ty81lMeYAr/Fid0kMTYa/WM=');
  });

  it('gives RFC 5849\'s PLAINTEXT signature for its temporary credentials request (the secrets joined by "&")', () => {
    const signer = new OAuthSigner({ ...consumer, signatureMethod: 'PLAINTEXT' });
    const oauth = { oauth_consumer_key: 'dpf43f3p2l4k3l03', oauth_signature_method: 'PLAINTEXT', oauth_timestamp: '137131200', oauth_nonce: 'wIjqoS', oauth_callback: 'http://printer.example.com/ready' };
    expect(signer.expected({ method: 'POST', url: 'https://photos.example.net/initiate' }, oauth, undefined)).toBe('kd94hf93k423kf44&');
  });

  it('puts every OAuth parameter in one Authorization header that reads back as sent, the callback included', () => {
    const signer = new OAuthSigner(consumer);
    const header = signer.header({ method: 'POST', url: 'https://api.example/api/test.echo/json', params: { echo: 'a b&c' } }, { token: 'tok', secret: 'sec' }, { oauth_callback: 'https://site.example/connect/callback?x=1' });
    const parsed = parseOAuthHeader(header);
    expect(parsed?.repeated).toEqual([]);
    expect(parsed?.params).toMatchObject({ oauth_consumer_key: 'dpf43f3p2l4k3l03', oauth_token: 'tok', oauth_signature_method: 'HMAC-SHA1', oauth_version: '1.0', oauth_callback: 'https://site.example/connect/callback?x=1' });
    // the form's parameters are signed, not sent in the header; the secrets are in neither
    expect(header).not.toContain('echo');
    expect(header).not.toContain('sec"');
    expect(header).not.toContain('kd94hf93k423kf44');
    expect(parsed?.params.oauth_nonce).toMatch(/^[0-9a-f]{32}$/);
  });

  it('keeps an access token and its secret as one opaque string, and tells a frob-mode token apart', () => {
    const credential: OAuthCredential = { token: '123-abc', secret: 's/&=' };
    expect(decodeCredential(encodeCredential(credential))).toEqual(credential);
    expect(decodeCredential('123456789-0123abcd')).toBeUndefined();
  });
});

describe('OAuth-signed requests at the simulator', () => {
  let simulator: RunningSimulator;
  let credential: string;
  let client: IpernityClient;
  const clientFor = (signatureMethod: 'HMAC-SHA1' | 'MD5' | 'PLAINTEXT', url = simulator.url): IpernityClient =>
    new IpernityClient({ apiUrl: `${url}/api`, apiKey: API_KEY, apiSecret: API_SECRET, timeoutMs: 2000, oauth: { endpoints: { requestUrl: `${url}/apps/oauth/request`, accessUrl: `${url}/apps/oauth/access` }, signatureMethod } });

  /** An access token as the flow gets one: a request token authorized on the page, then exchanged. */
  async function connect(at: IpernityClient, userId = '1234'): Promise<string> {
    const requested = await at.requestToken('http://127.0.0.1/connect/callback');
    const record = simulator.state.liveRequestToken(requested.token);
    if (!record || !simulator.state.user(userId)) throw new Error('no request token');
    record.grant = { userId, permissions: { doc: 'write' } };
    return encodeCredential(await at.accessToken(requested));
  }

  /** POSTs to the simulator's API with a hand-made Authorization header: answers ipernity's code ('0' for ok). */
  async function codeOf(method: string, header: string, form: Record<string, string> = {}): Promise<string> {
    const answer = await fetch(`${simulator.url}/api/${method}/json`, { method: 'POST', headers: { authorization: header, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form).toString() });
    const body = (await answer.json()) as { api: { status: string; code?: string } };
    return body.api.status === 'ok' ? '0' : (body.api.code ?? '?');
  }

  /** A valid header for test.echo, with `change` applied to its parameters before they are written. */
  function header(change: (params: Record<string, string>) => void, form: Record<string, string> = { echo: 'x' }): string {
    const { token, secret } = decodeCredential(credential) as OAuthCredential;
    const signed = parseOAuthHeader(new OAuthSigner({ consumerKey: API_KEY, consumerSecret: API_SECRET }).header({ method: 'POST', url: `${simulator.url}/api/test.echo/json`, params: form }, { token, secret }))?.params ?? {};
    change(signed);
    return `OAuth ${Object.entries(signed).map(([name, value]) => `${name}="${encodeURIComponent(value)}"`).join(', ')}`;
  }

  beforeAll(async () => {
    simulator = await startSimulator();
    client = clientFor('HMAC-SHA1');
    credential = await connect(client);
  });
  afterAll(async () => {
    await client.close();
    await simulator.close();
  });
  afterEach(() => simulator.faults.clear());

  it('answers calls signed with HMAC-SHA1 or MD5 (no api_sig, no auth_token), as the token\'s user', async () => {
    expect((await client.call('test.echo', { echo: 'hé & co' }, credential)).echo).toBe('hé & co');
    const md5 = clientFor('MD5');
    expect(((await md5.call('auth.checkToken', {}, await connect(md5, '777'))).auth as { user: { user_id: string } }).user.user_id).toBe('777');
    await md5.close();
  });

  it('accepts PLAINTEXT over https only (135 over http)', async () => {
    const plain = clientFor('PLAINTEXT');
    const refused = await failure(plain.requestToken('http://127.0.0.1/connect/callback'));
    expect([refused.code, (refused as IpernityOAuthError).apiCode]).toEqual(['IPERNITY_OAUTH_SIGNATURE_METHOD', 135]);
    await plain.close();
    // behind a TLS proxy that says so, the same request is over https
    const behindTls = createSimulator({ apps: [{ apiKey: API_KEY, apiSecret: API_SECRET, name: 'Test Site' }], openUsers: true });
    const app = express().set('trust proxy', true).use((req, _res, next) => {
      req.headers['x-forwarded-proto'] = 'https';
      next();
    }, behindTls.router);
    const server = http.createServer(app);
    const url = await listen(server);
    const overTls = clientFor('PLAINTEXT', url);
    try {
      expect(await overTls.requestToken('http://127.0.0.1/connect/callback')).toEqual({ token: expect.any(String), secret: expect.any(String) });
    } finally {
      server.closeAllConnections();
      server.close();
      await overTls.close();
    }
  });

  it.each([
    ['130 for another OAuth version', (p: Record<string, string>) => (p.oauth_version = '2.0'), '130'],
    ['131 for a missing nonce', (p: Record<string, string>) => delete p.oauth_nonce, '131'],
    ['132 for a timestamp ten minutes old', (p: Record<string, string>) => (p.oauth_timestamp = String(Math.floor(Date.now() / 1000) - 600)), '132'],
    ['134 for a timestamp that is not a number', (p: Record<string, string>) => (p.oauth_timestamp = 'yesterday'), '134'],
    ['135 for a signature method ipernity does not know', (p: Record<string, string>) => (p.oauth_signature_method = 'RSA-SHA1'), '135'],
    ['105 for a wrong signature', (p: Record<string, string>) => (p.oauth_signature = 'AAAA'), '105'],
    ['101 for an unknown consumer key', (p: Record<string, string>) => (p.oauth_consumer_key = 'someone-else'), '101'],
    ['107 for an unknown token', (p: Record<string, string>) => (p.oauth_token = 'not-a-token'), '107'],
  ])('answers %s', async (_name, change, code) => {
    expect(await codeOf('test.echo', header(change), { echo: 'x' })).toBe(code);
  });

  it('answers 133 to a request sent again with the same nonce, and 105 to a form changed after signing', async () => {
    const once = header(() => undefined);
    expect(await codeOf('test.echo', once, { echo: 'x' })).toBe('0');
    expect(await codeOf('test.echo', once, { echo: 'x' })).toBe('133');
    expect(await codeOf('test.echo', header(() => undefined), { echo: 'changed' })).toBe('105');
  });

  it('honours an OAuth access token on OAuth-signed calls only, and a frob token never on them', async () => {
    const { token } = decodeCredential(credential) as OAuthCredential;
    const frobClient = new IpernityClient({ apiUrl: `${simulator.url}/api`, apiKey: API_KEY, apiSecret: API_SECRET, timeoutMs: 2000 });
    expect((await failure(frobClient.call('auth.checkToken', {}, token))).message).toContain('code 107');
    const frob = simulator.state.createAuthorizedFrob(API_KEY, '1234', { doc: 'read' });
    const frobToken = (await frobClient.getToken(frob as never)).token;
    expect((await failure(client.call('auth.checkToken', {}, frobToken))).message).toContain('code 107');
    await frobClient.close();
  });

  it('makes ipernity\'s OAuth codes typed errors with stable codes; 132 and 134 tell the operator to check the clock', async () => {
    const expected: Record<number, string> = {
      130: 'IPERNITY_OAUTH_VERSION',
      131: 'IPERNITY_OAUTH_PARAMETER_MISSING',
      132: 'IPERNITY_OAUTH_CLOCK_SKEW',
      133: 'IPERNITY_OAUTH_NONCE_USED',
      134: 'IPERNITY_OAUTH_TIMESTAMP',
      135: 'IPERNITY_OAUTH_SIGNATURE_METHOD',
    };
    for (const [apiCode, code] of Object.entries(expected)) {
      simulator.faults.set({ apiError: Number(apiCode), times: 1 });
      const error = await failure(client.call('test.echo', { echo: 'x' }, credential));
      expect(error).toBeInstanceOf(IpernityOAuthError);
      expect([error.code, error.status]).toEqual([code, 502]);
      expect(error.message.includes("check this server's clock")).toBe(apiCode === '132' || apiCode === '134');
    }
  });

  it('exchanges a request token once: not before the visitor authorized it, and never twice (107)', async () => {
    const requested = await client.requestToken('http://127.0.0.1/connect/callback');
    expect((await failure(client.accessToken(requested))).message).toContain('code 107');
    (simulator.state.liveRequestToken(requested.token) as { grant?: unknown }).grant = { userId: '1234', permissions: { doc: 'read' } };
    await client.accessToken(requested);
    expect((await failure(client.accessToken(requested))).message).toContain('code 107');
    // a request token's secret is needed to exchange it
    const other = await client.requestToken('http://127.0.0.1/connect/callback');
    (simulator.state.liveRequestToken(other.token) as { grant?: unknown }).grant = { userId: '1234', permissions: { doc: 'read' } };
    expect((await failure(client.accessToken({ token: other.token, secret: 'guessed' }))).message).toContain('code 105');
  });

  it('reads an endpoint\'s refusal in OAuth\'s own problem form too (oauth_problem=timestamp_refused is 132)', async () => {
    const server = http.createServer((_req, res) => {
      res.writeHead(401, { 'content-type': 'application/x-www-form-urlencoded' }).end('oauth_problem=timestamp_refused&oauth_acceptable_timestamps=1-2');
    });
    const url = await listen(server);
    const elsewhere = clientFor('HMAC-SHA1', url);
    try {
      const error = await failure(elsewhere.requestToken('http://127.0.0.1/connect/callback'));
      expect([error.code, (error as IpernityOAuthError).apiCode]).toEqual(['IPERNITY_OAUTH_CLOCK_SKEW', 132]);
    } finally {
      server.close();
      await elsewhere.close();
    }
  });

  it('refuses a request token without an absolute http(s) oauth_callback (131)', async () => {
    expect((await failure(client.requestToken('oob'))).code).toBe('IPERNITY_OAUTH_PARAMETER_MISSING');
  });
});
