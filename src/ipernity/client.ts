import http from 'node:http';
import https from 'node:https';
import { findMethod, isPaginated, methodSpec, type MethodName, type MethodSpec } from './catalogue';
import {
  DEFAULT_RETRY_AFTER_SECONDS,
  IpernityApiError,
  IpernityFileTooLargeError,
  IpernityOAuthError,
  IpernityPermissionError,
  IpernityPostRequiredError,
  IpernityQuotaError,
  IpernityRateLimitError,
  NotPaginatedError,
  ParameterMissingError,
  TokenRequiredError,
  UpstreamBadResponseError,
  UpstreamHttpError,
  UpstreamNetworkError,
  UpstreamTimeoutError,
  UploadSourceError,
  type TicketResult,
} from './errors';
import { isFrob, type ValidatedFrob } from './frob';
import { decodeCredential, OAuthSigner, parseTokenAnswer, type OAuthCredential, type OAuthEndpoints, type OAuthSignatureMethod } from './oauth';
import { parseGrantedPermissions, type GrantedPermissions } from './permissions';
import { sign, type Params } from './signature';
import {
  DEFAULT_UPLOAD_IDLE_TIMEOUT_MS,
  IdleTimeoutError,
  multipartFrame,
  pollTickets,
  postMultipart,
  readUploadAnswer,
  type UploadAnswer,
  type UploadFile,
  type UploadOptions,
  type UploadParams,
  type WaitForTicketsOptions,
} from './upload';

export { DEFAULT_UPLOAD_IDLE_TIMEOUT_MS, MAX_TICKETS_PER_CHECK, type UploadAnswer, type UploadFile, type UploadOptions, type UploadParams, type WaitForTicketsOptions } from './upload';

/** The ipernity account behind a token. */
export interface IpernityUser {
  userId: string;
  username: string;
  realname: string;
  lang?: string;
  isPro?: boolean;
}

/** What `auth.getToken` and `auth.checkToken` give. */
export interface TokenGrant {
  token: string;
  permissions: GrantedPermissions;
  user: IpernityUser;
}

/** How a call ended, for metrics; `source_failed` is an upload whose own file stream failed (not ipernity's doing). */
export type CallOutcome = 'ok' | 'api_error' | 'timeout' | 'network' | 'http_status' | 'bad_response' | 'source_failed';

export interface IpernityClientOptions {
  /** Base of the API, e.g. `https://api.ipernity.com/api`: calls go to `<apiUrl>/<method>/json`. */
  apiUrl: string;
  apiKey: string;
  apiSecret: string;
  /** Upper bound for one call, from sending to the last byte of the answer. */
  timeoutMs: number;
  /** Keep-alive connections kept open to the API host. */
  connections?: number;
  /** An upload fails with `UpstreamTimeoutError` when no byte moved either way for this long (default 30 s); `timeoutMs` does not bound uploads. */
  uploadIdleTimeoutMs?: number;
  /** Told about every call (for metrics); never given parameters or bodies. */
  onCall?: (method: string, durationMs: number, outcome: CallOutcome) => void;
  /**
   * OAuth mode: every call is signed OAuth 1.0a's way (an `Authorization`
   * header, no `api_sig`, no `auth_token`), and `token` arguments are access
   * tokens from `encodeCredential`. Absent: ipernity's own `api_sig` signatures.
   */
  oauth?: { endpoints: Pick<OAuthEndpoints, 'requestUrl' | 'accessUrl'>; signatureMethod?: OAuthSignatureMethod };
}

/** Default upper bound for one API call. */
export const DEFAULT_TIMEOUT_MS = 5000;
/** Keep-alive connections per API host: above the concurrent flows one instance serves, so none waits for a socket. */
export const DEFAULT_CONNECTIONS = 128;
const MAX_BODY_BYTES = 1024 * 1024;
/** Longest a kept-alive socket waits idle for its next call, when the server announces no shorter timeout. */
const IDLE_SOCKET_MS = 30_000;

type Json = Record<string, unknown>;

