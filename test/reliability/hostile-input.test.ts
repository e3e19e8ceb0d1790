import path from 'node:path';
import fc from 'fast-check';
import type { RunningSimulator } from '../support/harness';
import { rawRequest, type RawAnswer, type RawRequest } from './support/raw-http';
import {
  API_SECRET,
  closeClient,
  cookieHeader,
  exchange,
  hiddenFields,
  keepCookies,
  logTrouble,
  recordFigures,
  removeScratch,
  scratch,
  startFlow,
  startServer,
  startUpstream,
  walkFlow,
  type Jar,
  type ServerProcess,
} from './support/stack';

/** Runs per route; with the time limit, this keeps the file within about a minute and a half on 2 cores. */
const RUNS_PER_ROUTE = 400;
const TIME_LIMIT_PER_ROUTE_MS = 20_000;

const SESSION_COOKIE = 'ipernity-connect.sid';
const CSRF_COOKIE = 'ipernity-connect.csrf';

/** Values that have broken parsers before: bad percent-encoding, prototype keys, paths, markup, numbers, Unicode. */
const NASTY = [
  '%C3%28', '%FF', '%', '%%', '%E0%A4%A', '%ED%A0%80', '%00', '%0D%0A', '%u0041', '%2', '%zz', '%25', '%C0%AF',
  '__proto__', 'constructor', 'prototype', 'constructor[prototype]', '__proto__[polluted]', 'constructor[prototype][polluted]',
  'toString', 'hasOwnProperty', 'valueOf', '[]', 'a[b][c]', 'a[]', '[', ']',
  '../../etc/passwd', '//evil.example', '/\\evil.example', '\\\\evil.example', 'https://evil.example/', 'javascript:alert(1)',
  '<script>alert(1)</script>', '"><img src=x onerror=alert(1)>', "'", '"', '`', '${7*7}', '<%= it %>', '{{7*7}}',
  '123456789-0ad5e2a8', '999999999-ffffffff', '0', '-1', '1e309', 'NaN', 'Infinity', 'undefined', 'null', 'true', '[object Object]',
  'read', 'write', 'delete', 'none', 'admin', 'READ', ' read', 'read ', 'doc:write',
  '\u2028', '\uFFFF', '\u0000', '\u202E', 'é', '日本', '🙂', '\uD800',
];
const PARAMS = ['frob', 'perm_doc', 'perm_blog', 'perm_post', 'perm_network', 'perm_profile', 'perm_user', 'return_to', 'attempt', 'check', '_csrf', 'api_key', 'api_sig', 'auth_token', 'decision', 'user_id', 'lang'];

const nasty = fc.constantFrom(...NASTY);
const huge = fc.tuple(fc.constantFrom('x', '%FF', '/', 'é', '[a]'), fc.integer({ min: 1000, max: 12_000 })).map(([unit, n]) => unit.repeat(Math.ceil(n / unit.length)));
const text = fc.oneof({ weight: 3, arbitrary: nasty }, { weight: 3, arbitrary: fc.string({ maxLength: 40 }) }, { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 20 }) }, { weight: 1, arbitrary: huge });
const name = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...PARAMS) }, { weight: 3, arbitrary: nasty }, { weight: 1, arbitrary: fc.string({ maxLength: 12 }) });

