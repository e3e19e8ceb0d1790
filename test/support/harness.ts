import { createCipheriv, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import type TestAgent from 'supertest/lib/agent';
import { loadConfig, type Config } from '../../src/config';
import { createApp, type AppDeps, type AppHandle } from '../../src/app';
import { createLogger } from '../../src/web/logging';
import { createSimulatorApp, type SimulatorOptions } from '../../src/simulator/app';
import type { SimulatedUser } from '../../src/simulator/state';
import type { TokenKey } from '../../src/config';
import { IpernityError } from '../../src/ipernity/errors';

/** A token sealed the way values were before subkeys (`v1`: under the configured key itself), as stored sessions may still hold. */
export function sealedV1(plaintext: string, { id, key }: TokenKey): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from('ipernity-connect token'));
  const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return ['v1', id, iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), ciphertext.toString('base64url')].join('.');
}

export const API_KEY = 'test-api-key-0123456789abcdef';
export const API_SECRET = 'test-api-secret-fedcba9876543210';
export const SESSION_SECRET = 'test-session-secret-that-is-long-enough-0123456789';
/** Tests address the app as supertest does: 127.0.0.1 on an ephemeral port. */
export const PUBLIC_URL = 'http://127.0.0.1';

export interface RunningSimulator extends ReturnType<typeof createSimulatorApp> {
  url: string;
  close(): Promise<void>;
}

/** Listens on `server` at a free loopback port; answers the base URL. */
export function listen(server: http.Server): Promise<string> {
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`));
  });
}

/** The simulator as a real HTTP server on loopback, with the test key registered. */
export async function startSimulator(options: Partial<SimulatorOptions> & { callbackUrl?: string | null; users?: SimulatedUser[] } = {}): Promise<RunningSimulator> {
  const callbackUrl = options.callbackUrl === null ? undefined : (options.callbackUrl ?? `${PUBLIC_URL}/connect/callback`);
  const simulator = createSimulatorApp({
    apps: [{ apiKey: API_KEY, apiSecret: API_SECRET, name: 'Test Site', callbackUrl }],
    openUsers: true,
    control: true,
    ...options,
  });
  const server = http.createServer(simulator.app);
  const url = await listen(server);
  return {
    ...simulator,
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A configuration as production would read it, pointed at the simulator. */
export function testConfig(simulatorUrl: string, env: Record<string, string> = {}): Config {
  return loadConfig({
    NODE_ENV: 'test',
    PUBLIC_URL,
    SESSION_SECRET,
    IPERNITY_API_KEY: API_KEY,
    IPERNITY_API_SECRET: API_SECRET,
    IPERNITY_API_URL: `${simulatorUrl}/api`,
    IPERNITY_AUTHORIZE_URL: `${simulatorUrl}/apps/authorize`,
    IPERNITY_APP_NAME: 'Test Site',
    IPERNITY_TIMEOUT_MS: '2000',
    SESSION_STORE: 'memory',
    LOG_LEVEL: 'info',
    RATE_LIMIT_PER_MINUTE: '0',
    ...env,
  });
}

/** Captures every log line the app writes, for assertions (and leak scans). */
export class LogCapture {
  readonly lines: string[] = [];

  /** A destination for the real logger that keeps every line here. */
  readonly destination = {
    write: (chunk: string): void => {
      this.lines.push(...chunk.split('\n').filter(Boolean));
    },
  };

  events(): Array<Record<string, unknown>> {
    return this.lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((entry) => typeof entry.event === 'string');
  }

  text(): string {
    return this.lines.join('\n');
  }
}

export interface TestApp extends AppHandle {
  logs: LogCapture;
}

/** Builds the app with a log capture (the real logger's redaction included). */
export function buildApp(config: Config, deps: AppDeps = {}): TestApp {
  const logs = new LogCapture();
  const logger = createLogger('info', logs.destination);
  const handle = createApp(config, { logger, ...deps });
  return Object.assign(handle, { logs });
}

/** The CSRF token of the first form on a page. */
export function csrfOf(html: string): string {
  const match = /name="_csrf" value="([^"]+)"/.exec(html);
  if (!match?.[1]) throw new Error('no CSRF token on the page');
  return match[1];
}

export interface FlowOptions {
  query?: string;
  userId?: string;
  decision?: 'authorize' | 'deny';
}

/**
 * Walks the web flow with a cookie-carrying agent: warning page, POST /connect,
 * the simulator's authorization page and decision, then the callback.
 * Answers the callback's response.
 */
export async function walkFlow(agent: TestAgent, simulator: RunningSimulator, options: FlowOptions = {}): Promise<request.Response> {
  const warning = await agent.get(`/connect${options.query ? `?${options.query}` : ''}`).expect(200);
  const fields = Object.fromEntries([...warning.text.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)].map((m) => [m[1], decodeHtml(m[2] as string)]));
  const start = await agent.post('/connect').type('form').send(fields).expect(303);
  const callback = await authorizeAtSimulator(simulator, start.headers.location as string, options);
  return agent.get(callback.pathname + callback.search);
}

/**
 * Opens the signed link at the simulator and answers its redirect to the callback.
 * Like a browser without Fetch Metadata, it sends back the page's CSRF token and cookie.
 */
export async function authorizeAtSimulator(simulator: RunningSimulator, link: string, options: FlowOptions = {}): Promise<URL> {
  const url = new URL(link);
  const browser = request.agent(simulator.url);
  const page = await browser.get(url.pathname + url.search).expect(200);
  const decision = await browser
    .post(url.pathname)
    .type('form')
    .send({ ...Object.fromEntries(url.searchParams), _csrf: csrfOf(page.text), decision: options.decision ?? 'authorize', user_id: options.userId ?? '1234' });
  if (decision.status !== 303) throw new Error(`the simulator answered ${decision.status}: ${decision.text}`);
  return new URL(decision.headers.location as string);
}

export function decodeHtml(value: string): string {
  return value.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

/** A simulator for the whole file and a fresh app for each test, torn down after. */
export interface Fixture {
  readonly simulator: RunningSimulator;
  readonly handle: TestApp;
  /** Replaces this test's app with one built from more environment. */
  rebuild(env: Record<string, string>): TestApp;
}

/** Registers the hooks of a test file that walks flows against the simulator. */
export function useAppAgainstSimulator(env: Record<string, string> = {}, simulatorOptions: Parameters<typeof startSimulator>[0] = {}): Fixture {
  let simulator: RunningSimulator | undefined;
  let handle: TestApp | undefined;
  const apps: TestApp[] = [];
  const build = (extra: Record<string, string>): TestApp => {
    handle = buildApp(testConfig((simulator as RunningSimulator).url, { ...env, ...extra }));
    apps.push(handle);
    return handle;
  };
  beforeAll(async () => {
    simulator = await startSimulator(simulatorOptions);
  });
  afterAll(async () => {
    await simulator?.close();
  });
  beforeEach(() => {
    build({});
  });
  afterEach(async () => {
    jest.restoreAllMocks();
    simulator?.faults.clear();
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });
  return {
    get simulator() {
      return simulator as RunningSimulator;
    },
    get handle() {
      return handle as TestApp;
    },
    rebuild: build,
  };
}

/** The protocol error a call ends in; anything else (or no error) fails the test. */
export async function failure(promise: Promise<unknown>): Promise<IpernityError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof IpernityError)) throw new Error(`expected an IpernityError, got ${String(error)}`);
  return error;
}