/** How a call treats ipernity's method list. */
export interface CallOptions {
  /**
   * Reach a method the list lacks (it may lag the live API, e.g. `user.pref.get`):
   * nothing is checked before sending, the call goes out as given.
   */
  unlisted?: boolean;
}

/** A call's form and headers, signed the mode's way. */
interface Signed {
  form: Record<string, string>;
  headers: Record<string, string>;
}

/** What one POST brought back. */
interface RawAnswer {
  status: number;
  text: string;
  /** The `Retry-After` header, when there is one. */
  retryAfter?: string;
}

/** A reused keep-alive socket was already closed by the server: the request never left. */
class StaleSocketError extends Error {
  constructor(readonly original: Error) {
    super('stale keep-alive socket', { cause: original });
  }
}

/** The call's time ran out; the request was destroyed. */
class DeadlineError extends Error {
  override readonly name = 'DeadlineError';
  constructor() {
    super('deadline passed');
  }
}

function isObject(value: unknown): value is Json {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function stringField(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return undefined;
}

/** Seconds to wait, from a `Retry-After` header (seconds or an HTTP date); the default when absent or unreadable. */
export function retryAfterSeconds(header: string | undefined, now = Date.now()): number {
  const value = header?.trim();
  if (!value) return DEFAULT_RETRY_AFTER_SECONDS;
  if (/^\d{1,9}$/.test(value)) return Number(value);
  const at = Date.parse(value);
  return Number.isNaN(at) ? DEFAULT_RETRY_AFTER_SECONDS : Math.max(0, Math.ceil((at - now) / 1000));
}

/** The typed error for ipernity's `status: error` answer. */
function apiError(method: string, code: number, message: string, spec: MethodSpec | undefined, retryAfter: string | undefined): IpernityApiError {
  switch (code) {
    case 110:
      return new IpernityPermissionError(method, message, spec?.permission ?? undefined);
    case 112:
      return new IpernityQuotaError(method, message);
    case 113:
      return new IpernityRateLimitError(method, message, retryAfterSeconds(retryAfter));
    case 120:
      return new IpernityPostRequiredError(method, message);
    case 130:
    case 131:
    case 132:
    case 133:
    case 134:
    case 135:
      return new IpernityOAuthError(method, code, message);
    case 2:
      return method === 'upload.file' || method === 'upload.replace' ? new IpernityFileTooLargeError(method, message) : new IpernityApiError(method, code, message);
    default:
      return new IpernityApiError(method, code, message);
  }
}

/**
 * True for a method that changes something at ipernity: POST-only, or
 * needing more than read. Unknown (unlisted) methods count as writes.
 */
function writes(spec: MethodSpec | undefined): boolean {
  return spec === undefined || spec.postOnly || (spec.permission !== null && spec.permission.level !== 'read');
}

/**
 * Refuses, before anything is sent, a call the list says cannot succeed: no
 * token, or a required parameter missing. `parts` are sent as parts of their
 * own (an upload's `file`), not as parameters.
 */
function checkCall(method: string, spec: MethodSpec, params: Params, token: string | undefined, parts: readonly string[] = []): void {
  if (spec.token && !token && !params.auth_token) throw new TokenRequiredError(method);
  for (const name of spec.required) {
    // the token is the connection's, however the mode sends it (auth_token, or OAuth's header)
    if (name === 'auth_token' && token) continue;
    if (!parts.includes(name) && (params[name] === undefined || params[name] === '')) throw new ParameterMissingError(method, name);
  }
}

/** OAuth's problem names (the OAuth Problem Reporting extension) as ipernity's codes, for an endpoint that answers them. */
const OAUTH_PROBLEMS: Readonly<Record<string, number>> = {
  version_rejected: 130,
  parameter_absent: 131,
  timestamp_refused: 132,
  nonce_used: 133,
  signature_method_rejected: 135,
  signature_invalid: 105,
  consumer_key_unknown: 101,
  token_rejected: 107,
  token_used: 107,
  token_expired: 107,
  token_revoked: 107,
};

/** The metrics outcome of an error `#answer` threw. */
function outcomeOf(error: unknown): CallOutcome {
  if (error instanceof IpernityApiError) return 'api_error';
  if (error instanceof UpstreamHttpError) return 'http_status';
  return 'bad_response';
}

/**
 * The one list in a paginated answer: the object with `page` and `pages`
 * fields (`{"docs":{"page":"1","pages":"3","doc":[…]}}`) and its one
 * array-valued key (a lone object counts as a list of one, no key as empty).
 */
function pageOf(method: string, answer: Json): { items: unknown[]; pages: number } {
  const containers = Object.entries(answer).filter(([key, value]) => key !== 'api' && isObject(value) && 'page' in value && 'pages' in value);
  const container = containers.length === 1 ? (containers[0]?.[1] as Json) : undefined;
  if (!container) throw new UpstreamBadResponseError(method, `${containers.length} objects with page and pages, one expected`);
  const pages = Number(stringField(container.pages));
  if (!Number.isInteger(pages) || pages < 0) throw new UpstreamBadResponseError(method, 'pages is not a whole number');
  const values = Object.values(container);
  const arrays = values.filter((value): value is unknown[] => Array.isArray(value));
  if (arrays.length > 1) throw new UpstreamBadResponseError(method, 'more than one list in the page');
  if (arrays[0]) return { items: arrays[0], pages };
  const objects = values.filter(isObject);
  if (objects.length > 1) throw new UpstreamBadResponseError(method, 'no list in the page, and more than one object');
  return { items: objects, pages };
}

/**
 * Signed calls to the ipernity API over HTTP: POST, form-encoded, JSON
 * answers, one keep-alive pool, a timeout on every call and typed errors.
 * Every call is checked against ipernity's method list first (src/ipernity/methods.tsv).
 */
export class IpernityClient {
  readonly #options: IpernityClientOptions;
  readonly #base: string;
  readonly #agent: http.Agent;
  readonly #oauth: OAuthSigner | undefined;

  constructor(options: IpernityClientOptions) {
    this.#options = options;
    this.#oauth = options.oauth && new OAuthSigner({ consumerKey: options.apiKey, consumerSecret: options.apiSecret, signatureMethod: options.oauth.signatureMethod ?? 'HMAC-SHA1' });
    this.#base = options.apiUrl.replace(/\/+$/, '');
    // One pool for the API host. Node lets an idle socket go a second before the server's
    // `Keep-Alive: timeout=N` hint only when the agent has a timeout of its own: without one the
    // hint is ignored and a reused socket can meet the server closing it.
    // Every socket may stay idle (until that timeout): a pool that closes the sockets above a
    // smaller idle limit opens them again at the next burst, a TCP connection per callback.
    const connections = options.connections ?? DEFAULT_CONNECTIONS;
    const pool = { keepAlive: true, maxSockets: connections, maxFreeSockets: connections, scheduling: 'lifo', timeout: IDLE_SOCKET_MS } as const;
    this.#agent = new URL(this.#base).protocol === 'https:' ? new https.Agent(pool) : new http.Agent(pool);
  }

  /** `auth.getFrob`: a frob for a desktop-style authorization. */
  async getFrob(): Promise<ValidatedFrob> {
    const answer = await this.call('auth.getFrob');
    const frob = isObject(answer.auth) ? stringField(answer.auth.frob) : undefined;
    if (frob === undefined || !isFrob(frob)) {
      throw new UpstreamBadResponseError('auth.getFrob', 'no frob in the answer');
    }
    return frob;
  }

  /** `auth.getToken`: exchanges a frob (single use) for a token, its permissions and its user. */
  async getToken(frob: ValidatedFrob): Promise<TokenGrant> {
    return this.#grant('auth.getToken', await this.call('auth.getToken', { frob }));
  }

  /** `auth.checkToken`: what a token still grants, or an `IpernityApiError` (107 revoked, 108 account closed). */
  async checkToken(token: string): Promise<TokenGrant> {
    return this.#grant('auth.checkToken', await this.call('auth.checkToken', {}, token));
  }

  /**
   * OAuth mode, the flow's first step: a request token for one attempt, its
   * callback (`oauth_callback`) signed with it. Keep the token and its
   * secret for the callback; send the visitor to `buildOAuthAuthorizeUrl`.
   */
  requestToken(callbackUrl: string): Promise<OAuthCredential> {
    return this.#tokenRequest('oauth.request', 'requestUrl', undefined, { oauth_callback: callbackUrl });
  }

  /**
   * OAuth mode, once the visitor is back: the access token for an
   * authorized request token (ipernity has no `oauth_verifier`: the request
   * token, signed with its secret, is the proof). Single use, like a frob.
   * `encodeCredential` makes it the `token` of every later call.
   */
  accessToken(requestToken: OAuthCredential): Promise<OAuthCredential> {
    return this.#tokenRequest('oauth.access', 'accessUrl', requestToken);
  }

  async #tokenRequest(name: string, endpoint: 'requestUrl' | 'accessUrl', token: OAuthCredential | undefined, extra: Record<string, string> = {}): Promise<OAuthCredential> {
    const oauth = this.#options.oauth;
    if (!oauth || !this.#oauth) throw new Error(`${name} needs a client made for OAuth mode`);
    const url = oauth.endpoints[endpoint];
    const started = performance.now();
    const report = (outcome: CallOutcome): void => {
      this.#options.onCall?.(name, performance.now() - started, outcome);
    };
    let raw: RawAnswer;
    try {
      raw = await this.#postOnce(url, '', { authorization: this.#oauth.header({ method: 'POST', url }, token, extra) }, started + this.#options.timeoutMs, false);
    } catch (error) {
      report(error instanceof DeadlineError ? 'timeout' : 'network');
      if (error instanceof DeadlineError) throw new UpstreamTimeoutError(name, this.#options.timeoutMs, { cause: error });
      throw new UpstreamNetworkError(name, { cause: error });
    }
    const answer = parseTokenAnswer(raw.text);
    if (answer && raw.status >= 200 && raw.status <= 299) {
      report('ok');
      return answer;
    }
    // a refusal: ipernity's JSON error (its codes, 130-135 among them) or OAuth's `oauth_problem` form
    const problem = new URLSearchParams(raw.text.trim()).get('oauth_problem') ?? '';
    if (Object.prototype.hasOwnProperty.call(OAUTH_PROBLEMS, problem)) {
      report('api_error');
      throw apiError(name, OAUTH_PROBLEMS[problem] as number, `oauth_problem ${problem}`, undefined, raw.retryAfter);
    }
    // ipernity's JSON error is read for its code whatever the HTTP status it came with
    const json = raw.text.trimStart().startsWith('{');
    return this.#answer(name, undefined, json ? { ...raw, status: 200 } : raw, report, () => {
      throw new UpstreamBadResponseError(name, 'no oauth_token and oauth_token_secret in the answer');
    });
  }

  /**
   * Any API method, signed and sent by POST (every method accepts POST; 44 require it);
   * answers the parsed JSON once `api.status` is `ok`. Refused before anything is sent:
   * a method not in the list (`UnknownMethodError`, unless `{ unlisted: true }`), one
   * that needs a token called without one (`TokenRequiredError`), a required parameter
   * missing or empty (`ParameterMissingError`). `token` becomes `auth_token`.
   */
  call(method: MethodName, params?: Params, token?: string): Promise<Json>;
  call(method: string, params: Params, token: string | undefined, options: CallOptions & { unlisted: true }): Promise<Json>;
  call(method: string, params: Params = {}, token?: string, options: CallOptions = {}): Promise<Json> {
    return this.#call(method, params, token, options);
  }

  /**
   * Every item of a paginated method (one with `page` and `per_page`), page
   * after page from page 1, stopping at the answer's `pages`: e.g. every
   * `doc` of `doc.getList`. A `page` given in `params` is replaced; `per_page`
   * is passed on. A method without pages is a `NotPaginatedError`, before any request.
   */
  paginate<Item = Json>(method: MethodName, params?: Params, token?: string): AsyncGenerator<Item, void, undefined>;
  paginate<Item = Json>(method: string, params: Params, token: string | undefined, options: CallOptions & { unlisted: true }): AsyncGenerator<Item, void, undefined>;
  async *paginate<Item = Json>(method: string, params: Params = {}, token?: string, options: CallOptions = {}): AsyncGenerator<Item, void, undefined> {
    if (!options.unlisted && !isPaginated(methodSpec(method))) throw new NotPaginatedError(method);
    for (let page = 1; ; page += 1) {
      const { items, pages } = pageOf(method, await this.#call(method, { ...params, page: String(page) }, token, options));
      for (const item of items) yield item as Item;
      if (page >= pages) return;
    }
  }

  /**
   * The one signed call for a connection, in either mode: ipernity's
   * `api_key`, `auth_token` and `api_sig` among the parameters, or (OAuth
   * mode) the parameters as given and an `Authorization` header signed with
   * the consumer secret and the access token's. A token that is not an
   * access token (one kept before the mode changed) is sent as one without
   * a secret: ipernity refuses it as it refuses a revoked one.
   */
  #sign(url: string, method: string, params: Params, token: string | undefined): Signed {
    if (!this.#oauth) {
      const form: Record<string, string> = { ...params, api_key: this.#options.apiKey };
      if (token !== undefined) form.auth_token = token;
      form.api_sig = sign(form, this.#options.apiSecret, method);
      return { form, headers: {} };
    }
    const credential = token === undefined ? undefined : (decodeCredential(token) ?? { token, secret: '' });
    return { form: { ...params }, headers: { authorization: this.#oauth.header({ method: 'POST', url, params }, credential) } };
  }

  async #call(method: string, params: Params, token: string | undefined, options: CallOptions): Promise<Json> {
    const spec = options.unlisted ? findMethod(method) : methodSpec(method);
    if (spec && !options.unlisted) checkCall(method, spec, params, token);
    const url = `${this.#base}/${encodeURIComponent(method)}/json`;
    const signed = this.#sign(url, method, params, token);

    const started = performance.now();
    const report = (outcome: CallOutcome): void => {
      this.#options.onCall?.(method, performance.now() - started, outcome);
    };
    const deadline = started + this.#options.timeoutMs;
    let status: number;
    let text: string;
    let retryAfter: string | undefined;
    try {
      ({ status, text, retryAfter } = await this.#post(url, new URLSearchParams(signed.form).toString(), signed.headers, deadline, !writes(spec)));
    } catch (error) {
      if (error instanceof DeadlineError) {
        report('timeout');
        throw new UpstreamTimeoutError(method, this.#options.timeoutMs, { cause: error });
      }
      if (error instanceof UpstreamBadResponseError) {
        report('bad_response');
        throw error;
      }
      report('network');
      throw new UpstreamNetworkError(method, { cause: error });
    }
    return this.#answer(method, spec, { status, text, ...(retryAfter === undefined ? {} : { retryAfter }) }, report);
  }

  /** ipernity's JSON answer once `api.status` is `ok`; the typed error otherwise (every call and upload reads its answer here). */
  #answer<Answer = Json>(method: string, spec: MethodSpec | undefined, { status, text, retryAfter }: RawAnswer, report: (outcome: CallOutcome) => void, read: (body: Json) => Answer = (body) => body as Answer): Answer {
    let answer: Answer;
    try {
      if (status < 200 || status > 299) throw new UpstreamHttpError(method, status);
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch (error) {
        throw new UpstreamBadResponseError(method, 'not JSON', { cause: error });
      }
      if (!isObject(body) || !isObject(body.api)) throw new UpstreamBadResponseError(method, 'no "api" object');
      if (body.api.status !== 'ok') {
        const code = Number(stringField(body.api.code));
        if (!Number.isInteger(code)) throw new UpstreamBadResponseError(method, 'an error without a numeric code');
        throw apiError(method, code, (stringField(body.api.message) ?? '').slice(0, 200), spec, retryAfter);
      }
      answer = read(body);
    } catch (error) {
      report(outcomeOf(error));
      throw error;
    }
    report('ok');
    return answer;
  }

  /**
   * `upload.file`: a multipart/form-data POST of `file` with the signed
   * parameters (api_key, auth_token, api_sig and `params`) as parts before it;
   * the file part is not signed. The file is streamed as the socket takes it,
   * never held whole: with its `size` known the request carries the exact
   * Content-Length, else it is chunked. Refused before anything is sent like
   * `call` (no token: `TokenRequiredError`; an empty file:
   * `ParameterMissingError`). Answers `{ ticket }` to wait for with
   * `waitForTickets`, or with `async: '0'` `{ ticket?, docId }` once ipernity
   * processed it. Fails like `call` (typed ipernity errors; 2 is
   * `IpernityFileTooLargeError`), with `UpstreamTimeoutError` when nothing
   * moved for `uploadIdleTimeoutMs`, and with `UploadSourceError` when the
   * file's stream fails or gives another length than `size` (the request is
   * aborted). On any failure the stream is destroyed.
   */
  upload(file: UploadFile, params: UploadParams & { async: '0' }, token: string | undefined, options?: UploadOptions): Promise<UploadAnswer & { docId: string }>;
  upload(file: UploadFile, params?: UploadParams, token?: string, options?: UploadOptions): Promise<UploadAnswer>;
  async upload(file: UploadFile, params: UploadParams = {}, token?: string, options: UploadOptions = {}): Promise<UploadAnswer> {
    const method = 'upload.file';
    const spec = methodSpec(method);
    const size = Buffer.isBuffer(file.stream) ? file.stream.length : file.size;
    try {
      checkCall(method, spec, params as Params, token, ['file']);
      if (size === 0) throw new ParameterMissingError(method, 'file');
      if (!Buffer.isBuffer(file.stream) && (file.stream.readableEnded || file.stream.destroyed)) throw new UploadSourceError(method, 'the stream was already read or destroyed');
      if (size !== undefined && !(Number.isSafeInteger(size) && size > 0)) throw new UploadSourceError(method, `size ${String(size)} is not a number of bytes`);
    } catch (error) {
      if (!Buffer.isBuffer(file.stream)) file.stream.destroy();
      throw error;
    }
    const url = `${this.#base}/${method}/json`;
    // the file part is not signed, in either mode
    const signed = this.#sign(url, method, params as Params, token);

    const started = performance.now();
    const report = (outcome: CallOutcome): void => {
      this.#options.onCall?.(method, performance.now() - started, outcome);
    };
    const idleMs = options.idleTimeoutMs ?? this.#options.uploadIdleTimeoutMs ?? DEFAULT_UPLOAD_IDLE_TIMEOUT_MS;
    let raw: RawAnswer;
    try {
      // the credentials first (frob mode), then the method's parameters, then the file
      const { api_key, auth_token, api_sig, ...rest } = signed.form;
      const fields = { ...(api_key === undefined ? {} : { api_key }), ...(auth_token === undefined ? {} : { auth_token }), ...(api_sig === undefined ? {} : { api_sig }), ...rest } as Record<string, string>;
      raw = await postMultipart(url, method, multipartFrame(fields, file), file.stream, size, idleMs, signed.headers);
    } catch (error) {
      if (error instanceof IdleTimeoutError) {
        report('timeout');
        throw new UpstreamTimeoutError(method, idleMs, { cause: error });
      }
      if (error instanceof UploadSourceError) {
        report('source_failed');
        throw error;
      }
      if (error instanceof UpstreamBadResponseError) {
        report('bad_response');
        throw error;
      }
      report('network');
      throw new UpstreamNetworkError(method, { cause: error });
    }
    return this.#answer(method, spec, raw, report, (body) => readUploadAnswer(method, body));
  }

  /**
   * Waits for upload tickets (from `upload`): polls `upload.checkTickets`,
   * up to 50 tickets a call, each ticket first at once and then never before
   * the `eta` ipernity gave it, until every one is done or invalid. Answers a
   * result per ticket, in the order given: `{ ticket, docId }`, or
   * `{ ticket, error }` with an `UploadInvalidError` when ipernity could not
   * process the file. `UploadPendingError` (naming the tickets still pending,
   * and carrying the settled ones) when the next poll would pass `deadline`.
   */
  waitForTickets(tickets: readonly string[], token: string, options: WaitForTicketsOptions): Promise<TicketResult[]> {
    return pollTickets((batch) => this.call('upload.checkTickets', { tickets: batch.join(',') }, token), tickets, options);
  }

  /** Closes the keep-alive connections. */
  async close(): Promise<void> {
    this.#agent.destroy();
  }

  /**
   * One form-encoded POST through the pool; the body is read up to
   * `MAX_BODY_BYTES`. A kept-alive socket that the server closed just as it
   * was reused fails before the request reached the server: that one case is
   * sent again, once, on a new connection outside the pool (the pool's other
   * idle sockets may have been closed at the same moment). Only for a call
   * that changes nothing (`resend`): a reset can also come after the server
   * took the request in, and a write sent twice could be made twice.
   */
  async #post(url: string, body: string, headers: Record<string, string>, deadline: number, resend: boolean): Promise<RawAnswer> {
    try {
      return await this.#postOnce(url, body, headers, deadline, this.#agent);
    } catch (error) {
      if (!(error instanceof StaleSocketError) || !resend) throw error instanceof StaleSocketError ? error.original : error;
      return this.#postOnce(url, body, headers, deadline, false);
    }
  }

  /**
   * One POST, bounded by `deadline` (a `performance.now()` time) with a
   * timer of its own, cleared when the answer is in: `AbortSignal.timeout`
   * cost every call its abort listeners, and a timer that ran its full
   * length after the call was over.
   */
  #postOnce(url: string, body: string, headers: Record<string, string>, deadline: number, agent: http.Agent | false): Promise<RawAnswer> {
    return new Promise((resolve, reject) => {
      const transport = url.startsWith('https:') ? https : http;
      let timedOut = false;
      const outgoing = transport.request(
        url,
        {
          method: 'POST',
          agent,
          headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', 'content-length': Buffer.byteLength(body) },
        },
        (response) => {
          const chunks: Buffer[] = [];
          let size = 0;
          response.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > MAX_BODY_BYTES) {
              response.destroy(new UpstreamBadResponseError('response', `larger than ${MAX_BODY_BYTES} bytes`));
              return;
            }
            chunks.push(chunk);
          });
          response.on('end', () => {
            clearTimeout(timer);
            const retryAfter = response.headers['retry-after'];
            resolve({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8'), ...(retryAfter === undefined ? {} : { retryAfter }) });
          });
          response.on('error', (error) => {
            clearTimeout(timer);
            reject(error);
          });
        },
      );
      const timer = setTimeout(() => {
        timedOut = true;
        reject(new DeadlineError());
        outgoing.destroy();
      }, Math.max(0, deadline - performance.now()));
      outgoing.on('error', (error: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        const stale = outgoing.reusedSocket && !timedOut && (error.code === 'ECONNRESET' || error.code === 'EPIPE');
        reject(stale ? new StaleSocketError(error) : error);
      });
      outgoing.end(body);
    });
  }

  #grant(method: string, answer: Json): TokenGrant {
    const auth = answer.auth;
    if (!isObject(auth)) throw new UpstreamBadResponseError(method, 'no "auth" object');
    const token = stringField(auth.token);
    const user = isObject(auth.user) ? auth.user : undefined;
    const userId = user && stringField(user.user_id);
    if (!token || !user || !userId) throw new UpstreamBadResponseError(method, 'no token or user');
    const grant: TokenGrant = {
      token,
      // the XML form of auth.checkToken names them "perms": accept both
      permissions: parseGrantedPermissions(auth.permissions ?? auth.perms),
      user: {
        userId,
        username: stringField(user.username) ?? '',
        realname: stringField(user.realname) ?? '',
      },
    };
    const lang = stringField(user.lg);
    if (lang) grant.user.lang = lang;
    if (user.is_pro !== undefined) grant.user.isPro = user.is_pro === true || user.is_pro === 1 || user.is_pro === '1';
    return grant;
  }
}
