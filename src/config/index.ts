import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { z } from 'zod';
import type { RequestedPermissions } from '../ipernity/permissions';
import { isListedMethod, parsePermissionSetting } from '../ipernity/catalogue';
import { DEFAULT_TIMEOUT_MS } from '../ipernity/client';
import { OAUTH_SIGNATURE_METHODS, oauthEndpoints, type OAuthEndpoints, type OAuthSignatureMethod } from '../ipernity/oauth';
import { keyFromSecret, parseKey, type TokenKey } from '../security/keys';
import { Codes } from '../errors';

/** Defaults, named so the README and the code say the same thing. */
export const DEFAULTS = {
  PORT: 3000,
  IPERNITY_AUTHORIZE_URL: 'https://www.ipernity.com/apps/authorize',
  IPERNITY_API_URL: 'https://api.ipernity.com/api',
  IPERNITY_AUTH_MODE: 'web',
  IPERNITY_OAUTH_URL: 'https://www.ipernity.com/apps/oauth',
  IPERNITY_OAUTH_SIGNATURE_METHOD: 'HMAC-SHA1',
  IPERNITY_PERMISSIONS: 'doc:read,profile:read',
  IPERNITY_APP_NAME: 'ipernity-connect',
  IPERNITY_TIMEOUT_MS: DEFAULT_TIMEOUT_MS,
  LOG_LEVEL: 'info',
  SESSION_STORE: 'sqlite',
  DATA_DIR: './data',
  REDIS_KEY_PREFIX: 'ipernity-connect:',
  SESSION_IDLE_TIMEOUT_SECONDS: 7 * 24 * 3600,
  SESSION_MAX_AGE_SECONDS: 30 * 24 * 3600,
  TOKEN_CHECK_INTERVAL_SECONDS: 3600,
  CONNECT_COUNTDOWN_SECONDS: 0,
  RATE_LIMIT_PER_MINUTE: 60,
  SHUTDOWN_TIMEOUT_MS: 10_000,
  METRICS_ENABLED: true,
  METRICS_PORT: 9464,
  METRICS_HOST: '127.0.0.1',
  API_CACHE_SECONDS: 0,
  API_RATE_LIMIT_PER_MINUTE: 120,
  // ipernity's own limit for a photo
  UPLOAD_MAX_BYTES: 100 * 1024 * 1024,
  // a site with a real key keeps its connection page; the sandbox shows its photo page (SANDBOX_HOME_PAGE)
  HOME_PAGE: 'connection',
} as const;

/** What the gateway forwards in sandbox mode when IPERNITY_API_METHODS is not set: enough to try a photo site. */
export const SANDBOX_API_METHODS = [
  'test.echo',
  'user.get',
  'doc.getList',
  'doc.search',
  'doc.get',
  'doc.getMedias',
  'doc.set',
  'doc.tags.add',
  'album.getList',
  'album.docs.getList',
  'account.getQuota',
  'upload.file',
  'upload.checkTickets',
] as const;

/** The sandbox's home page, unless HOME_PAGE says otherwise: the example site of docs/using-the-connection.md. */
export const SANDBOX_HOME_PAGE: HomePage = 'photos';
/** What `GET /` shows a connected visitor: the connection alone, or also their photos and an upload form. */
export type HomePage = 'photos' | 'connection';

/** How often the sandbox checks a connection with the simulator, unless TOKEN_CHECK_INTERVAL_SECONDS says otherwise. */
export const SANDBOX_TOKEN_CHECK_INTERVAL_SECONDS = 10;
/** The sandbox's built-in simulator lives under this path of the app. */
export const SANDBOX_PATH = '/sandbox/ipernity';
/** A pending connection attempt is honoured this long. */
export const ATTEMPT_TTL_MS = 10 * 60 * 1000;
/** Only ever used outside production, where a missing SESSION_SECRET is allowed. */
const DEVELOPMENT_SESSION_SECRET = 'development-only-session-secret-do-not-use-in-production';

export type SessionStoreKind = 'sqlite' | 'redis' | 'memory';
export type AuthMode = 'web' | 'desktop' | 'oauth';
export type { TokenKey } from '../security/keys';