/** encodeURIComponent, with lone surrogates (which it refuses) made U+FFFD first; raw bad bytes come from NASTY instead. */
function encode(value: string): string {
  return encodeURIComponent(value.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD'));
}

/** A query string or form body: pairs, some encoded and some sent raw (so bad percent-encoding reaches the parsers). */
const pairs = fc.array(fc.tuple(name, text, fc.boolean()), { maxLength: 12 }).map((list) =>
  list.map(([key, value, raw]) => (raw ? `${rawSafe(key)}=${rawSafe(value)}` : `${encode(key)}=${encode(value)}`)).join('&'),
);
const repeated = fc.tuple(fc.constantFrom(...PARAMS), fc.array(text, { minLength: 2, maxLength: 5 })).map(([key, values]) => values.map((value) => `${key}=${encode(value)}`).join('&'));
const query = fc.oneof(fc.constant(''), pairs, repeated, fc.tuple(pairs, repeated).map(([a, b]) => `${a}&${b}`));

/** Keeps what a request line can carry as is; the rest is percent-encoded (a raw space or control byte only earns a 400 from Node's parser). */
function rawSafe(value: string): string {
  return [...value].map((ch) => (/^[\x21-\x7e]$/.test(ch) && ch !== '#' ? ch : encode(ch))).join('');
}

/** Header values: anything but CR, LF and NUL, which would change the framing rather than the content. */
const headerValue = text.map((value) => [...value].filter((ch) => !/[\r\n\0]/.test(ch)).map((ch) => (ch.charCodeAt(0) > 0xff ? '?' : ch)).join(''));

interface Browser {
  jar: Jar;
  csrfToken: string;
}

/** Cookie headers built from a connected browser's cookies (and a browser that only has an attempt pending), whole, mangled, repeated or made up. */
function cookies(browser: Browser, pendingOnly: Browser): fc.Arbitrary<string | undefined> {
  const session = browser.jar.get(SESSION_COOKIE) ?? '';
  const csrf = browser.jar.get(CSRF_COOKIE) ?? '';
  const mangled = fc.constantFrom(
    session.slice(0, -3),
    session.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A')),
    `s%3A%FF${session.slice(6)}`,
    `s:${session}`,
    '%',
    `${session}; ${session}`,
    decodeURIComponent(session),
  );
  const pair = fc.oneof(
    fc.constant(`${SESSION_COOKIE}=${session}`),
    fc.constant(cookieHeader(pendingOnly.jar)),
    mangled.map((value) => `${SESSION_COOKIE}=${value}`),
    fc.constant(`${CSRF_COOKIE}=${csrf}`),
    headerValue.map((value) => `${CSRF_COOKIE}=${value}`),
    fc.tuple(fc.constantFrom('__proto__', 'constructor', 'toString', SESSION_COOKIE, CSRF_COOKIE, 'a'), headerValue).map(([k, v]) => `${k}=${v}`),
    headerValue,
  );
  return fc.option(fc.array(pair, { minLength: 1, maxLength: 6 }).map((list) => list.join('; ')), { nil: undefined, freq: 4 });
}

const CONTENT_TYPES = [
  'application/x-www-form-urlencoded',
  'application/x-www-form-urlencoded; charset=utf-8',
  'application/x-www-form-urlencoded; charset=latin1',
  'application/x-www-form-urlencoded; charset=utf-16',
  'application/x-www-form-urlencoded; charset=nope',
  'application/json',
  'text/plain',
  'multipart/form-data; boundary=x',
  'application/x-www-form-urlencoded; boundary=',
  '',
];

function body(browser: Browser): fc.Arbitrary<{ contentType?: string; encoding?: string; body: Buffer }> {
  const withToken = fc.tuple(pairs, fc.boolean()).map(([fields, token]) => (token ? `_csrf=${encodeURIComponent(browser.csrfToken)}&${fields}` : fields));
  const content = fc.oneof(
    { weight: 4, arbitrary: withToken.map((s) => Buffer.from(s, 'utf8')) },
    { weight: 1, arbitrary: fc.constantFrom('{"__proto__":{"polluted":1}}', '{"constructor":{"prototype":{"polluted":1}}}', '{', 'null', '[]').map((s) => Buffer.from(s)) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes)) },
    { weight: 1, arbitrary: fc.integer({ min: 33, max: 200 }).map((n) => Buffer.from(Array.from({ length: n }, (_, i) => `p${i}=1`).join('&'))) },
    { weight: 1, arbitrary: fc.integer({ min: 4097, max: 20_000 }).map((n) => Buffer.from(`_csrf=${browser.csrfToken}&perm_doc=${'w'.repeat(n)}`)) },
  );
  return fc.record({
    contentType: fc.option(fc.constantFrom(...CONTENT_TYPES), { nil: undefined, freq: 6 }),
    encoding: fc.option(fc.constantFrom('gzip', 'deflate', 'br', 'identity', 'x-nope'), { nil: undefined, freq: 8 }),
    body: content,
  });
}

