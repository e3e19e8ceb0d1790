import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import type { Fault } from '../../src/simulator/faults';
import type { RunningSimulator } from '../support/harness';
import { rawRequest, type RawAnswer } from './support/raw-http';
import {
  SESSION_SECRET,
  closeClient,
  cookieHeader,
  exchange,
  hiddenFields,
  inParallel,
  jsonErrorCodeOf,
  keepCookies,
  logTrouble,
  readLog,
  recordFigures,
  removeScratch,
  scratch,
  secretsOf,
  startRedis,
  startServer,
  startUpstream,
  stopRedis,
  walkFlow,
  type Answer,
  type Jar,
  type Redis,
  type ServerProcess,
} from './support/stack';

/**
 * The API gateway (`/api/ipernity/<method>`) and the forward-auth
 * sub-request (`GET /connect/auth`) on real server processes: ipernity's
 * faults during a gateway call, hostile input at both, and 50 connected
 * visitors calling the gateway at once, with and without the answer cache.
 */

/** What the gateway forwards here: reading methods whose answers depend on the visitor's token, a write, and one the grant lacks. */
const METHODS = ['test.echo', 'album.getList', 'doc.getList', 'doc.get', 'doc.search', 'doc.set', 'account.getQuota'];
/** The server gives up on ipernity after this long. */
const CLIENT_TIMEOUT_MS = 500;
/** The gateway on, its per-visitor rate limit far above what the tests send. */
const GATEWAY_ENV = { IPERNITY_API_METHODS: METHODS.join(','), API_RATE_LIMIT_PER_MINUTE: '1000000' };
const SESSION_COOKIE = 'ipernity-connect.sid';
const FORM = 'application/x-www-form-urlencoded';
const SAME_ORIGIN = { 'sec-fetch-site': 'same-origin' };

/** Runs per property (about 8 s each on 2 cores); the time limit bounds a slower machine. */
const RUNS = 4000;
const TIME_LIMIT_MS = 25_000;
const VISITORS = 50;
const CALLS = 500;

interface Visitor {
  userId: string;
  jar: Jar;
  cookie: string;
}

/** A visitor connected through the web flow, as `userId`, whose ipernity account has its starter photos and albums. */
async function connect(origin: string, simulator: RunningSimulator, userId: number): Promise<Visitor> {
  const { jar } = await walkFlow({ app: () => origin, simulator: simulator.url }, userId);
  // the simulator makes an account's photos when it is first asked for them: before any search over everyone's
  simulator.library.seed(String(userId));
  return { userId: String(userId), jar, cookie: cookieHeader(jar) };
}

/** The secret or token an answer shows, if any (the API secret, the session secret, each token the simulator issued). */
function leakIn(text: string, simulator: RunningSimulator): string | undefined {
  const found = [...secretsOf(simulator), SESSION_SECRET].find((secret) => text.includes(secret));
  return found && `${found.slice(0, 6)}…`;
}

function shown(answer: Answer): string {
  return `${JSON.stringify(answer.headers)}\n${answer.text}`;
}

/** The fields of ipernity's answers (and /connection's) the tests read. */
interface Listed {
  echo?: string;
  connected?: boolean;
  docs?: { doc?: Array<{ owner_id?: string; is_public?: string }> };
  albums?: { album?: Array<{ owner_id?: string }> };
}

function json(text: string): Listed | undefined {
  try {
    return JSON.parse(text) as Listed;
  } catch {
    return undefined;
  }
}

/** A gateway call for `visitor`, by GET (parameters in the query) or by POST (a same-origin form). */
function call(origin: string, visitor: Visitor | undefined, method: string, params: Record<string, string>, how: 'GET' | 'POST' = 'GET'): Promise<Answer> {
  const query = new URLSearchParams(params).toString();
  const cookie: Record<string, string> = visitor ? { cookie: visitor.cookie } : {};
  if (how === 'GET') return exchange(origin, `/api/ipernity/${method}${query ? `?${query}` : ''}`, { headers: cookie });
  return exchange(origin, `/api/ipernity/${method}`, { method: 'POST', headers: { ...cookie, ...SAME_ORIGIN, 'content-type': FORM }, body: query });
}

/** The search every fault test makes: the visitor's own private "Family picnic", found only with their own token. */
const SEARCH = (visitor: Visitor): Record<string, string> => ({ user_id: visitor.userId, text: 'family' });

/** What is wrong with a search answer for `visitor`, if anything. */
function wrongSearch(visitor: Visitor, answer: Answer): string | undefined {
  const docs = json(answer.text)?.docs?.doc;
  if (answer.status !== 200 || !docs) return `user ${visitor.userId}: ${answer.status} ${answer.text.slice(0, 200)}`;
  if (docs.length !== 1 || docs[0]?.owner_id !== visitor.userId || docs[0]?.is_public !== '0') return `user ${visitor.userId}: another answer ${answer.text.slice(0, 200)}`;
  return undefined;
}

