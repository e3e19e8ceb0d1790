import http from 'node:http';
import { IpernityClient, retryAfterSeconds } from '../../src/ipernity/client';
import type { MethodName } from '../../src/ipernity/catalogue';
import {
  Codes,
  DEFAULT_RETRY_AFTER_SECONDS,
  IpernityApiError,
  IpernityPermissionError,
  IpernityRateLimitError,
  ParameterMissingError,
} from '../../src/ipernity/errors';
import { failure, listen } from '../support/harness';

interface Seen {
  httpMethod: string;
  path: string;
  params: URLSearchParams;
}

/** A stand-in for ipernity that records each request and answers with `reply`. */
function fakeIpernity() {
  const seen: Seen[] = [];
  let reply: (seen: Seen) => { body: unknown; headers?: Record<string, string> } = () => ({ body: { api: { status: 'ok' } } });
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const request: Seen = { httpMethod: req.method ?? '', path: req.url ?? '', params: new URLSearchParams(Buffer.concat(chunks).toString('utf8')) };
      seen.push(request);
      const { body, headers } = reply(request);
      res.writeHead(200, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
    });
  });
  return {
    seen,
    server,
    answer(next: typeof reply) {
      reply = next;
    },
  };
}

const fake = fakeIpernity();
let client: IpernityClient;

beforeAll(async () => {
  const url = await listen(fake.server);
  client = new IpernityClient({ apiUrl: `${url}/api`, apiKey: 'k', apiSecret: 's', timeoutMs: 1000 });
});
afterAll(async () => {
  await client.close();
  await new Promise<void>((resolve) => fake.server.close(() => resolve()));
});
beforeEach(() => {
  fake.seen.length = 0;
  fake.answer(() => ({ body: { api: { status: 'ok' } } }));
});

const apiError = (code: number) => () => ({ body: { api: { status: 'error', code: String(code), message: `error ${code}` } } });

describe('IpernityClient.call checks the method list before sending', () => {
  it('refuses an unknown method without any request', async () => {
    const error = await failure(client.call('doc.getLsit' as MethodName, {}));
    expect(error).toMatchObject({ code: Codes.IPERNITY_METHOD_UNKNOWN, method: 'doc.getLsit', status: 500 });
    expect(fake.seen).toHaveLength(0);
  });

  it('reaches a method the list lacks when told { unlisted: true }', async () => {
    await client.call('user.pref.get', { pref: 'x' }, 'tok-1', { unlisted: true });
    expect(fake.seen.map((s) => s.path)).toEqual(['/api/user.pref.get/json']);
    expect(fake.seen[0]?.params.get('auth_token')).toBe('tok-1');
  });

  it('refuses a method that needs a token when called without one, without any request', async () => {
    const error = await failure(client.call('doc.delete', { doc_id: '1' }));
    expect(error).toMatchObject({ code: Codes.IPERNITY_TOKEN_REQUIRED, method: 'doc.delete', status: 500 });
    expect(fake.seen).toHaveLength(0);
  });

  it('refuses a missing required parameter, naming it, without any request', async () => {
    const error = await failure(client.call('album.docs.add', { album_id: '7' }, 'tok-1'));
    expect(error).toBeInstanceOf(ParameterMissingError);
    expect(error).toMatchObject({ code: Codes.IPERNITY_PARAMETER_MISSING, parameter: 'doc_id' });
    expect(await failure(client.call('doc.get', { doc_id: '' }))).toMatchObject({ parameter: 'doc_id' });
    expect(fake.seen).toHaveLength(0);
  });

  it('counts the token argument as the auth_token auth.checkToken requires', async () => {
    await client.call('auth.checkToken', {}, 'tok-1');
    expect(await failure(client.call('auth.checkToken', {}))).toMatchObject({ code: Codes.IPERNITY_TOKEN_REQUIRED });
    expect(fake.seen).toHaveLength(1);
  });

  it('sends every method by POST, GET/POST ones included, signed', async () => {
    await client.call('doc.getList', { user_id: '1234' });
    await client.call('doc.delete', { doc_id: '1' }, 'tok-1');
    expect(fake.seen.map((s) => `${s.httpMethod} ${s.path}`)).toEqual(['POST /api/doc.getList/json', 'POST /api/doc.delete/json']);
    expect(fake.seen.every((s) => /^[0-9a-f]{32}$/.test(s.params.get('api_sig') ?? ''))).toBe(true);
  });
});