function otherHeaders(port: number): fc.Arbitrary<Array<[string, string]>> {
  const origin = `http://127.0.0.1:${port}`;
  const header = fc.oneof(
    fc.tuple(fc.constant('Accept-Language'), fc.oneof(headerValue, fc.constantFrom('fr', 'de-DE,de;q=0.9', '*', 'xx-YY;q=2', 'en;q=abc', ',,,', 'fr'.repeat(3000)))),
    fc.tuple(fc.constant('X-Request-Id'), headerValue),
    fc.tuple(fc.constant('Origin'), fc.oneof(fc.constantFrom(origin, 'null', 'https://evil.example', ''), headerValue)),
    // Fetch Metadata decides CSRF for browsers that send it: the valid values, and anything else
    fc.tuple(fc.constant('Sec-Fetch-Site'), fc.oneof(fc.constantFrom('same-origin', 'same-site', 'cross-site', 'none', 'SAME-ORIGIN', ''), headerValue)),
    fc.tuple(fc.constant('Host'), fc.oneof(fc.constantFrom(`127.0.0.1:${port}`, `localhost:${port}`, 'evil.example', '[::1]', ''), headerValue)),
    fc.tuple(fc.constantFrom('X-Forwarded-For', 'X-Forwarded-Proto', 'X-Forwarded-Host', 'Forwarded'), headerValue),
    fc.tuple(fc.constant('Accept'), fc.constantFrom('application/json', 'text/html', '*/*', 'image/png', '')),
    fc.tuple(fc.constant('Authorization'), fc.oneof(fc.constant('Bearer '), headerValue.map((v) => `Bearer ${v}`))),
    fc.tuple(fc.constantFrom('Referer', 'User-Agent', 'If-None-Match', 'Range', '__proto__', 'constructor'), headerValue),
  );
  return fc.array(header, { maxLength: 5 });
}

interface Route {
  name: string;
  method: fc.Arbitrary<string>;
  path: fc.Arbitrary<string>;
  /** Queries that reach deeper than random ones (the callback's one well-formed frob). */
  query?: fc.Arbitrary<string>;
  form?: boolean;
}

/** Frobs of the right shape that ipernity never issued, or issued and spent. */
const wellFormedFrob = fc.tuple(fc.integer({ min: 100_000_000, max: 999_999_999 }), fc.integer({ min: 0, max: 0xffffffff })).map(([n, hex]) => `${n}-${hex.toString(16).padStart(8, '0')}`);

const ODD_METHODS = ['PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD', 'TRACE', 'PROPFIND', 'SEARCH', 'M-SEARCH', 'PURGE', 'LINK', 'BREW', 'get', 'CONNECT'];
const KNOWN_PATHS = ['/', '/connect', '/connect/callback', '/connect/complete', '/disconnect', '/connection', '/readyz', '/healthz', '/metrics', '/static/style.css'];

const ROUTES: Route[] = [
  { name: 'GET /', method: fc.constant('GET'), path: fc.constant('/') },
  { name: 'GET /connect', method: fc.constant('GET'), path: fc.constant('/connect') },
  { name: 'POST /connect', method: fc.constant('POST'), path: fc.constant('/connect'), form: true },
  { name: 'GET /connect/callback', method: fc.constant('GET'), path: fc.constant('/connect/callback'), query: fc.oneof(query, wellFormedFrob.map((frob) => `frob=${frob}`)) },
  { name: 'GET /connect/complete', method: fc.constant('GET'), path: fc.constant('/connect/complete') },
  { name: 'POST /connect/complete', method: fc.constant('POST'), path: fc.constant('/connect/complete'), form: true },
  { name: 'POST /disconnect', method: fc.constant('POST'), path: fc.constant('/disconnect'), form: true },
  { name: 'GET /connection', method: fc.constant('GET'), path: fc.constant('/connection') },
  { name: 'GET /readyz, /healthz, /metrics', method: fc.constant('GET'), path: fc.constantFrom('/readyz', '/healthz', '/metrics') },
  {
    name: 'unknown and odd paths',
    method: fc.constantFrom('GET', 'POST', 'HEAD'),
    path: fc.oneof(
      fc.constantFrom('/static/', '/static/../package.json', '/static/%2e%2e/package.json', '//evil.example', '/%2F%2Fevil.example', '/connect/', '/CONNECT', '/connect;x', '/connect%00', '/%FF', '/%', '/.env', '/sandbox/ipernity/apps/authorize', '/__simulator/faults'),
      fc.array(text.map(rawSafe), { minLength: 1, maxLength: 4 }).map((segments) => `/${segments.join('/')}`),
    ),
  },
  { name: 'odd methods on every path', method: fc.constantFrom(...ODD_METHODS), path: fc.constantFrom(...KNOWN_PATHS), form: true },
];

