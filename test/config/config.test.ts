import { ConfigError, loadConfig } from '../../src/config';

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

const production = {
  NODE_ENV: 'production',
  IPERNITY_API_KEY: 'key',
  IPERNITY_API_SECRET: 'secret',
  SESSION_SECRET: 'x'.repeat(40),
  PUBLIC_URL: 'https://photos.example',
};

describe('loadConfig', () => {
  it('runs a fresh checkout in sandbox mode with the documented defaults', () => {
    const config = loadConfig({});
    expect(config.sandbox).toBe(true);
    expect(config.port).toBe(3000);
    expect(config.publicUrl.origin).toBe('http://localhost:3000');
    expect(config.ipernity.authorizeUrl).toBe('http://localhost:3000/sandbox/ipernity/apps/authorize');
    expect(config.ipernity.permissions).toEqual({ doc: 'read', profile: 'read' });
    expect(config.session.store).toBe('sqlite');
    expect(config.secure).toBe(false);
  });

  it('reads a production environment', () => {
    const config = loadConfig({ ...production, SESSION_STORE: 'redis', REDIS_URL: 'redis://redis:6379', TRUST_PROXY: '1' });
    expect(config.sandbox).toBe(false);
    expect(config.secure).toBe(true);
    expect(config.ipernity.authorizeUrl).toBe('https://www.ipernity.com/apps/authorize');
    expect(config.ipernity.apiUrl).toBe('https://api.ipernity.com/api');
    expect(config.trustProxy).toBe(1);
    expect(config.tokenKeys).toHaveLength(1);
  });

  it('stops production without a key, a secret or a session secret, naming each', () => {
    const problems = problemsOf({ NODE_ENV: 'production' }).join('\n');
    expect(problems).toContain('IPERNITY_API_KEY');
    expect(problems).toContain('IPERNITY_API_SECRET');
    expect(problems).toContain('SESSION_SECRET');
  });

  it('reads OAuth mode: the three endpoints under IPERNITY_OAUTH_URL, HMAC-SHA1 unless told, PLAINTEXT over https', () => {
    const config = loadConfig({ ...production, IPERNITY_AUTH_MODE: 'oauth', IPERNITY_OAUTH_SIGNATURE_METHOD: 'PLAINTEXT' });
    expect(config.ipernity.mode).toBe('oauth');
    expect(config.ipernity.oauth).toEqual({
      requestUrl: 'https://www.ipernity.com/apps/oauth/request',
      authorizeUrl: 'https://www.ipernity.com/apps/oauth/authorize',
      accessUrl: 'https://www.ipernity.com/apps/oauth/access',
      signatureMethod: 'PLAINTEXT',
    });
    expect(loadConfig({ ...production, IPERNITY_AUTH_MODE: 'oauth' }).ipernity.oauth.signatureMethod).toBe('HMAC-SHA1');
  });

  it.each([
    ['SESSION_STORE', { SESSION_STORE: 'memory' }, 'tests only'],
    ['SESSION_STORE', { SESSION_STORE: 'mongo' }, 'sqlite, redis or memory'],
    ['REDIS_URL', { SESSION_STORE: 'redis' }, 'REDIS_URL'],
    ['REDIS_URL', { SESSION_STORE: 'redis', REDIS_URL: 'localhost:6379' }, 'redis://'],
    ['PORT', { PORT: 'eighty' }, 'whole number'],
    ['PUBLIC_URL', { PUBLIC_URL: 'photos.example' }, 'absolute http(s) URL'],
    ['PUBLIC_URL', { PUBLIC_URL: 'https://photos.example/app' }, 'without a path'],
    ['IPERNITY_AUTH_MODE', { IPERNITY_AUTH_MODE: 'mobile' }, 'web'],
    ['IPERNITY_OAUTH_URL', { IPERNITY_OAUTH_URL: 'ipernity.com/apps/oauth' }, 'absolute http(s) URL'],
    ['IPERNITY_OAUTH_SIGNATURE_METHOD', { IPERNITY_OAUTH_SIGNATURE_METHOD: 'RSA-SHA1' }, 'HMAC-SHA1, MD5 or PLAINTEXT'],
    ['IPERNITY_OAUTH_SIGNATURE_METHOD', { IPERNITY_OAUTH_SIGNATURE_METHOD: 'PLAINTEXT', IPERNITY_OAUTH_URL: 'http://ipernity.test/apps/oauth' }, 'over https only'],
    ['IPERNITY_PERMISSIONS', { IPERNITY_PERMISSIONS: 'profile:delete' }, 'profile'],
    ['IPERNITY_PERMISSIONS', { IPERNITY_PERMISSIONS: 'methods:doc.getList,doc.getLsit' }, '"doc.getLsit" is not in ipernity\'s method list'],
    ['IPERNITY_PERMISSIONS', { IPERNITY_PERMISSIONS: 'methods:' }, 'names no method'],
    ['SESSION_SECRET', { SESSION_SECRET: 'short' }, 'at least 32'],
    ['TOKEN_ENCRYPTION_KEY', { TOKEN_ENCRYPTION_KEY: 'abc' }, 'openssl rand -hex 32'],
    ['LOG_LEVEL', { LOG_LEVEL: 'loud' }, 'debug'],
    ['SESSION_IDLE_TIMEOUT_SECONDS', { SESSION_IDLE_TIMEOUT_SECONDS: '999999', SESSION_MAX_AGE_SECONDS: '3600' }, 'SESSION_MAX_AGE_SECONDS'],
    ['METRICS_PORT', { METRICS_PORT: 'ninety' }, 'whole number'],
    ['METRICS_PORT', { METRICS_PORT: '70000' }, 'between 0 and 65535'],
    ['METRICS_PORT', { PORT: '8080', METRICS_PORT: '8080' }, 'must differ from PORT'],
    ['METRICS_HOST', { METRICS_HOST: '' }, '127.0.0.1 (loopback)'],
    ['METRICS_HOST', { METRICS_HOST: 'http://10.0.0.5' }, 'an address or a host name'],
  ])('names %s and what it accepts', (variable, env, hint) => {
    const problems = problemsOf({ ...production, ...env });
    const problem = problems.find((p) => p.startsWith(variable));
    expect(problem).toBeDefined();
    expect(problem).toContain(hint);
  });

  it('asks for what the listed methods need when IPERNITY_PERMISSIONS is given as methods:', () => {
    expect(loadConfig({ IPERNITY_PERMISSIONS: 'methods:doc.getList,upload.file' }).ipernity.permissions).toEqual({ doc: 'write' });
    expect(loadConfig({ IPERNITY_PERMISSIONS: 'methods: post.get, post.comments.add' }).ipernity.permissions).toEqual({ blog: 'read', post: 'write' });
    expect(loadConfig({ IPERNITY_PERMISSIONS: 'doc:read,profile:read' }).ipernity.permissions).toEqual({ doc: 'read', profile: 'read' });
  });

  it('keeps metrics off the public port in production without METRICS_TOKEN: a listener of their own, on loopback', () => {
    expect(loadConfig(production).metrics).toEqual({ enabled: true, token: undefined, ownListener: true, port: 9464, host: '127.0.0.1' });
    expect(loadConfig({ ...production, METRICS_PORT: '0', METRICS_HOST: '0.0.0.0' }).metrics).toMatchObject({ ownListener: true, port: 0, host: '0.0.0.0' });
    // with a token, on the main port behind it; off, nowhere; outside production, on the main port (the sandbox)
    expect(loadConfig({ ...production, METRICS_TOKEN: 'metrics-secret' }).metrics).toMatchObject({ ownListener: false, token: 'metrics-secret' });
    expect(loadConfig({ ...production, METRICS_ENABLED: 'false' }).metrics).toMatchObject({ enabled: false, ownListener: false });
    expect(loadConfig({}).metrics).toMatchObject({ enabled: true, ownListener: false });
    // the same port as PORT is a mistake only when metrics would listen on it
    expect(loadConfig({ ...production, PORT: '8080', METRICS_PORT: '8080', METRICS_TOKEN: 'metrics-secret' }).metrics.ownListener).toBe(false);
  });

  it('derives one token key per session secret, and takes explicit keys for rotation', () => {
    expect(loadConfig({ ...production, SESSION_SECRET: `${'a'.repeat(32)},${'b'.repeat(32)}` }).tokenKeys).toHaveLength(2);
    const keys = loadConfig({ ...production, TOKEN_ENCRYPTION_KEY: `${'1'.repeat(64)}, ${Buffer.alloc(32, 7).toString('base64')}` }).tokenKeys;
    expect(keys.map((k) => k.key.length)).toEqual([32, 32]);
    expect(keys[0]?.id).not.toBe(keys[1]?.id);
  });
});