/** The whole configuration, read once at start-up and handed down. */
export interface Config {
  env: 'development' | 'production' | 'test';
  port: number;
  publicUrl: URL;
  /** PUBLIC_URL is https: cookies are Secure and `__Host-` prefixed. */
  secure: boolean;
  /** Cookie-signing secrets, newest first. */
  sessionSecrets: string[];
  /** Token-encryption keys, newest first (the first encrypts, any decrypts). */
  tokenKeys: TokenKey[];
  ipernity: {
    apiKey: string;
    apiSecret: string;
    authorizeUrl: string;
    apiUrl: string;
    mode: AuthMode;
    /** OAuth mode's endpoints (the request and access tokens reached by the server, the authorization by the browser) and signature method. */
    oauth: OAuthEndpoints & { signatureMethod: OAuthSignatureMethod };
    permissions: RequestedPermissions;
    appName: string;
    timeoutMs: number;
  };
  /** No API key outside production: the built-in simulator stands in for ipernity. */
  sandbox: boolean;
  session: {
    store: SessionStoreKind;
    dataDir: string;
    redisUrl?: string;
    redisKeyPrefix: string;
    idleTimeoutMs: number;
    maxAgeMs: number;
  };
  tokenCheckIntervalMs: number;
  countdownSeconds: number;
  logLevel: string;
  trustProxy: boolean | number | string;
  metrics: {
    enabled: boolean;
    token?: string;
    /**
     * `/metrics` has a listener of its own, on `host:port`, and none on the
     * main port: in production without a token, so that they are never public.
     */
    ownListener: boolean;
    port: number;
    host: string;
  };
  rateLimitPerMinute: number;
  shutdownTimeoutMs: number;
  /** `photos`: the home page also shows the visitor's latest photos and an upload form (`POST /photos/upload`). */
  homePage: HomePage;
  /** The API gateway (`/api/ipernity/<method>`). */
  gateway: {
    /** The methods it forwards; empty: the gateway is off. */
    methods: string[];
    /** Reading answers are kept this long per visitor; 0: not kept. */
    cacheSeconds: number;
    /** Gateway calls per visitor and minute; 0: no limit. */
    rateLimitPerMinute: number;
    /** The largest file an upload through the server takes. */
    uploadMaxBytes: number;
  };
}