describe('hostile input', () => {
  let dir: string;
  let simulator: RunningSimulator;
  let server: ServerProcess;
  let tried = 0;
  const perRoute: Record<string, number> = {};

  beforeAll(async () => {
    dir = scratch('hostile');
    simulator = await startUpstream();
    server = await startServer({ simulatorUrl: simulator.url, store: 'sqlite', logFile: path.join(dir, 'server.log') });
  });
  afterAll(async () => {
    await server?.stop();
    await simulator?.close();
    removeScratch(dir);
    await closeClient();
    recordFigures('hostile-input', { 'hostile inputs tried': tried, 'hostile inputs per route': Object.entries(perRoute).map(([route, n]) => `${route} ${n}`).join('; ') });
  });

  /** A browser with a pending attempt (so callbacks reach ipernity), connected first unless `connected` is false. */
  async function browser(userId: number, connected = true): Promise<Browser> {
    const jar = connected ? (await walkFlow({ app: () => server.origin, simulator: simulator.url }, userId)).jar : new Map<string, string>();
    await startFlow({ app: () => server.origin, simulator: simulator.url }, userId, jar);
    const page = await exchange(server.origin, '/connect', { headers: { cookie: cookieHeader(jar) } });
    keepCookies(jar, page.headers['set-cookie']);
    return { jar, csrfToken: hiddenFields(page.text)._csrf ?? '' };
  }

  /** What must hold for any answer: an answer came, not a 5xx, and no secret or token in it. */
  function problemWith(method: string, answer: RawAnswer): string | undefined {
    // Node's HTTP server closes a CONNECT it has no tunnel handler for, without an answer: that is the right outcome
    if (answer.status === 0 && method === 'CONNECT' && !answer.timedOut) return undefined;
    if (answer.status === 0) return answer.timedOut ? 'no answer within 10 s' : 'the connection closed without an answer';
    if (answer.status >= 500) return `answered ${answer.status}`;
    const shown = answer.head + answer.body;
    for (const secret of [API_SECRET, ...simulator.state.issuedTokens()]) {
      if (shown.includes(secret)) return `a secret or token is in the answer (${secret.slice(0, 6)}…)`;
    }
    return undefined;
  }

  it.each(ROUTES.map((route, i) => [route.name, route, i] as const))('%s: never a 5xx, a hang, a crash or a secret in the answer', async (routeName, route, i) => {
    const visitor = await browser(5_000_000 + i);
    const pendingOnly = await browser(5_100_000 + i, false);
    const request = fc.record({
      method: route.method,
      path: route.path,
      query: route.query ?? query,
      cookie: cookies(visitor, pendingOnly),
      headers: otherHeaders(server.port),
      form: route.form ? fc.option(body(visitor), { nil: undefined, freq: 8 }) : fc.constant(undefined),
    });
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(request, async (input) => {
        runs += 1;
        const headers: Array<[string, string]> = [...input.headers];
        if (input.cookie !== undefined) headers.push(['Cookie', input.cookie]);
        if (input.form?.contentType) headers.push(['Content-Type', input.form.contentType]);
        if (input.form?.encoding) headers.push(['Content-Encoding', input.form.encoding]);
        const raw: RawRequest = { method: input.method, target: input.query ? `${input.path}?${input.query}` : input.path, headers, body: input.form?.body };
        const answer = await rawRequest(server.port, raw);
        const problem = problemWith(input.method, answer);
        if (problem) throw new Error(`${problem}: ${answer.head.split('\r\n')[0] ?? ''} ${answer.body.slice(0, 300)}`);
      }),
      { numRuns: RUNS_PER_ROUTE, interruptAfterTimeLimit: TIME_LIMIT_PER_ROUTE_MS },
    );
    tried += runs;
    perRoute[routeName] = runs;
    // still serving, still the same process
    expect(server.child.exitCode).toBeNull();
    expect((await exchange(server.origin, '/healthz')).status).toBe(200);
  });

  it('then stops cleanly, with no unhandled rejection and no error line in its log', async () => {
    expect(await server.stop()).toBe(0);
    expect(logTrouble(server.logFile)).toEqual([]);
  });
});
