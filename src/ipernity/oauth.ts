import { createHash, createHmac, randomBytes } from 'node:crypto';
import OAuth from 'oauth-1.0a';

/**
 * ipernity's OAuth 1.0a, as far as it differs from the frob protocol: the
 * three endpoints, no `oauth_verifier`, the `perm_*` parameters on the
 * authorization address, MD5 beside HMAC-SHA1 and PLAINTEXT. The signatures
 * themselves are the `oauth-1.0a` package's (RFC 5849 base string, key and
 * header); see docs/decisions/oauth-signer.md for why that package.
 */

/** The signature methods ipernity accepts; PLAINTEXT only over https. */
export const OAUTH_SIGNATURE_METHODS = ['HMAC-SHA1', 'MD5', 'PLAINTEXT'] as const;
export type OAuthSignatureMethod = (typeof OAUTH_SIGNATURE_METHODS)[number];

/** A token and its secret: a request token during the flow, an access token once connected. */
export interface OAuthCredential {
  token: string;
  secret: string;
}

/** Where the three endpoints are (`<IPERNITY_OAUTH_URL>/request`, `/authorize`, `/access`). */
export interface OAuthEndpoints {
  /** Reached by the server: the request token. */
  requestUrl: string;
  /** Reached by the browser: the visitor authorizes there. */
  authorizeUrl: string;
  /** Reached by the server: the access token. */
  accessUrl: string;
}

/** The three endpoints under one base, e.g. `https://www.ipernity.com/apps/oauth`. */
export function oauthEndpoints(base: string, browserBase = base): OAuthEndpoints {
  const trim = (url: string): string => url.replace(/\/+$/, '');
  return { requestUrl: `${trim(base)}/request`, authorizeUrl: `${trim(browserBase)}/authorize`, accessUrl: `${trim(base)}/access` };
}

/**
 * The hash each method applies to the base string and the key. ipernity names
 * MD5 without defining it: read here (and in the simulator) as the hex MD5 of
 * the base string followed by the key, the way its frob signatures append the
 * secret. HMAC-SHA1 is the default and the one to use.
 */
const HASHES: Readonly<Record<OAuthSignatureMethod, (base: string, key: string) => string>> = {
  'HMAC-SHA1': (base, key) => createHmac('sha1', key).update(base, 'utf8').digest('base64'),
  MD5: (base, key) => createHash('md5').update(base + key, 'utf8').digest('hex'),
  PLAINTEXT: (_base, key) => key,
};

export interface OAuthSignerOptions {
  consumerKey: string;
  consumerSecret: string;
  signatureMethod?: OAuthSignatureMethod;
}

/** What a signature covers: the request's method, its address (no query) and its form parameters. */
export interface OAuthRequest {
  method: 'GET' | 'POST';
  url: string;
  /** Form parameters (an upload's fields without its file part). */
  params?: Readonly<Record<string, string>>;
}

/** The OAuth parameters of a request as received (the header's and the form's), to be checked. */
export type OAuthParams = Readonly<Record<string, string>>;

/** One consumer's signer: the `Authorization` header for a request, and the check of a received signature (the simulator's). */
export class OAuthSigner {
  readonly #oauth: OAuth;
  readonly signatureMethod: OAuthSignatureMethod;

  constructor(options: OAuthSignerOptions) {
    this.signatureMethod = options.signatureMethod ?? 'HMAC-SHA1';
    const hash = HASHES[this.signatureMethod];
    this.#oauth = new OAuth({
      consumer: { key: options.consumerKey, secret: options.consumerSecret },
      signature_method: this.signatureMethod,
      hash_function: hash,
    });
    // the package's nonce comes from Math.random: a nonce need not be secret, but two servers must not repeat one
    this.#oauth.getNonce = () => randomBytes(16).toString('hex');
  }

  /**
   * The `Authorization` header value for a request, signed with the consumer
   * secret and, when given, the token's secret. `extra` OAuth parameters
   * (`oauth_callback`) are signed and carried in the header too.
   */
  header(request: OAuthRequest, token?: OAuthCredential, extra: Readonly<Record<string, string>> = {}): string {
    const data = { ...(request.params ?? {}), ...extra };
    const signed = this.#oauth.authorize({ method: request.method, url: request.url, data }, token ? { key: token.token, secret: token.secret } : undefined);
    return this.#oauth.toHeader({ ...signed, ...extra }).Authorization;
  }

  /** The signature these received parameters should carry (`oauth` holds every `oauth_*` but the signature). */
  expected(request: OAuthRequest, oauth: OAuthParams, tokenSecret: string | undefined): string {
    const { oauth_signature: _signature, ...unsigned } = oauth;
    const data = { ...(request.params ?? {}), ...unsigned };
    return this.#oauth.getSignature({ method: request.method, url: request.url, data }, tokenSecret, unsigned as unknown as OAuth.Data);
  }
}

/** True for a signature method ipernity accepts (the simulator's check of a received one). */
export function isSignatureMethod(value: string): value is OAuthSignatureMethod {
  return (OAUTH_SIGNATURE_METHODS as readonly string[]).includes(value);
}

/**
 * The parameters of an `Authorization: OAuth …` header, decoded; undefined
 * when the header is not OAuth's. A parameter named twice is kept in `repeated`.
 */
export function parseOAuthHeader(header: string | undefined): { params: Record<string, string>; repeated: string[] } | undefined {
  const match = header === undefined ? null : /^\s*OAuth\s+(.*)$/is.exec(header);
  if (!match) return undefined;
  const params: Record<string, string> = {};
  const repeated: string[] = [];
  for (const part of (match[1] ?? '').split(',')) {
    const pair = /^\s*([A-Za-z0-9_.~%-]+)\s*=\s*"([^"]*)"\s*$/.exec(part);
    if (!pair) continue;
    let name: string;
    let value: string;
    try {
      name = decodeURIComponent(pair[1] as string);
      value = decodeURIComponent(pair[2] as string);
    } catch {
      continue;
    }
    if (name === 'realm') continue;
    if (Object.prototype.hasOwnProperty.call(params, name)) repeated.push(name);
    params[name] = value;
  }
  return { params, repeated };
}

/**
 * An access token as one opaque string, the form the session seals and the
 * client's `token` argument carries in OAuth mode: OAuth's own form encoding.
 */
export function encodeCredential(credential: OAuthCredential): string {
  return new URLSearchParams({ oauth_token: credential.token, oauth_token_secret: credential.secret }).toString();
}

/** The token and secret in a string from `encodeCredential`; undefined for anything else (e.g. a frob-mode token). */
export function decodeCredential(value: string): OAuthCredential | undefined {
  if (!value.startsWith('oauth_token=')) return undefined;
  const form = new URLSearchParams(value);
  const token = form.get('oauth_token');
  const secret = form.get('oauth_token_secret');
  return token && secret !== null ? { token, secret } : undefined;
}

/**
 * A token endpoint's answer (`oauth_token=…&oauth_token_secret=…`); undefined
 * when it lacks either.
 */
export function parseTokenAnswer(text: string): OAuthCredential | undefined {
  const form = new URLSearchParams(text.trim());
  const token = form.get('oauth_token');
  const secret = form.get('oauth_token_secret');
  if (!token || secret === null) return undefined;
  return { token, secret };
}

/** A request token has this shape (ipernity's and the simulator's are hex or digits and dashes; room is left). */
const TOKEN_PATTERN = /^[0-9A-Za-z][0-9A-Za-z_.~-]{3,127}$/;

/** True when a callback's `oauth_token` has the shape of a token. */
export function isOAuthToken(value: string): boolean {
  return TOKEN_PATTERN.test(value);
}
