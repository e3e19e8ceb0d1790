import { Agent, request, type Dispatcher } from 'undici';
import {
  IpernityApiError,
  UpstreamBadResponseError,
  UpstreamHttpError,
  UpstreamNetworkError,
  UpstreamTimeoutError,
} from './errors';
import { isFrob, type ValidatedFrob } from './frob';
import { parseGrantedPermissions, type GrantedPermissions } from './permissions';
import { sign } from './signature';

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

export type CallOutcome = 'ok' | 'api_error' | 'timeout' | 'network' | 'http_status' | 'bad_response';

export interface IpernityClientOptions {
  /** Base of the API, e.g. `https://api.ipernity.com/api`: calls go to `<apiUrl>/<method>/json`. */
  apiUrl: string;
  apiKey: string;
  apiSecret: string;
  /** Upper bound for one call, from sending to the last byte of the answer. */
  timeoutMs: number;
  /** Keep-alive connections kept open to the API host. */
  connections?: number;
  /** Told about every call (for metrics); never given parameters or bodies. */
  onCall?: (method: string, durationMs: number, outcome: CallOutcome) => void;
}

/** Default upper bound for one API call. */
export const DEFAULT_TIMEOUT_MS = 5000;
/** Keep-alive connections per API host: above the concurrent flows one instance serves, so none waits for a socket. */
export const DEFAULT_CONNECTIONS = 128;
const MAX_BODY_BYTES = 1024 * 1024;

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function stringField(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return undefined;
}

/**
 * Signed calls to the ipernity API over HTTP: POST, form-encoded, JSON
 * answers, one keep-alive pool, a timeout on every call and typed errors.
 */
export class IpernityClient {
  readonly #options: IpernityClientOptions;
  readonly #dispatcher: Dispatcher;
  readonly #base: string;

  constructor(options: IpernityClientOptions) {
    this.#options = options;
    this.#base = options.apiUrl.replace(/\/+$/, '');
    this.#dispatcher = new Agent({
      connections: options.connections ?? DEFAULT_CONNECTIONS,
      keepAliveTimeout: 10_000,
      connectTimeout: options.timeoutMs,
    });
  }

  /** `auth.getFrob`: a frob for a desktop-style authorization. */
  async getFrob(): Promise<ValidatedFrob> {
    const answer = await this.call('auth.getFrob', {});
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

  /** Any signed API method; answers the parsed JSON once `api.status` is `ok`. */
  async call(method: string, params: Readonly<Record<string, string>>, token?: string): Promise<Json> {
    const signed: Record<string, string> = { ...params, api_key: this.#options.apiKey };
    if (token !== undefined) signed.auth_token = token;
    signed.api_sig = sign(signed, this.#options.apiSecret, method);

    const started = performance.now();
    const report = (outcome: CallOutcome): void => {
      this.#options.onCall?.(method, performance.now() - started, outcome);
    };
    const signal = AbortSignal.timeout(this.#options.timeoutMs);
    let status: number;
    let text: string;
    try {
      const response = await request(`${this.#base}/${encodeURIComponent(method)}/json`, {
        method: 'POST',
        dispatcher: this.#dispatcher,
        signal,
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: new URLSearchParams(signed).toString(),
      });
      status = response.statusCode;
      text = await readLimited(response.body, MAX_BODY_BYTES);
    } catch (error) {
      if (signal.aborted) {
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
    if (status < 200 || status > 299) {
      report('http_status');
      throw new UpstreamHttpError(method, status);
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (error) {
      report('bad_response');
      throw new UpstreamBadResponseError(method, 'not JSON', { cause: error });
    }
    if (!isObject(body) || !isObject(body.api)) {
      report('bad_response');
      throw new UpstreamBadResponseError(method, 'no "api" object');
    }
    if (body.api.status !== 'ok') {
      const code = Number(stringField(body.api.code));
      if (!Number.isInteger(code)) {
        report('bad_response');
        throw new UpstreamBadResponseError(method, 'an error without a numeric code');
      }
      report('api_error');
      throw new IpernityApiError(method, code, (stringField(body.api.message) ?? '').slice(0, 200));
    }
    report('ok');
    return body;
  }

  /** Closes the keep-alive connections. */
  async close(): Promise<void> {
    await this.#dispatcher.close();
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

async function readLimited(body: AsyncIterable<Buffer>, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > limit) throw new UpstreamBadResponseError('response', `larger than ${limit} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