/** Start-up stops with this when the environment is wrong; the message names the variable. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly code = Codes.CONFIG_INVALID;
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
  }
}

const integer = (name: string, min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, `${name} must be a whole number`)
    .transform(Number)
    .refine((value) => value >= min && value <= max, `${name} must be between ${min} and ${max}`);

const url = (name: string) =>
  z.string().refine((value) => {
    try {
      return ['http:', 'https:'].includes(new URL(value).protocol);
    } catch {
      return false;
    }
  }, `${name} must be an absolute http(s) URL, e.g. https://example.com`);

const optionalString = z.string().optional().transform((value) => (value === '' ? undefined : value));

const schema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test'], { message: 'NODE_ENV must be development, production or test' }).default('development'),
  PORT: integer('PORT', 0, 65535).optional(),
  PUBLIC_URL: url('PUBLIC_URL').optional(),
  SESSION_SECRET: optionalString,
  TOKEN_ENCRYPTION_KEY: optionalString,
  IPERNITY_API_KEY: optionalString,
  IPERNITY_API_SECRET: optionalString,
  IPERNITY_AUTHORIZE_URL: url('IPERNITY_AUTHORIZE_URL').default(DEFAULTS.IPERNITY_AUTHORIZE_URL),
  IPERNITY_API_URL: url('IPERNITY_API_URL').default(DEFAULTS.IPERNITY_API_URL),
  IPERNITY_AUTH_MODE: z.enum(['web', 'desktop', 'oauth'], { message: 'IPERNITY_AUTH_MODE must be web (a key with a callback URL), desktop (a key without one) or oauth (OAuth 1.0a, either key)' }).default(DEFAULTS.IPERNITY_AUTH_MODE),
  IPERNITY_OAUTH_URL: url('IPERNITY_OAUTH_URL').default(DEFAULTS.IPERNITY_OAUTH_URL),
  IPERNITY_OAUTH_SIGNATURE_METHOD: z.enum(OAUTH_SIGNATURE_METHODS, { message: 'IPERNITY_OAUTH_SIGNATURE_METHOD must be HMAC-SHA1, MD5 or PLAINTEXT (https only)' }).default(DEFAULTS.IPERNITY_OAUTH_SIGNATURE_METHOD),
  IPERNITY_PERMISSIONS: z.string().default(DEFAULTS.IPERNITY_PERMISSIONS),
  IPERNITY_APP_NAME: z.string().trim().min(1, 'IPERNITY_APP_NAME must not be empty').max(80, 'IPERNITY_APP_NAME is limited to 80 characters').default(DEFAULTS.IPERNITY_APP_NAME),
  IPERNITY_TIMEOUT_MS: integer('IPERNITY_TIMEOUT_MS', 100, 120_000).optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], { message: 'LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent' }).default(DEFAULTS.LOG_LEVEL),
  SESSION_STORE: z.enum(['sqlite', 'redis', 'memory'], { message: 'SESSION_STORE must be sqlite, redis or memory' }).default(DEFAULTS.SESSION_STORE),
  DATA_DIR: z.string().min(1).default(DEFAULTS.DATA_DIR),
  REDIS_URL: optionalString.refine((value) => value === undefined || /^rediss?:\/\//.test(value), 'REDIS_URL must start with redis:// or rediss://'),
  REDIS_KEY_PREFIX: z.string().default(DEFAULTS.REDIS_KEY_PREFIX),
  SESSION_IDLE_TIMEOUT_SECONDS: integer('SESSION_IDLE_TIMEOUT_SECONDS', 60, 365 * 24 * 3600).optional(),
  SESSION_MAX_AGE_SECONDS: integer('SESSION_MAX_AGE_SECONDS', 60, 5 * 365 * 24 * 3600).optional(),
  TOKEN_CHECK_INTERVAL_SECONDS: integer('TOKEN_CHECK_INTERVAL_SECONDS', 0, 30 * 24 * 3600).optional(),
  CONNECT_COUNTDOWN_SECONDS: integer('CONNECT_COUNTDOWN_SECONDS', 0, 60).optional(),
  TRUST_PROXY: optionalString,
  METRICS_ENABLED: z.enum(['true', 'false'], { message: 'METRICS_ENABLED must be true or false' }).optional(),
  METRICS_TOKEN: optionalString,
  METRICS_PORT: integer('METRICS_PORT', 0, 65535).optional(),
  METRICS_HOST: z.string().regex(/^[^\s/]+$/, 'METRICS_HOST must be an address or a host name, e.g. 127.0.0.1 (loopback) or 0.0.0.0 (every interface)').optional(),
  RATE_LIMIT_PER_MINUTE: integer('RATE_LIMIT_PER_MINUTE', 0, 1_000_000).optional(),
  SHUTDOWN_TIMEOUT_MS: integer('SHUTDOWN_TIMEOUT_MS', 0, 600_000).optional(),
  IPERNITY_API_METHODS: z.string().optional(),
  API_CACHE_SECONDS: integer('API_CACHE_SECONDS', 0, 3600).optional(),
  API_RATE_LIMIT_PER_MINUTE: integer('API_RATE_LIMIT_PER_MINUTE', 0, 1_000_000).optional(),
  UPLOAD_MAX_BYTES: integer('UPLOAD_MAX_BYTES', 1, 2 ** 40).optional(),
  HOME_PAGE: z.enum(['photos', 'connection'], { message: 'HOME_PAGE must be photos (the connected visitor sees their photos and an upload form) or connection (the connection alone)' }).optional(),
});

/** Reads IPERNITY_API_METHODS: listed method names, never `auth.*`; the problems found go to `problems`. */
function parseGatewayMethods(value: string, problems: string[]): string[] {
  const names = value.split(',').map((name) => name.trim()).filter(Boolean);
  for (const name of names) {
    if (name.startsWith('auth.')) {
      problems.push(`IPERNITY_API_METHODS: ${name} cannot be forwarded: the auth.* methods make and check tokens, which never leave the server`);
    } else if (!isListedMethod(name)) {
      problems.push(`IPERNITY_API_METHODS: ${name} is not in ipernity's method list (src/ipernity/methods.tsv); names are case-sensitive, e.g. doc.getList`);
    }
  }
  return [...new Set(names)];
}

function parseTrustProxy(value: string | undefined): boolean | number | string {
  if (value === undefined || value === 'false') return false;
  if (value === 'true') return true;
  if (/^\d+$/.test(value)) return Number(value);
  return value;
}