/** encodeURIComponent, with lone surrogates (which it refuses) made U+FFFD first. */
function encode(value: string): string {
  return encodeURIComponent(value.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD'));
}

/** Keeps what a request line can carry as is (so bad percent-encoding reaches the parsers); the rest percent-encoded. */
function rawSafe(value: string): string {
  return [...value].map((ch) => (/^[\x21-\x7e]$/.test(ch) && ch !== '#' && ch !== '?' ? ch : encode(ch))).join('');
}

describe('the API gateway and forward auth', () => {
  let dir: string;
  let simulator: RunningSimulator;
  const figures: Record<string, number | string> = {};
  const faultsAnswered: string[] = [];

  beforeAll(async () => {
    dir = scratch('gateway');
    simulator = await startUpstream();
  });
  afterEach(() => {
    simulator.faults.clear();
  });
  afterAll(async () => {
    await simulator?.close();
    removeScratch(dir);
    await closeClient();
    recordFigures('gateway', { ...figures, 'gateway faults answered': faultsAnswered.length, 'gateway faults answered, list': faultsAnswered.join('; ') });
  });

  /** The server's log has no secret and no token in it. */
  function expectLogClean(server: ServerProcess): void {
    expect(leakIn(fs.readFileSync(server.logFile, 'utf8'), simulator)).toBeUndefined();
  }

  describe('when ipernity misbehaves during a gateway call', () => {
    let server: ServerProcess;
    let visitors: Visitor[];

    beforeAll(async () => {
      server = await startServer({ simulatorUrl: simulator.url, store: 'sqlite', logFile: path.join(dir, 'faults.log'), env: { ...GATEWAY_ENV, IPERNITY_TIMEOUT_MS: String(CLIENT_TIMEOUT_MS) } });
      visitors = await inParallel(10, 10, (i) => connect(server.origin, simulator, 8_000_000 + i));
    });
    afterAll(async () => {
      await server?.stop();
    });

    /** Each visitor's search, again: right, and their own. */
    async function expectServing(): Promise<void> {
      expect((await exchange(server.origin, '/healthz')).status).toBe(200);
      const wrong = await inParallel(visitors.length, visitors.length, async (i) => wrongSearch(visitors[i] as Visitor, await call(server.origin, visitors[i], 'doc.search', SEARCH(visitors[i] as Visitor))));
      expect(wrong.filter(Boolean)).toEqual([]);
    }

    it.each<[string, number, string, Fault]>([
      [`is slower than the client timeout (${CLIENT_TIMEOUT_MS} ms)`, 504, 'UPSTREAM_TIMEOUT', { delayMs: CLIENT_TIMEOUT_MS * 3 }],
      ['answers HTTP 500', 502, 'UPSTREAM_HTTP_STATUS', { status: 500 }],
      ['answers HTTP 503', 502, 'UPSTREAM_HTTP_STATUS', { status: 503 }],
      ['answers HTML instead of JSON', 502, 'UPSTREAM_BAD_RESPONSE', { notJson: true }],
      ['drops the connection', 502, 'UPSTREAM_NETWORK', { drop: true }],
      ['answers 110 (permission denied)', 403, 'PERMISSION_MISSING', { apiError: 110 }],
      ['answers 112 (quota reached)', 429, 'IPERNITY_QUOTA_REACHED', { apiError: 112 }],
      ['answers 113 (too many requests)', 429, 'IPERNITY_RATE_LIMITED', { apiError: 113 }],
    ])('it %s: 20 concurrent calls, GET and POST, each get a JSON %i %s with nothing leaked, then the gateway serves again', async (name, status, code, fault) => {
      simulator.faults.set({ ...fault, methods: ['doc.search'] });
      const answers = await inParallel(20, 20, (i) => call(server.origin, visitors[i % visitors.length], 'doc.search', SEARCH(visitors[i % visitors.length] as Visitor), i % 2 ? 'POST' : 'GET'));
      const problems = answers.map((answer) => {
        if (answer.status !== status || jsonErrorCodeOf(answer.text) !== code) return `${answer.status} ${answer.text.slice(0, 200)}`;
        if (!String(answer.headers['content-type']).startsWith('application/json')) return `content-type ${answer.headers['content-type']}`;
        if (answer.headers['cache-control'] !== 'no-store') return `cache-control ${answer.headers['cache-control']}`;
        if (status === 429 && !/^\d+$/.test(String(answer.headers['retry-after']))) return `retry-after ${answer.headers['retry-after']}`;
        const leak = leakIn(shown(answer), simulator);
        return leak && `a secret in the answer (${leak})`;
      });
      expect(problems.filter(Boolean)).toEqual([]);
      if (status === 429) expect(answers[0]?.headers['retry-after']).toBe('60');

      simulator.faults.clear();
      await expectServing();
      expect(server.child.exitCode).toBeNull();
      faultsAnswered.push(`ipernity ${name}: ${status} ${code}`);
    });

    it('a fault for the next 5 calls only: among 20 concurrent calls, each answer is its own visitor\'s or a clear 502, never another\'s', async () => {
      simulator.faults.set({ drop: true, methods: ['doc.search'], times: 5 });
      const answers = await inParallel(20, 20, (i) => call(server.origin, visitors[i % visitors.length], 'doc.search', SEARCH(visitors[i % visitors.length] as Visitor)));
      // the client sends a call once more when its kept-alive socket was reset (taken for one the server had closed), so most of the 5 come through
      const failed = answers.filter((answer) => answer.status !== 200).map((answer) => `${answer.status} ${jsonErrorCodeOf(answer.text)}`);
      expect(failed.filter((outcome) => outcome !== '502 UPSTREAM_NETWORK')).toEqual([]);
      expect(failed.length).toBeLessThanOrEqual(5);
      expect(answers.map((answer, i) => (answer.status === 200 ? wrongSearch(visitors[i % visitors.length] as Visitor, answer) : undefined)).filter(Boolean)).toEqual([]);
      faultsAnswered.push(`ipernity dropping 5 of 20 concurrent calls (${failed.length} answered 502)`);
    });

    it('then stops cleanly, with no token or secret in its log and no unexpected error line', async () => {
      await expectServing();
      expect(await server.stop()).toBe(0);
      expectLogClean(server);
      expect(logTrouble(server.logFile, { statuses: [502, 504], codes: ['UPSTREAM_TIMEOUT', 'UPSTREAM_HTTP_STATUS', 'UPSTREAM_BAD_RESPONSE', 'UPSTREAM_NETWORK'] })).toEqual([]);
      // the calls were logged as gateway calls, with their outcome and never their values
      const outcomes = new Set(readLog(server.logFile).filter((entry) => entry.event === 'gateway_call').map((entry) => entry.outcome));
      expect([...outcomes].sort()).toEqual(expect.arrayContaining(['ok', 'upstream_timeout', 'upstream_network']));
      expect(fs.readFileSync(server.logFile, 'utf8')).not.toContain('text=family');
    });
  });

  describe('hostile input', () => {
    let server: ServerProcess;
    let visitor: Visitor;
    let csrfToken: string;

    beforeAll(async () => {
      server = await startServer({ simulatorUrl: simulator.url, store: 'sqlite', logFile: path.join(dir, 'hostile.log'), env: GATEWAY_ENV });
      visitor = await connect(server.origin, simulator, 8_100_000);
      // the CSRF token of this session, as a page of the site would hold it
      const page = await exchange(server.origin, '/connect', { headers: { cookie: visitor.cookie } });
      keepCookies(visitor.jar, page.headers['set-cookie']);
      visitor.cookie = cookieHeader(visitor.jar);
      csrfToken = hiddenFields(page.text)._csrf ?? '';
      expect(csrfToken).not.toBe('');
    });
    afterAll(async () => {
      await server?.stop();
    });

    /** What must hold for any answer: one came, not a 5xx, no secret or token in it. */
    function problemWith(answer: RawAnswer): string | undefined {
      if (answer.status === 0) return answer.timedOut ? 'no answer within 10 s' : 'the connection closed without an answer';
      if (answer.status >= 500) return `answered ${answer.status}`;
      const leak = leakIn(answer.head + answer.body, simulator);
      return leak && `a secret or token in the answer (${leak})`;
    }

    function headerOf(answer: RawAnswer, name: string): string | undefined {
      return new RegExp(`^${name}: (.*)$`, 'im').exec(answer.head)?.[1];
    }

    describe('at the gateway', () => {
      /** Method names that try to reach another method, the auth.* ones, or the parsers. */
      const NASTY_NAMES = [
        '../auth.getToken', '..%2Fauth.getToken', '..%2fauth.getToken', '%2e%2e%2Fauth.getToken', '%2E%2E/auth.getToken', 'test.echo%2F..%2F..%2Fauth.getToken', 'test.echo/../auth.getToken',
        'auth.getToken', 'auth.getFrob', 'auth.checkToken', 'auth%2EgetToken', 'test%2Eecho', 'TEST.ECHO', 'Test.Echo', 'DOC.GETLIST', 'doc.getlist', 'doc.delete', 'upload.file',
        '%2e%2e', '..', '.', '%2e', '%00', 'test.echo%00', 'test.echo%0D%0A', '%E0%A4%A', '%FF', '%', '%%', 'test.echo;x', 'test.echo.', ' test.echo', 'test.echo%20',
        '__proto__', 'constructor', 'prototype', 'hasOwnProperty', 'toString', 'valueOf', '__defineGetter__',
        'tést.echo', 'test.ech%C3%B6', '%F0%9F%99%82', '%E2%80%AE', '%C0%AE%C0%AE', '%u002e',
      ];
      const PARAM_NAMES = ['echo', 'user_id', 'doc_id', 'text', 'per_page', 'title', 'api_key', 'api_sig', 'auth_token', 'frob', 'format', 'method', '_csrf', '__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'Echo', 'echo[]', 'echo[a]', 'a.b', ''];
      const VALUES = ['x', '', '1', '-1', '1e309', 'NaN', '8100000', '%', '%FF', '%E0%A4%A', '__proto__', '{"a":1}', '[]', '<script>', '\u2028', '🙂', '\uD800', '../../etc/passwd'];

      const value = fc.oneof(
        { weight: 6, arbitrary: fc.constantFrom(...VALUES) },
        { weight: 6, arbitrary: fc.string({ maxLength: 30 }) },
        { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 20 }) },
        { weight: 1, arbitrary: fc.integer({ min: 1000, max: 6000 }).map((n) => 'v'.repeat(n)) },
      );
      const paramName = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...PARAM_NAMES) }, { weight: 1, arbitrary: fc.string({ maxLength: 10 }) });
      const pairs = fc.array(fc.tuple(paramName, value, fc.boolean()), { maxLength: 8 });
      const repeated = fc.tuple(fc.constantFrom(...PARAM_NAMES), fc.array(value, { minLength: 2, maxLength: 4 })).map(([name, values]) => values.map((v): [string, string, boolean] => [name, v, false]));
      const params = fc.oneof(pairs, repeated, fc.tuple(pairs, repeated).map(([a, b]) => [...a, ...b]));
      /** What each listed method takes (ipernity's list), so that many calls pass the checks and reach ipernity. */
      const TAKES: Record<string, { required: string[]; optional: string[] }> = {
        'test.echo': { required: ['echo'], optional: [] },
        'album.getList': { required: [], optional: ['user_id', 'empty', 'per_page', 'page'] },
        'doc.getList': { required: ['user_id'], optional: ['extra', 'per_page', 'page'] },
        'doc.get': { required: ['doc_id'], optional: ['extra'] },
        'doc.search': { required: [], optional: ['user_id', 'text', 'tags', 'per_page', 'page'] },
        'doc.set': { required: ['doc_id'], optional: ['title', 'description'] },
        'account.getQuota': { required: [], optional: [] },
      };
      const plausible = fc.oneof({ weight: 3, arbitrary: fc.constantFrom('8100000', '1', '2', 'x', 'family', 'Renamed', '100001', '5001') }, { weight: 1, arbitrary: value });
      function decoded(name: string): string | undefined {
        try {
          return decodeURIComponent(name);
        } catch {
          return undefined;
        }
      }
      /** The method's own parameters with plausible or hostile values; sometimes with hostile pairs mixed in, sometimes only hostile ones. */
      function paramsFor(name: string): fc.Arbitrary<Array<[string, string, boolean]>> {
        const method = decoded(name) ?? '';
        const takes = (Object.hasOwn(TAKES, method) ? TAKES[method] : TAKES['test.echo']) as { required: string[]; optional: string[] };
        const own = fc
          .subarray(takes.optional)
          .chain((optional) => fc.tuple(...[...takes.required, ...optional].map((key) => plausible.map((v): [string, string, boolean] => [key, v, false]))))
          .map((list): Array<[string, string, boolean]> => [...list]);
        return fc.oneof(
          { weight: 4, arbitrary: own },
          { weight: 2, arbitrary: fc.tuple(own, fc.array(fc.tuple(paramName, value, fc.boolean()), { minLength: 1, maxLength: 2 })).map(([a, b]) => [...a, ...b]) },
          { weight: 2, arbitrary: params },
        );
      }
      const queryOf = (list: Array<[string, string, boolean]>): string => list.map(([k, v, raw]) => (raw ? `${rawSafe(k)}=${rawSafe(v)}` : `${encode(k)}=${encode(v)}`)).join('&');

      const methodName = fc.oneof(
        { weight: 6, arbitrary: fc.constantFrom(...METHODS) },
        { weight: 4, arbitrary: fc.constantFrom(...NASTY_NAMES) },
        { weight: 1, arbitrary: fc.constantFrom(...METHODS).map((name) => name.toUpperCase()) },
        { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 20 }).map(rawSafe) },
        { weight: 1, arbitrary: fc.tuple(fc.constantFrom('x', 'test.echo', '%2e', '../', 'é'), fc.integer({ min: 100, max: 6000 })).map(([unit, n]) => rawSafe(unit.repeat(Math.ceil(n / unit.length)))) },
      );

      /** JSON text with the keys written as given (so `__proto__` is a key of the text, not the prototype of an object). */
      const jsonText = (entries: Array<[string, unknown]>): string => `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v) ?? 'null'}`).join(',')}}`;
      const jsonValue = fc.oneof(value, fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.constant([1]), fc.constant({ echo: 'x' }), fc.constant({ polluted: 1 }));
      const jsonObject = fc.array(fc.tuple(fc.constantFrom(...PARAM_NAMES), jsonValue), { maxLength: 6 }).map(jsonText);
      const jsonFor = (name: string): fc.Arbitrary<string> =>
        fc.tuple(paramsFor(name), fc.array(fc.tuple(fc.constantFrom(...PARAM_NAMES), jsonValue), { maxLength: 1 }), fc.boolean()).map(([list, extra, numbers]) =>
          jsonText([...list.map(([k, v]): [string, unknown] => [k, numbers && /^[0-9]+$/.test(v) ? Number(v) : v]), ...extra]),
        );
      const nested = fc.tuple(fc.constantFrom('array', 'object', 'unclosed'), fc.integer({ min: 100, max: 12_000 })).map(([kind, depth]) =>
        kind === 'array' ? '['.repeat(depth) + ']'.repeat(depth) : kind === 'object' ? `${'{"echo":'.repeat(depth)}1${'}'.repeat(depth)}` : '['.repeat(depth),
      );
      const bodyText = (name: string): fc.Arbitrary<string> => fc.oneof(
        { weight: 3, arbitrary: fc.tuple(paramsFor(name), fc.boolean()).map(([list, token]) => (token ? `_csrf=${encode(csrfToken)}&` : '') + queryOf(list)) },
        { weight: 2, arbitrary: jsonFor(name) },
        { weight: 1, arbitrary: jsonObject },
        { weight: 2, arbitrary: nested },
        { weight: 1, arbitrary: fc.constantFrom('{', 'null', '[]', '"echo"', '1', '{"echo":"x"}{"echo":"y"}', '\uFEFF{"echo":"x"}', '{"echo":"x",}') },
        { weight: 1, arbitrary: fc.integer({ min: 4000, max: 20_000 }).map((n) => `{"echo":"${'w'.repeat(n)}"}`) },
        { weight: 1, arbitrary: fc.integer({ min: 8000, max: 20_000 }).map((n) => `echo=${'w'.repeat(n)}`) },
      );
      const CONTENT_TYPES = [
        'application/json', 'application/json; charset=utf-8', 'application/json; charset=utf-16', 'application/json; charset=latin1', 'application/vnd.api+json', 'application/json, text/plain',
        FORM, `${FORM}; charset=utf-8`, `${FORM}; charset=latin1`, `${FORM}; charset=nope`, 'text/plain', 'text/html', 'application/xml', 'multipart/form-data; boundary=x', '',
      ];
      const body = (name: string) =>
        fc.record({
          contentType: fc.option(fc.constantFrom(...CONTENT_TYPES), { nil: undefined, freq: 8 }),
          encoding: fc.option(fc.constantFrom('gzip', 'deflate', 'br', 'identity', 'x-nope'), { nil: undefined, freq: 8 }),
          text: fc.oneof({ weight: 6, arbitrary: bodyText(name).map((text) => Buffer.from(text, 'utf8')) }, { weight: 1, arbitrary: fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes)) }),
        });

      it(`${RUNS} hostile requests: never a 5xx or a secret, and only listed methods answer 200`, async () => {
        const request = methodName.chain((name) =>
          fc.record({
            method: fc.oneof({ weight: 5, arbitrary: fc.constant('GET') }, { weight: 5, arbitrary: fc.constant('POST') }, { weight: 1, arbitrary: fc.constantFrom('HEAD', 'PUT', 'DELETE', 'PATCH', 'OPTIONS') }),
            name: fc.constant(name),
            query: fc.option(paramsFor(name), { nil: undefined, freq: 6 }),
            body: body(name),
            cookie: fc.oneof({ weight: 6, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
            fetchSite: fc.option(fc.constantFrom('same-origin', 'same-origin', 'cross-site', 'none', 'same-site'), { nil: undefined, freq: 4 }),
            csrfHeader: fc.boolean(),
          }),
        );
        let runs = 0;
        const statuses: Record<number, number> = {};
        await fc.assert(
          fc.asyncProperty(request, async (input) => {
            runs += 1;
            const headers: Array<[string, string]> = [];
            if (input.cookie) headers.push(['Cookie', visitor.cookie]);
            if (input.fetchSite) headers.push(['Sec-Fetch-Site', input.fetchSite]);
            if (input.csrfHeader) headers.push(['X-CSRF-Token', csrfToken]);
            const sendsBody = input.method !== 'GET' && input.method !== 'HEAD';
            if (sendsBody && input.body.contentType) headers.push(['Content-Type', input.body.contentType]);
            if (sendsBody && input.body.encoding) headers.push(['Content-Encoding', input.body.encoding]);
            const query = input.query ? queryOf(input.query) : '';
            const target = `/api/ipernity/${input.name}${query ? `?${query}` : ''}`;
            const answer = await rawRequest(server.port, { method: input.method, target, headers, body: sendsBody ? input.body.text : undefined });
            statuses[answer.status] = (statuses[answer.status] ?? 0) + 1;
            const problem = problemWith(answer);
            if (problem) throw new Error(`${problem}: ${answer.head.split('\r\n')[0] ?? ''} ${answer.body.slice(0, 300)}`);
            if (answer.status === 200) {
              const method = decoded(input.name);
              if (!method || !METHODS.includes(method)) throw new Error(`${target.slice(0, 200)} answered 200: only the listed methods are forwarded`);
              // a GET that names a reserved or repeated parameter is refused, never forwarded
              const names = (input.method === 'GET' || input.method === 'HEAD') && input.query ? input.query.map(([k]) => k) : [];
              const reserved = names.find((k) => ['api_key', 'api_sig', 'auth_token', 'frob', 'format'].includes(k) || (k !== '_csrf' && names.indexOf(k) !== names.lastIndexOf(k)));
              if (reserved !== undefined) throw new Error(`${target.slice(0, 200)} answered 200 with ${reserved} given`);
            }
          }),
          { numRuns: RUNS, interruptAfterTimeLimit: TIME_LIMIT_MS },
        );
        figures['gateway hostile inputs tried'] = runs;
        figures['gateway hostile inputs, answers by status'] = Object.entries(statuses).map(([status, n]) => `${status} ${n}`).join('; ');
        expect(runs).toBeGreaterThan(100);
        // some came through to ipernity, so the forwarding was tried too
        expect(statuses[200]).toBeGreaterThan(runs / 50);
        expect(server.child.exitCode).toBeNull();
        expect((await exchange(server.origin, '/healthz')).status).toBe(200);
        expect(wrongSearch(visitor, await call(server.origin, visitor, 'doc.search', SEARCH(visitor)))).toBeUndefined();
      });

      it('names that reach for another method, reserved and repeated parameters, prototype keys, huge and deep bodies, wrong types: each its documented JSON error', async () => {
        const post = (body: string, type = 'application/json'): Parameters<typeof exchange>[2] => ({ method: 'POST', headers: { cookie: visitor.cookie, ...SAME_ORIGIN, 'content-type': type }, body });
        const get = { headers: { cookie: visitor.cookie } };
        const cases: Array<[string, string, Parameters<typeof exchange>[2], number, string]> = [
          ['..%2F to auth.getToken', '/api/ipernity/..%2Fauth.getToken', get, 404, 'METHOD_NOT_ALLOWED_HERE'],
          ['%2e%2e%2F to auth.getToken', '/api/ipernity/%2e%2e%2Fauth.getToken', get, 404, 'METHOD_NOT_ALLOWED_HERE'],
          ['auth.getToken', '/api/ipernity/auth.getToken?frob=1', get, 404, 'METHOD_NOT_ALLOWED_HERE'],
          ['upper case', '/api/ipernity/TEST.ECHO?echo=x', get, 404, 'METHOD_NOT_ALLOWED_HERE'],
          ['unicode', `/api/ipernity/${encodeURIComponent('tést.echo')}?echo=x`, get, 404, 'METHOD_NOT_ALLOWED_HERE'],
          ['a long name', `/api/ipernity/${'x'.repeat(3000)}`, get, 404, 'METHOD_NOT_ALLOWED_HERE'],
          ['__proto__ as the name', '/api/ipernity/__proto__', get, 404, 'METHOD_NOT_ALLOWED_HERE'],
          ['constructor as the name', '/api/ipernity/constructor', get, 404, 'METHOD_NOT_ALLOWED_HERE'],
          ...['api_key', 'api_sig', 'auth_token', 'frob', 'format'].flatMap((name): Array<[string, string, Parameters<typeof exchange>[2], number, string]> => [
            [`${name} in the query`, `/api/ipernity/test.echo?echo=x&${name}=y`, get, 400, 'API_PARAMETER_INVALID'],
            [`${name} in a form`, '/api/ipernity/test.echo', post(`echo=x&${name}=y`, FORM), 400, 'API_PARAMETER_INVALID'],
            [`${name} in JSON`, '/api/ipernity/test.echo', post(`{"echo":"x","${name}":"y"}`), 400, 'API_PARAMETER_INVALID'],
          ]),
          ['a repeated parameter', '/api/ipernity/test.echo?echo=a&echo=b', get, 400, 'API_PARAMETER_INVALID'],
          ['a parameter repeated in a form', '/api/ipernity/test.echo', post('echo=a&echo=b', FORM), 400, 'API_PARAMETER_INVALID'],
          ['__proto__ in the query', '/api/ipernity/test.echo?echo=x&__proto__=y', get, 400, 'API_PARAMETER_INVALID'],
          ['constructor in the query', '/api/ipernity/test.echo?echo=x&constructor=y', get, 400, 'API_PARAMETER_INVALID'],
          ['__proto__[echo] in the query', '/api/ipernity/test.echo?__proto__%5Becho%5D=y', get, 400, 'API_PARAMETER_INVALID'],
          ['__proto__ in JSON', '/api/ipernity/test.echo', post('{"__proto__":{"echo":"polluted"}}'), 400, 'API_PARAMETER_INVALID'],
          ['constructor.prototype in JSON', '/api/ipernity/test.echo', post('{"constructor":{"prototype":{"echo":"polluted"}}}'), 400, 'API_PARAMETER_INVALID'],
          ['prototype in a form', '/api/ipernity/test.echo', post('prototype=x&echo=y', FORM), 400, 'API_PARAMETER_INVALID'],
          ['a 9 KB form', '/api/ipernity/test.echo', post(`echo=${'x'.repeat(9000)}`, FORM), 413, 'PAYLOAD_TOO_LARGE'],
          ['a 9 KB JSON body', '/api/ipernity/test.echo', post(`{"echo":"${'x'.repeat(9000)}"}`), 413, 'PAYLOAD_TOO_LARGE'],
          ['a value over 4096 characters within 8 KB', '/api/ipernity/test.echo', post(`{"echo":"${'x'.repeat(5000)}"}`), 400, 'API_PARAMETER_INVALID'],
          ['JSON 4 000 levels deep, within 8 KB', '/api/ipernity/test.echo', post('['.repeat(4000) + ']'.repeat(4000)), 400, 'API_PARAMETER_INVALID'],
          ['JSON 900 objects deep, within 8 KB', '/api/ipernity/test.echo', post(`${'{"echo":'.repeat(900)}1${'}'.repeat(900)}`), 400, 'API_PARAMETER_INVALID'],
          ['8 100 unclosed brackets, within 8 KB', '/api/ipernity/test.echo', post('['.repeat(8100)), 400, 'BAD_REQUEST'],
          ['JSON 10 000 levels deep, beyond 8 KB', '/api/ipernity/test.echo', post('['.repeat(10_000) + ']'.repeat(10_000)), 413, 'PAYLOAD_TOO_LARGE'],
          ['JSON 100 000 levels deep', '/api/ipernity/test.echo', post('['.repeat(100_000) + ']'.repeat(100_000)), 413, 'PAYLOAD_TOO_LARGE'],
          ['JSON that is not an object', '/api/ipernity/test.echo', post('"echo"'), 400, 'BAD_REQUEST'],
          ['JSON in UTF-16', '/api/ipernity/test.echo', post('{"echo":"x"}', 'application/json; charset=utf-16'), 400, 'BAD_REQUEST'],
          ['text/plain', '/api/ipernity/test.echo', post('echo=x', 'text/plain'), 400, 'API_PARAMETER_INVALID'],
          ['multipart', '/api/ipernity/test.echo', post('--x--', 'multipart/form-data; boundary=x'), 400, 'API_PARAMETER_INVALID'],
          ['a POST with a query', '/api/ipernity/test.echo?echo=x', post('echo=x', FORM), 400, 'API_PARAMETER_INVALID'],
          ['PUT', '/api/ipernity/test.echo', { ...post('{}'), method: 'PUT' }, 405, 'METHOD_NOT_ALLOWED'],
          ['GET of a method that needs a POST', '/api/ipernity/doc.set?doc_id=1&title=x', get, 405, 'METHOD_NOT_ALLOWED'],
        ];
        const wrong: string[] = [];
        for (const [label, target, options, status, code] of cases) {
          const answer = await exchange(server.origin, target, options);
          const leak = leakIn(shown(answer), simulator);
          if (answer.status !== status || jsonErrorCodeOf(answer.text) !== code || leak) wrong.push(`${label}: ${answer.status} ${jsonErrorCodeOf(answer.text)}${leak ? ` leaks ${leak}` : ''}`);
        }
        expect(wrong).toEqual([]);
        // nothing above changed what the next call sees: no parameter came from a prototype
        expect((await exchange(server.origin, '/api/ipernity/test.echo', get)).status).toBe(400);
        expect(json((await exchange(server.origin, '/api/ipernity/test.echo?echo=clean', get)).text)?.echo).toBe('clean');
        expect(wrongSearch(visitor, await call(server.origin, visitor, 'doc.search', SEARCH(visitor)))).toBeUndefined();
      });
    });

    describe('at /connect/auth', () => {
      const ITEMS = ['doc', 'blog', 'post', 'network', 'profile', 'user', 'photos', 'DOC', '', '__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty'];
      const LEVELS = ['read', 'write', 'delete', 'none', 'admin', 'READ', '', '__proto__', 'read:write'];
      const METHOD_NAMES = ['doc.getList', 'doc.get', 'upload.file', 'account.getQuota', 'auth.getToken', 'auth.checkToken', 'doc.teleport', 'DOC.GETLIST', '__proto__', 'constructor', 'toString', '', ' ', '../doc.get'];
      const permissionList = fc.array(fc.tuple(fc.constantFrom(...ITEMS), fc.constantFrom(...LEVELS), fc.constantFrom(':', ' : ', '=', '')), { maxLength: 5 }).chain((entries) =>
        fc.constantFrom(',', ' , ', ',,', ';').map((sep) => entries.map(([item, level, colon]) => `${item}${colon}${level}`).join(sep)),
      );
      const methodList = fc.array(fc.constantFrom(...METHOD_NAMES), { maxLength: 5 }).chain((names) => fc.constantFrom(',', ', ', ',,', ' ').map((sep) => names.join(sep)));
      const anyText = fc.oneof(
        fc.string({ maxLength: 30 }),
        fc.string({ unit: 'binary', maxLength: 20 }),
        fc.constantFrom('%', '%FF', '%E0%A4%A', '%00', '__proto__', '[]', 'doc:read%00', 'doc%3Aread'),
        fc.integer({ min: 500, max: 1500 }).map((n) => 'doc:read,'.repeat(Math.ceil(n / 9))),
      );
      const grantable = fc.array(fc.tuple(fc.constantFrom('doc', 'blog', 'post', 'network', 'profile'), fc.constantFrom('read', 'write', 'delete')), { minLength: 1, maxLength: 3 }).map((list) => list.map(([item, level]) => `${item}:${level}`).join(','));
      const knownMethods = fc.array(fc.constantFrom('doc.getList', 'doc.get', 'doc.search', 'test.echo', 'upload.file', 'account.getQuota', 'doc.set'), { minLength: 1, maxLength: 3 }).map((list) => list.join(','));
      const queryValue = fc.oneof({ weight: 3, arbitrary: grantable }, { weight: 3, arbitrary: knownMethods }, { weight: 2, arbitrary: permissionList }, { weight: 2, arbitrary: methodList }, { weight: 2, arbitrary: anyText });
      const queryName = fc.oneof({ weight: 6, arbitrary: fc.constantFrom('require', 'methods') }, { weight: 2, arbitrary: fc.constantFrom('require[]', 'methods[]', 'require[a]', 'Require', '__proto__', 'constructor', 'return_to', 'rd') }, { weight: 1, arbitrary: fc.string({ maxLength: 8 }) });
      const queryPairs = fc.array(fc.tuple(queryName, queryValue, fc.boolean()), { maxLength: 4 });

      /** Header values: anything but CR, LF and NUL, which would change the framing rather than the content. */
      const headerValue = anyText.map((text) => [...text].filter((ch) => !/[\r\n\0]/.test(ch)).map((ch) => (ch.charCodeAt(0) > 0xff ? '?' : ch)).join(''));
      const otherHeaders = fc.array(
        fc.oneof(
          fc.tuple(fc.constantFrom('X-Forwarded-For', 'X-Forwarded-Proto', 'X-Forwarded-Host', 'X-Forwarded-Uri', 'X-Forwarded-Method', 'X-Original-URI', 'X-Original-Method', 'Forwarded', 'X-Real-IP'), headerValue),
          fc.tuple(fc.constantFrom('X-Ipernity-User-Id', 'X-Ipernity-Username', 'X-Ipernity-Permissions'), fc.constantFrom('1', '1234', 'admin', 'doc=delete')),
          fc.tuple(fc.constantFrom('Accept', 'Authorization', 'Origin', 'Referer', 'Sec-Fetch-Site', 'Sec-Fetch-Mode', 'Accept-Language', 'User-Agent', 'If-None-Match', 'Range', '__proto__', 'constructor'), headerValue),
        ),
        { maxLength: 5 },
      );

      type CookieKind = 'valid' | 'invalid' | 'none';
      function cookies(): fc.Arbitrary<{ kind: CookieKind; header?: string }> {
        const session = visitor.jar.get(SESSION_COOKIE) as string;
        const flipped = session.slice(0, 8) + (session[8] === 'A' ? 'B' : 'A') + session.slice(9);
        const junk = fc.array(fc.tuple(fc.constantFrom('__proto__', 'constructor', 'toString', 'a', 'ipernity-connect.csrf', 'ipernity-connect.attempts'), headerValue).map(([k, v]) => `${k}=${v}`), { maxLength: 3 });
        const valid = fc.tuple(fc.constantFrom(session, decodeURIComponent(session)), junk).map(([value, more]) => ({ kind: 'valid' as const, header: [`${SESSION_COOKIE}=${value}`, ...more].join('; ') }));
        const invalid = fc
          .tuple(fc.constantFrom(session.slice(0, -3), flipped, `s:${session}`, session.replace(/^s%3A/, ''), `s%3Anot-a-session.${session.split('.')[1] ?? ''}`, '%', ''), junk)
          .map(([value, more]) => ({ kind: 'invalid' as const, header: [...more, `${SESSION_COOKIE}=${value}`].join('; ') }));
        const none = fc.option(junk.map((more) => more.join('; ')), { nil: undefined }).map((header) => ({ kind: 'none' as const, header: header || undefined }));
        return fc.oneof({ weight: 4, arbitrary: valid }, { weight: 2, arbitrary: invalid }, { weight: 1, arbitrary: none });
      }

      it(`${RUNS} hostile sub-requests: only 200, 400, 401 or 403, with no body, cookie or redirect, and 200 only for the connected browser`, async () => {
        const request = fc.record({ method: fc.constantFrom('GET', 'GET', 'HEAD'), query: queryPairs, cookie: cookies(), headers: otherHeaders });
        let runs = 0;
        const statuses: Record<number, number> = {};
        await fc.assert(
          fc.asyncProperty(request, async (input) => {
            runs += 1;
            const query = input.query.map(([k, v, raw]) => (raw ? `${rawSafe(k)}=${rawSafe(v)}` : `${encode(k)}=${encode(v)}`)).join('&');
            const headers: Array<[string, string]> = [...input.headers];
            if (input.cookie.header !== undefined) headers.push(['Cookie', input.cookie.header]);
            const target = `/connect/auth${query ? `?${query}` : ''}`;
            // longer addresses are the URL-length limit's (see the test below it)
            fc.pre(target.length <= 4096);
            const answer = await rawRequest(server.port, { method: input.method, target, headers });
            statuses[answer.status] = (statuses[answer.status] ?? 0) + 1;
            const problem = problemWith(answer);
            const say = (what: string): Error => new Error(`${what}: ${answer.head.split('\r\n')[0] ?? ''} for ${target.slice(0, 200)} (cookie ${input.cookie.kind}) ${answer.body.slice(0, 200)}`);
            if (problem) throw say(problem);
            if (![200, 400, 401, 403].includes(answer.status)) throw say('not 200, 400, 401 or 403');
            if (answer.body !== '') throw say('a body');
            if (headerOf(answer, 'set-cookie') !== undefined) throw say('a cookie');
            if (headerOf(answer, 'location') !== undefined) throw say('a redirect');
            // (an answer without X-Request-Id is Node's own, to a request its parser refused)
            if (headerOf(answer, 'x-request-id') !== undefined && headerOf(answer, 'cache-control') !== 'no-store') throw say('no Cache-Control: no-store');
            if (answer.status === 200 && input.cookie.kind !== 'valid') throw say('200 without a connected session');
            if (answer.status === 403 && input.cookie.kind !== 'valid') throw say('403 without a connected session');
            if (answer.status === 200 && headerOf(answer, 'x-ipernity-user-id') !== visitor.userId) throw say(`200 for user ${headerOf(answer, 'x-ipernity-user-id')}`);
          }),
          { numRuns: RUNS, interruptAfterTimeLimit: TIME_LIMIT_MS },
        );
        figures['forward-auth hostile inputs tried'] = runs;
        figures['forward-auth hostile inputs, answers by status'] = Object.entries(statuses).map(([status, n]) => `${status} ${n}`).join('; ');
        expect(runs).toBeGreaterThan(100);
        // every answer was met, so each branch was tried
        for (const status of [200, 400, 401, 403]) expect(statuses[status]).toBeGreaterThan(runs / 40);
        expect(server.child.exitCode).toBeNull();
        const again = await exchange(server.origin, '/connect/auth', { headers: { cookie: visitor.cookie } });
        expect([again.status, again.headers['x-ipernity-user-id'], again.text]).toEqual([200, visitor.userId, '']);
      });

      it('answers bare even on a Host other than PUBLIC_URL\'s (a proxy that does not pass the public Host on: "never a redirect")', async () => {
        for (const host of ['app:3000', 'localhost', `localhost:${server.port}`]) {
          const answer = await rawRequest(server.port, { method: 'GET', target: '/connect/auth', headers: [['Host', host], ['Cookie', visitor.cookie]] });
          expect({ host, status: answer.status, location: headerOf(answer, 'location'), body: answer.body }).toEqual({ host, status: 200, location: undefined, body: '' });
        }
      });

      it('answers bare even to an address over the URL-length limit (a `require` over 4096 characters)', async () => {
        const answer = await rawRequest(server.port, { method: 'GET', target: `/connect/auth?require=${'doc:read,'.repeat(500)}`, headers: [['Cookie', visitor.cookie]] });
        expect([400, 401, 403, 414]).toContain(answer.status);
        expect(answer.body).toBe('');
      });
    });

    it('then stops cleanly, with no token or secret in its log and no error line', async () => {
      expect(await server.stop()).toBe(0);
      expectLogClean(server);
      expect(logTrouble(server.logFile)).toEqual([]);
    });
  });

  describe(`${CALLS} gateway calls from ${VISITORS} concurrent connected visitors`, () => {
    let redis: Redis;

    beforeAll(async () => {
      redis = await startRedis(dir);
    });
    afterAll(async () => {
      if (redis) await stopRedis(redis);
    });

    /**
     * Call i is visitor i % 50's, one of five kinds; three send the same
     * parameters for every visitor (their answer depends on the token only),
     * so a cache or a token mixed up between visitors shows.
     */
    async function callMany(origin: string, visitors: Visitor[]): Promise<{ wrong: string[]; seconds: number }> {
      const started = performance.now();
      const wrong = await inParallel(CALLS, VISITORS, async (i) => {
        const visitor = visitors[i % VISITORS] as Visitor;
        const kind = Math.floor(i / VISITORS) % 5;
        const echo = `visitor-${visitor.userId}-call-${i}`;
        let answer: Answer;
        let problem: string | undefined;
        if (kind === 0 || kind === 4) {
          answer = await call(origin, visitor, 'test.echo', { echo }, kind === 0 ? 'GET' : 'POST');
          if (json(answer.text)?.echo !== echo) problem = 'not its echo';
        } else if (kind === 1) {
          answer = await call(origin, visitor, 'album.getList', {});
          const albums = json(answer.text)?.albums?.album;
          if (!albums?.length || albums.some((album) => album.owner_id !== visitor.userId)) problem = 'not its albums';
        } else if (kind === 2) {
          answer = await call(origin, visitor, 'doc.getList', { user_id: visitor.userId });
          const docs = json(answer.text)?.docs?.doc;
          if (!docs?.length || docs.some((doc) => doc.owner_id !== visitor.userId) || !docs.some((doc) => doc.is_public === '0')) problem = 'not its photos, private ones included';
        } else {
          // no user named: ipernity's search over every photo the token may see, whose private ones (the "Family picnic") are the visitor's own
          answer = await call(origin, visitor, 'doc.search', { text: 'family' });
          const hidden = json(answer.text)?.docs?.doc?.filter((doc) => doc.is_public === '0');
          if (!hidden?.length || hidden.some((doc) => doc.owner_id !== visitor.userId)) problem = 'not its search';
        }
        if (answer.status !== 200) problem = `answered ${answer.status}`;
        problem ??= leakIn(shown(answer), simulator) && 'a secret or token in the answer';
        return problem && `call ${i} (user ${visitor.userId}, kind ${kind}): ${problem}: ${answer.text.slice(0, 160)}`;
      });
      return { wrong: wrong.filter((line): line is string => line !== undefined), seconds: (performance.now() - started) / 1000 };
    }

    describe.each([
      ['on Redis, no cache', 'redis', '0', 8_200_000],
      ['on Redis, with API_CACHE_SECONDS (the cache in Redis)', 'redis', '60', 8_300_000],
      ['on SQLite, with API_CACHE_SECONDS (the cache in memory)', 'sqlite', '60', 8_400_000],
    ] as const)('%s', (label, store, cacheSeconds, firstUser) => {
      let server: ServerProcess;

      beforeAll(async () => {
        server = await startServer({
          simulatorUrl: simulator.url,
          store,
          ...(store === 'redis' ? { redisUrl: redis.url } : {}),
          logFile: path.join(dir, `load-${store}-${cacheSeconds}.log`),
          env: { ...GATEWAY_ENV, API_CACHE_SECONDS: cacheSeconds },
        });
      });
      afterAll(async () => {
        await server?.stop();
      });

      it(`every answer is right and the visitor's own${cacheSeconds !== '0' ? ', cached answers included' : ''}, with no 5xx`, async () => {
        const visitors = await inParallel(VISITORS, VISITORS, (i) => connect(server.origin, simulator, firstUser + i));
        const { wrong, seconds } = await callMany(server.origin, visitors);
        expect(wrong).toEqual([]);
        figures[`gateway calls answered right, ${label}`] = CALLS - wrong.length;
        figures[`gateway calls per second, ${label} (suite client)`] = Number((CALLS / seconds).toFixed(0));
        if (cacheSeconds !== '0') {
          // the cache answered a good share, so the run tested it
          const cached = readLog(server.logFile).filter((entry) => entry.event === 'gateway_call' && entry.outcome === 'cached').length;
          figures[`gateway answers from the cache, ${label}`] = cached;
          expect(cached).toBeGreaterThan(CALLS / 5);
          // a second round, from the cache for the most part, is still every visitor's own
          expect((await callMany(server.origin, visitors)).wrong).toEqual([]);
        }
      });

      if (cacheSeconds !== '0') {
        it('a browser that connects again as another ipernity user gets that user\'s answers, not the cached ones', async () => {
          const browser = await connect(server.origin, simulator, firstUser + 900);
          expect(json((await call(server.origin, browser, 'album.getList', {})).text)?.albums?.album?.[0]?.owner_id).toBe(browser.userId);
          await walkFlow({ app: () => server.origin, simulator: simulator.url }, firstUser + 901, browser.jar);
          browser.cookie = cookieHeader(browser.jar);
          const after = await call(server.origin, browser, 'album.getList', {});
          expect(json(after.text)?.albums?.album?.[0]?.owner_id).toBe(String(firstUser + 901));
        });

        it('a visitor who disconnects gets 401 NOT_CONNECTED, not the answers kept for their session', async () => {
          const browser = await connect(server.origin, simulator, firstUser + 910);
          expect((await call(server.origin, browser, 'album.getList', {})).status).toBe(200);
          const disconnected = await exchange(server.origin, '/disconnect', { method: 'POST', headers: { cookie: browser.cookie, ...SAME_ORIGIN, 'content-type': FORM }, body: '' });
          expect(disconnected.status).toBe(200);
          keepCookies(browser.jar, disconnected.headers['set-cookie']);
          browser.cookie = cookieHeader(browser.jar);
          expect(json((await exchange(server.origin, '/connection', { headers: { cookie: browser.cookie } })).text)?.connected).toBe(false);
          // whoever uses this browser next must not read the disconnected account's albums
          const after = await call(server.origin, browser, 'album.getList', {});
          expect([after.status, jsonErrorCodeOf(after.text)]).toEqual([401, 'NOT_CONNECTED']);
        });

        it('a visitor whose token ipernity revoked gets 401 once the connection is cleared, not the answers kept for their session', async () => {
          const browser = await connect(server.origin, simulator, firstUser + 920);
          expect((await call(server.origin, browser, 'album.getList', {})).status).toBe(200);
          simulator.state.revokeUser(browser.userId);
          const uncached = await call(server.origin, browser, 'test.echo', { echo: 'after-revocation' });
          expect([uncached.status, jsonErrorCodeOf(uncached.text)]).toEqual([401, 'CONNECTION_REVOKED']);
          const after = await call(server.origin, browser, 'album.getList', {});
          expect([after.status, jsonErrorCodeOf(after.text)]).toEqual([401, 'NOT_CONNECTED']);
        });
      }

      it('then stops cleanly, with no token or secret in its log and no error line', async () => {
        expect(await server.stop()).toBe(0);
        expectLogClean(server);
        expect(logTrouble(server.logFile)).toEqual([]);
      });
    });
  });
});