describe('IpernityClient.call types what a connection in use meets', () => {
  it('gives 110 the permission the method needs, from the list', async () => {
    fake.answer(apiError(110));
    const error = await failure(client.call('doc.delete', { doc_id: '1' }, 'tok-1'));
    expect(error).toBeInstanceOf(IpernityPermissionError);
    expect(error).toBeInstanceOf(IpernityApiError);
    expect(error).toMatchObject({ code: Codes.IPERNITY_PERMISSION_DENIED, status: 403, apiCode: 110, permission: { item: 'doc', level: 'delete' }, required: { doc: 'delete' } });
  });

  it('gives 110 on an unlisted method no permission rather than a guess', async () => {
    fake.answer(apiError(110));
    const error = await failure(client.call('user.pref.get', {}, 'tok-1', { unlisted: true }));
    expect(error).toMatchObject({ code: Codes.IPERNITY_PERMISSION_DENIED, permission: undefined, required: {} });
  });

  it('reads 112 as the application quota (429)', async () => {
    fake.answer(apiError(112));
    expect(await failure(client.call('test.hello'))).toMatchObject({ code: Codes.IPERNITY_QUOTA_REACHED, status: 429, apiCode: 112 });
  });

  it('reads 113 as the rate limit with a 60-second delay when ipernity names none', async () => {
    fake.answer(apiError(113));
    const error = await failure(client.call('test.hello'));
    expect(error).toBeInstanceOf(IpernityRateLimitError);
    expect(error).toMatchObject({ code: Codes.IPERNITY_RATE_LIMITED, status: 429, retryAfterSeconds: DEFAULT_RETRY_AFTER_SECONDS });
    expect(DEFAULT_RETRY_AFTER_SECONDS).toBe(60);
  });

  it("reads 113's delay from a Retry-After header when there is one", async () => {
    fake.answer(() => ({ ...apiError(113)(), headers: { 'retry-after': '120' } }));
    expect(await failure(client.call('test.hello'))).toMatchObject({ retryAfterSeconds: 120 });
  });

  it('reads Retry-After as seconds or an HTTP date, and falls back on the default', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(retryAfterSeconds('30', now)).toBe(30);
    expect(retryAfterSeconds('Thu, 01 Jan 2026 00:01:30 GMT', now)).toBe(90);
    expect(retryAfterSeconds('Wed, 31 Dec 2025 23:00:00 GMT', now)).toBe(0);
    expect(retryAfterSeconds('soon', now)).toBe(60);
    expect(retryAfterSeconds(undefined, now)).toBe(60);
  });

  it('reads 120 as POST required (502: ipernity refused what we sent)', async () => {
    fake.answer(apiError(120));
    expect(await failure(client.call('test.hello'))).toMatchObject({ code: Codes.IPERNITY_POST_REQUIRED, status: 502, apiCode: 120 });
  });

  it('keeps 107 and 108 as plain IpernityApiError with their apiCode, as the token check reads them', async () => {
    for (const code of [107, 108]) {
      fake.answer(apiError(code));
      const error = await failure(client.checkToken('tok-1'));
      expect(error.constructor).toBe(IpernityApiError);
      expect(error).toMatchObject({ code: Codes.IPERNITY_API_ERROR, apiCode: code });
    }
  });
});

describe('IpernityClient.paginate', () => {
  /** Serves `total` docs, `perPage` a page, in ipernity's JSON shape. */
  function servePages(total: number, perPage: number): void {
    fake.answer((request) => {
      const page = Number(request.params.get('page'));
      const pages = Math.ceil(total / perPage);
      const doc = Array.from({ length: Math.max(0, Math.min(perPage, total - (page - 1) * perPage)) }, (_, i) => ({ doc_id: String((page - 1) * perPage + i + 1) }));
      return { body: { docs: { total: String(total), per_page: String(perPage), page: String(page), pages: String(pages), doc }, api: { status: 'ok' } } };
    });
  }

  async function all(iterable: AsyncIterable<unknown>): Promise<unknown[]> {
    const items: unknown[] = [];
    for await (const item of iterable) items.push(item);
    return items;
  }

  it('yields every item across pages and stops at pages, never asking page pages+1', async () => {
    servePages(12, 5);
    const items = await all(client.paginate('doc.getList', { user_id: '1234', per_page: '5' }));
    expect(items.map((item) => (item as { doc_id: string }).doc_id)).toEqual(Array.from({ length: 12 }, (_, i) => String(i + 1)));
    expect(fake.seen.map((s) => s.params.get('page'))).toEqual(['1', '2', '3']);
    expect(fake.seen.every((s) => s.params.get('per_page') === '5' && s.params.get('user_id') === '1234')).toBe(true);
  });

  it('asks once when everything fits on one page', async () => {
    servePages(3, 20);
    expect(await all(client.paginate('doc.getList', { user_id: '1234' }))).toHaveLength(3);
    expect(fake.seen).toHaveLength(1);
  });

  it('yields nothing, after one request, for an empty list (pages 0, no list key)', async () => {
    fake.answer(() => ({ body: { docs: { total: '0', per_page: '20', page: '1', pages: '0' }, api: { status: 'ok' } } }));
    expect(await all(client.paginate('doc.getList', { user_id: '1234' }))).toEqual([]);
    expect(fake.seen).toHaveLength(1);
  });

  it('reads a lone item given as an object as a list of one', async () => {
    fake.answer(() => ({ body: { albums: { page: '1', pages: '1', album: { album_id: '9' } }, api: { status: 'ok' } } }));
    expect(await all(client.paginate('album.getList'))).toEqual([{ album_id: '9' }]);
  });

  it('stops early when the caller breaks, without asking further pages', async () => {
    servePages(100, 10);
    for await (const _item of client.paginate('doc.getList', { user_id: '1234', per_page: '10' })) break;
    expect(fake.seen).toHaveLength(1);
  });

  it('refuses a method without pages before any request', async () => {
    const error = await failure(all(client.paginate('doc.get', { doc_id: '1' })));
    expect(error).toMatchObject({ code: Codes.IPERNITY_METHOD_NOT_PAGINATED, method: 'doc.get', status: 500 });
    expect(fake.seen).toHaveLength(0);
  });

  it('runs the same checks as call: a missing required parameter is refused before any request', async () => {
    expect(await failure(all(client.paginate('doc.getList', {})))).toMatchObject({ code: Codes.IPERNITY_PARAMETER_MISSING, parameter: 'user_id' });
    expect(fake.seen).toHaveLength(0);
  });

  it('turns an answer with no page container into a bad-response error', async () => {
    fake.answer(() => ({ body: { docs: { doc: [] }, api: { status: 'ok' } } }));
    expect(await failure(all(client.paginate('doc.getList', { user_id: '1234' })))).toMatchObject({ code: Codes.UPSTREAM_BAD_RESPONSE });
  });
});