/**
 * Reads and validates the environment once. Throws a `ConfigError` that names
 * every wrong variable and what it accepts.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`));
  }
  const e = parsed.data;
  const problems: string[] = [];
  const production = e.NODE_ENV === 'production';

  const port = e.PORT ?? DEFAULTS.PORT;
  const publicUrl = new URL(e.PUBLIC_URL ?? `http://localhost:${port}`);
  if (publicUrl.pathname !== '/' || publicUrl.search || publicUrl.hash) {
    problems.push(`PUBLIC_URL: must be an origin without a path, e.g. ${publicUrl.origin} (got ${e.PUBLIC_URL})`);
  }

  let permissions: RequestedPermissions = {};
  try {
    // item:level pairs, or `methods:` and the API methods the site calls (what they need, nothing more)
    permissions = parsePermissionSetting(e.IPERNITY_PERMISSIONS);
  } catch (error) {
    problems.push(`IPERNITY_PERMISSIONS: ${(error as Error).message}; e.g. doc:read,profile:read or methods:doc.getList,upload.file`);
  }

  const sandbox = !e.IPERNITY_API_KEY && !production;
  if (production) {
    if (!e.IPERNITY_API_KEY) problems.push('IPERNITY_API_KEY: required in production (the key of your ipernity application)');
    if (!e.IPERNITY_API_SECRET) problems.push('IPERNITY_API_SECRET: required in production (the secret that goes with IPERNITY_API_KEY)');
    if (!e.SESSION_SECRET) problems.push('SESSION_SECRET: required in production; generate one with: openssl rand -base64 48');
    if (e.SESSION_STORE === 'memory') problems.push('SESSION_STORE: memory is for tests only; use sqlite (one instance) or redis (several)');
  } else if (e.IPERNITY_API_KEY && !e.IPERNITY_API_SECRET) {
    problems.push('IPERNITY_API_SECRET: required when IPERNITY_API_KEY is set');
  }
  if (e.SESSION_STORE === 'redis' && !e.REDIS_URL) problems.push('REDIS_URL: required when SESSION_STORE=redis, e.g. redis://localhost:6379');

  const sessionSecrets = (e.SESSION_SECRET ?? DEVELOPMENT_SESSION_SECRET).split(',').map((s) => s.trim()).filter(Boolean);
  if (sessionSecrets.length === 0) problems.push('SESSION_SECRET: no secret in the list');
  if (production && sessionSecrets.some((secret) => secret.length < 32)) {
    problems.push('SESSION_SECRET: each secret must have at least 32 characters; generate one with: openssl rand -base64 48');
  }

  let tokenKeys: TokenKey[];
  if (e.TOKEN_ENCRYPTION_KEY) {
    tokenKeys = [];
    for (const text of e.TOKEN_ENCRYPTION_KEY.split(',').map((s) => s.trim()).filter(Boolean)) {
      const key = parseKey(text);
      if (key) tokenKeys.push(key);
      else problems.push('TOKEN_ENCRYPTION_KEY: each key must be 32 bytes as 64 hex digits or base64; generate one with: openssl rand -hex 32');
    }
  } else {
    tokenKeys = sessionSecrets.map(keyFromSecret);
  }

  const idleTimeoutMs = (e.SESSION_IDLE_TIMEOUT_SECONDS ?? DEFAULTS.SESSION_IDLE_TIMEOUT_SECONDS) * 1000;
  const maxAgeMs = (e.SESSION_MAX_AGE_SECONDS ?? DEFAULTS.SESSION_MAX_AGE_SECONDS) * 1000;
  if (idleTimeoutMs > maxAgeMs) problems.push('SESSION_IDLE_TIMEOUT_SECONDS: must not be longer than SESSION_MAX_AGE_SECONDS');

  const metricsEnabled = (e.METRICS_ENABLED ?? String(DEFAULTS.METRICS_ENABLED)) === 'true';
  const metricsPort = e.METRICS_PORT ?? DEFAULTS.METRICS_PORT;
  // a public /metrics needs a token: without one, production serves it on a listener of its own (loopback by default)
  const metricsOwnListener = metricsEnabled && production && !e.METRICS_TOKEN;
  if (metricsOwnListener && metricsPort !== 0 && metricsPort === port) {
    problems.push(`METRICS_PORT: must differ from PORT (${port}); without METRICS_TOKEN, production serves /metrics on a port of its own`);
  }

  const gatewayMethods = e.IPERNITY_API_METHODS !== undefined ? parseGatewayMethods(e.IPERNITY_API_METHODS, problems) : sandbox ? [...SANDBOX_API_METHODS] : [];

  if (e.IPERNITY_OAUTH_SIGNATURE_METHOD === 'PLAINTEXT' && (sandbox || !e.IPERNITY_OAUTH_URL.startsWith('https:'))) {
    problems.push('IPERNITY_OAUTH_SIGNATURE_METHOD: PLAINTEXT sends the secrets as they are, so ipernity accepts it over https only: use HMAC-SHA1, or an https IPERNITY_OAUTH_URL');
  }

  if (problems.length) throw new ConfigError(problems);

  const apiKey = sandbox ? `sandbox-${randomBytes(8).toString('hex')}` : (e.IPERNITY_API_KEY as string);
  const apiSecret = sandbox ? randomBytes(16).toString('hex') : (e.IPERNITY_API_SECRET as string);
  return {
    env: e.NODE_ENV,
    port,
    publicUrl,
    secure: publicUrl.protocol === 'https:',
    sessionSecrets,
    tokenKeys,
    ipernity: {
      apiKey,
      apiSecret,
      authorizeUrl: sandbox ? new URL(`${SANDBOX_PATH}/apps/authorize`, publicUrl).toString() : e.IPERNITY_AUTHORIZE_URL,
      apiUrl: sandbox ? `http://127.0.0.1:${port}${SANDBOX_PATH}/api` : e.IPERNITY_API_URL,
      mode: e.IPERNITY_AUTH_MODE,
      oauth: {
        ...(sandbox
          ? oauthEndpoints(`http://127.0.0.1:${port}${SANDBOX_PATH}/apps/oauth`, new URL(`${SANDBOX_PATH}/apps/oauth`, publicUrl).toString())
          : oauthEndpoints(e.IPERNITY_OAUTH_URL)),
        signatureMethod: e.IPERNITY_OAUTH_SIGNATURE_METHOD,
      },
      permissions,
      appName: e.IPERNITY_APP_NAME,
      timeoutMs: e.IPERNITY_TIMEOUT_MS ?? DEFAULTS.IPERNITY_TIMEOUT_MS,
    },
    sandbox,
    session: {
      store: e.SESSION_STORE,
      dataDir: path.resolve(e.DATA_DIR),
      redisUrl: e.REDIS_URL,
      redisKeyPrefix: e.REDIS_KEY_PREFIX,
      idleTimeoutMs,
      maxAgeMs,
    },
    // the sandbox checks often, so that a newcomer who revokes on the simulator's settings page sees the server notice
    tokenCheckIntervalMs: (e.TOKEN_CHECK_INTERVAL_SECONDS ?? (sandbox ? SANDBOX_TOKEN_CHECK_INTERVAL_SECONDS : DEFAULTS.TOKEN_CHECK_INTERVAL_SECONDS)) * 1000,
    countdownSeconds: e.CONNECT_COUNTDOWN_SECONDS ?? DEFAULTS.CONNECT_COUNTDOWN_SECONDS,
    logLevel: e.LOG_LEVEL,
    trustProxy: parseTrustProxy(e.TRUST_PROXY),
    metrics: { enabled: metricsEnabled, token: e.METRICS_TOKEN, ownListener: metricsOwnListener, port: metricsPort, host: e.METRICS_HOST ?? DEFAULTS.METRICS_HOST },
    rateLimitPerMinute: e.RATE_LIMIT_PER_MINUTE ?? DEFAULTS.RATE_LIMIT_PER_MINUTE,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS ?? DEFAULTS.SHUTDOWN_TIMEOUT_MS,
    homePage: e.HOME_PAGE ?? (sandbox ? SANDBOX_HOME_PAGE : DEFAULTS.HOME_PAGE),
    gateway: {
      methods: gatewayMethods,
      cacheSeconds: e.API_CACHE_SECONDS ?? DEFAULTS.API_CACHE_SECONDS,
      rateLimitPerMinute: e.API_RATE_LIMIT_PER_MINUTE ?? DEFAULTS.API_RATE_LIMIT_PER_MINUTE,
      uploadMaxBytes: e.UPLOAD_MAX_BYTES ?? DEFAULTS.UPLOAD_MAX_BYTES,
    },
  };
}
