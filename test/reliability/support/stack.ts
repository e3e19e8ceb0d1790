/**
 * The pieces the reliability suite runs against: the built server as a real
 * child process (`node dist/server.js`, as in production), a private
 * redis-server that can be stopped and restarted, the simulator over HTTP,
 * and one visitor's flow over undici with a cookie jar.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request, type Dispatcher } from 'undici';
import { API_KEY, API_SECRET, SESSION_SECRET, startSimulator, type RunningSimulator } from '../../support/harness';
import { freePort } from '../../support/redis';

export { API_KEY, API_SECRET, SESSION_SECRET };

const ROOT = path.join(__dirname, '..', '..', '..');
const SERVER_ENTRY = path.join(ROOT, 'dist', 'server.js');
/** Figures the summary reporter collects into bench/RESULTS.md. */
export const FIGURES_DIR = path.join(ROOT, 'test-output', 'reliability');

/** A folder for one test file's logs and data, removed by `removeScratch`. */
export function scratch(name: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `ipernity-connect-${name}-`));
}

export function removeScratch(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}

/** One shared HTTP client: keep-alive, bounded waits so a hanging server fails a test instead of stalling it. */
export const client = new Agent({ connections: 64, headersTimeout: 15_000, bodyTimeout: 15_000, keepAliveTimeout: 4_000 });

/** Closes the shared client's connections (each test file's last step). */
export async function closeClient(): Promise<void> {
  await client.close();
}

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  ms: number;
}

/** One HTTP exchange; network errors reject. */
export async function exchange(
  origin: string,
  pathAndQuery: string,
  options: { method?: Dispatcher.HttpMethod; headers?: Record<string, string>; body?: string; dispatcher?: Dispatcher } = {},
): Promise<Answer> {
  const started = performance.now();
  const response = await request(origin + pathAndQuery, { method: options.method ?? 'GET', headers: options.headers, body: options.body, dispatcher: options.dispatcher ?? client });
  const text = await response.body.text();
  return { status: response.statusCode, headers: response.headers, text, ms: performance.now() - started };
}

export type Jar = Map<string, string>;

export function keepCookies(jar: Jar, setCookie: string | string[] | undefined): Jar {
  const lines = setCookie === undefined ? [] : Array.isArray(setCookie) ? setCookie : [setCookie];
  for (const line of lines) {
    const pair = line.split(';', 1)[0] as string;
    const eq = pair.indexOf('=');
    if (eq > 0) jar.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
  }
  return jar;
}

export function cookieHeader(jar: Jar): string {
  return [...jar].map(([name, value]) => `${name}=${value}`).join('; ');
}

function decodeHtml(value: string): string {
  return value.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

/** The hidden fields of the first form of a page. */
export function hiddenFields(html: string): Record<string, string> {
  return Object.fromEntries([...html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)].map((m) => [m[1] as string, decodeHtml(m[2] as string)]));
}

/** The stable error code an error page shows ("Error code: X"). */
export function errorCodeOf(html: string): string | undefined {
  return /class="error-code"><small>[^<]*?\b([A-Z][A-Z_]{2,})\b/.exec(html)?.[1];
}

/** The code of a JSON error answer (`{"error":{"code":...}}`); an HTML page where JSON was due says so. */
export function jsonErrorCodeOf(text: string): string {
  try {
    const code = (JSON.parse(text) as { error?: { code?: unknown } }).error?.code;
    return typeof code === 'string' ? code : 'JSON_WITHOUT_CODE';
  } catch {
    return `NOT_JSON(${errorCodeOf(text) ?? 'no error code'})`;
  }
}

/** A flow step answered something other than what a working flow gets. */
export class FlowError extends Error {
  constructor(
    readonly step: string,
    readonly status: number,
    readonly code?: string,
    readonly ms = 0,
  ) {
    super(`${step} answered ${status}${code ? ` ${code}` : ''}`);
  }
}

export interface FlowTargets {
  /** Where each step of the site is sent: lets a flow start on one instance and finish on another. */
  app: (step: 'warning' | 'start' | 'callback' | 'connection') => string;
  simulator: string;
}

export interface FlowResult {
  jar: Jar;
  connection: { connected: boolean; user?: { userId: string; username: string; realname: string }; permissions?: Record<string, string> };
  /** Each site step's answer time, ms. */
  timings: number[];
}

const FORM = 'application/x-www-form-urlencoded';

/**
 * One visitor's web flow: warning page, POST /connect, the simulator's
 * authorization page and decision as `userId`, the callback, then
 * /connection, which must name that user with doc:read. Throws a FlowError
 * naming the step that went wrong.
 */
export async function walkFlow(targets: FlowTargets, userId: number, jar: Jar = new Map()): Promise<FlowResult> {
  const pending = await startFlow(targets, userId, jar);
  return finishFlow(targets, userId, pending);
}

/** A flow up to ipernity's redirect back: the browser's cookies and the callback to call. */
export interface PendingFlow {
  jar: Jar;
  callbackPath: string;
  timings: number[];
}

async function siteStep(targets: FlowTargets, jar: Jar, timings: number[], step: 'warning' | 'start' | 'callback' | 'connection', pathAndQuery: string, options: Parameters<typeof exchange>[2] = {}): Promise<Answer> {
  const origin = targets.app(step);
  const answer = await exchange(origin, pathAndQuery, { ...options, headers: { cookie: cookieHeader(jar), ...options.headers } });
  timings.push(answer.ms);
  keepCookies(jar, answer.headers['set-cookie']);
  return answer;
}

/** Warning page, POST /connect, then the simulator's authorization page and decision as `userId`. */
export async function startFlow(targets: FlowTargets, userId: number, jar: Jar = new Map()): Promise<PendingFlow> {
  const timings: number[] = [];
  const warning = await siteStep(targets, jar, timings, 'warning', '/connect?perm_doc=read&return_to=%2Fafter');
  if (warning.status !== 200) throw new FlowError('warning', warning.status, errorCodeOf(warning.text), warning.ms);
  const start = await siteStep(targets, jar, timings, 'start', '/connect', {
    method: 'POST',
    headers: { 'content-type': FORM, origin: targets.app('start') },
    body: new URLSearchParams(hiddenFields(warning.text)).toString(),
  });
  if (start.status !== 303) throw new FlowError('start', start.status, errorCodeOf(start.text), start.ms);
  const link = new URL(start.headers.location as string);
  const page = await exchange(targets.simulator, link.pathname + link.search);
  if (page.status !== 200) throw new FlowError('authorize page', page.status);
  // the simulator's form is CSRF-protected: send back its hidden fields (the `_csrf` token among them) and its cookie
  const decision = await exchange(targets.simulator, link.pathname, {
    method: 'POST',
    headers: { 'content-type': FORM, cookie: cookieHeader(keepCookies(new Map(), page.headers['set-cookie'])) },
    body: new URLSearchParams({ ...hiddenFields(page.text), decision: 'authorize', user_id: String(userId) }).toString(),
  });
  if (decision.status !== 303) throw new FlowError('authorize decision', decision.status);
  const back = new URL(decision.headers.location as string);
  return { jar, callbackPath: back.pathname + back.search, timings };
}

/** The callback, then /connection, which must name `userId` with doc:read. */
export async function finishFlow(targets: FlowTargets, userId: number, pending: PendingFlow): Promise<FlowResult> {
  const { jar, timings } = pending;
  const callback = await siteStep(targets, jar, timings, 'callback', pending.callbackPath);
  if (callback.status !== 303 || callback.headers.location !== '/after') throw new FlowError('callback', callback.status, errorCodeOf(callback.text), callback.ms);
  const connection = await connectionOf(targets.app('connection'), jar);
  timings.push(connection.ms);
  if (connection.status !== 200) throw new FlowError('connection', connection.status, jsonErrorCodeOf(connection.text), connection.ms);
  if (!connection.json.connected || connection.json.user?.userId !== String(userId) || connection.json.permissions?.doc !== 'read') {
    throw new FlowError('connection', connection.status, `WRONG_ANSWER ${JSON.stringify(connection.json)}`);
  }
  return { jar, connection: connection.json, timings };
}

/** GET /connection with a browser's cookies. */
export async function connectionOf(origin: string, jar: Jar): Promise<{ status: number; json: FlowResult['connection']; text: string; ms: number }> {
  const answer = await exchange(origin, '/connection', { headers: { cookie: cookieHeader(jar) } });
  keepCookies(jar, answer.headers['set-cookie']);
  let json: FlowResult['connection'] = { connected: false };
  try {
    json = JSON.parse(answer.text) as FlowResult['connection'];
  } catch {
    // a non-JSON answer is checked by the caller through `status`
  }
  return { status: answer.status, json, text: answer.text, ms: answer.ms };
}

/** Runs `task(i)` for i in [0, count) on `concurrency` workers. */
export async function inParallel<T>(count: number, concurrency: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const results = new Array<T>(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count) {
        const i = next;
        next += 1;
        results[i] = await task(i);
      }
    }),
  );
  return results;
}

/** A private redis-server whose data survives a restart (an RDB dump in its own folder). */
export interface Redis {
  port: number;
  url: string;
  dir: string;
  process: ChildProcess;
}

/** Starts redis-server on `port` (a free one when not given), loading the dump in `dir` if there is one. */
export async function startRedis(dir: string, port?: number): Promise<Redis> {
  const chosen = port ?? (await freePort());
  const child = spawn('redis-server', ['--port', String(chosen), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--loglevel', 'warning'], { stdio: 'ignore' });
  try {
    await waitForRedis(chosen, 10_000);
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  return { port: chosen, url: `redis://127.0.0.1:${chosen}`, dir, process: child };
}

async function waitForRedis(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const answer = await new Promise<string>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.setTimeout(1000, () => socket.destroy());
      let text = '';
      socket.once('connect', () => socket.write('PING\r\n'));
      socket.on('data', (chunk) => {
        text += chunk.toString();
        if (text.includes('\r\n')) socket.end();
      });
      socket.once('close', () => resolve(text));
      socket.once('error', () => resolve(''));
    });
    if (answer.startsWith('+PONG')) return;
    await sleep(50);
  }
  throw new Error(`redis-server did not answer on ${port} within ${timeoutMs} ms`);
}

/** Stops redis-server after writing its dump, as a Redis with persistence does on SIGTERM. */
export async function stopRedis(redis: Redis): Promise<void> {
  if (redis.process.exitCode !== null || redis.process.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => redis.process.once('exit', () => resolve()));
  await new Promise<void>((resolve) => {
    const socket = net.connect(redis.port, '127.0.0.1', () => socket.end('SHUTDOWN SAVE\r\n'));
    socket.once('close', () => resolve());
    socket.once('error', () => resolve());
  });
  const force = setTimeout(() => redis.process.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(force);
}

export interface ServerOptions {
  simulatorUrl: string;
  store: 'redis' | 'sqlite';
  redisUrl?: string;
  dataDir?: string;
  port?: number;
  logFile: string;
  env?: Record<string, string>;
}

/** The built server as a child process, logging JSON lines to a file. */
export interface ServerProcess {
  origin: string;
  port: number;
  child: ChildProcess;
  logFile: string;
  /** Resolves with the exit code once the process has exited. */
  exited: Promise<number | null>;
  /** SIGTERM, then the exit code (SIGKILL after `timeoutMs`). */
  stop(timeoutMs?: number): Promise<number | null>;
}

export async function startServer(options: ServerOptions): Promise<ServerProcess> {
  const port = options.port ?? (await freePort());
  const origin = `http://127.0.0.1:${port}`;
  const out = fs.openSync(options.logFile, 'a');
  const child = spawn(process.execPath, [SERVER_ENTRY], {
    cwd: ROOT,
    stdio: ['ignore', out, out],
    env: {
      PATH: process.env.PATH,
      NODE_ENV: 'production',
      PORT: String(port),
      // several servers run at once: each puts its metrics listener on a port of its own
      METRICS_PORT: '0',
      PUBLIC_URL: origin,
      SESSION_SECRET,
      IPERNITY_API_KEY: API_KEY,
      IPERNITY_API_SECRET: API_SECRET,
      IPERNITY_API_URL: `${options.simulatorUrl}/api`,
      IPERNITY_AUTHORIZE_URL: `${options.simulatorUrl}/apps/authorize`,
      IPERNITY_APP_NAME: 'Test Site',
      SESSION_STORE: options.store,
      DATA_DIR: options.dataDir ?? path.join(path.dirname(options.logFile), 'data'),
      ...(options.redisUrl ? { REDIS_URL: options.redisUrl } : {}),
      LOG_LEVEL: 'info',
      RATE_LIMIT_PER_MINUTE: '0',
      ...options.env,
    },
  });
  fs.closeSync(out);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the server exited with ${child.exitCode} at start-up:\n${fs.readFileSync(options.logFile, 'utf8').slice(-2000)}`);
    const ready = await fetch(`${origin}/readyz`).then((r) => r.status, () => 0);
    if (ready === 200) break;
    if (Date.now() > deadline) throw new Error(`the server was not ready within 15 s (last /readyz ${ready})`);
    await sleep(50);
  }
  return {
    origin,
    port,
    child,
    logFile: options.logFile,
    exited,
    async stop(timeoutMs = 15_000) {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      const force = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.kill('SIGTERM');
      const code = await exited;
      clearTimeout(force);
      return code;
    },
  };
}

export interface LogEntry {
  level: number;
  event?: string;
  code?: string;
  msg?: string;
  res?: { statusCode?: number };
  [key: string]: unknown;
}

/** The server's JSON log lines (a line that is not JSON is kept as a level-60 entry, so it gets noticed). */
export function readLog(logFile: string): LogEntry[] {
  if (!fs.existsSync(logFile)) return [];
  return fs
    .readFileSync(logFile, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      try {
        return JSON.parse(line) as LogEntry;
      } catch {
        return { level: 60, msg: `not JSON: ${line.slice(0, 300)}` };
      }
    });
}

/**
 * What is wrong in a server's log, one line per kind: any unhandled
 * rejection; any line at level 50+ other than a request's line with one of
 * `allowed.statuses` or a `request_failed` with one of `allowed.codes`;
 * and output that is not JSON (stack traces printed to stderr).
 */
export function logTrouble(logFile: string, allowed: { statuses?: number[]; codes?: string[] } = {}): string[] {
  const kinds = new Map<string, { count: number; first: string }>();
  const note = (kind: string, line: string): void => {
    const known = kinds.get(kind);
    if (known) known.count += 1;
    else kinds.set(kind, { count: 1, first: line.slice(0, 300) });
  };
  const text = fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '';
  for (const line of text.split('\n').filter(Boolean)) {
    let entry: LogEntry;
    try {
      entry = JSON.parse(line) as LogEntry;
    } catch {
      note('output that is not a JSON log line (stderr)', line);
      continue;
    }
    if (entry.event === 'unhandled_rejection') note('unhandled_rejection', line);
    else if (entry.level < 50) continue;
    else if (entry.event === 'request_failed' && entry.code && allowed.codes?.includes(entry.code)) continue;
    else if (entry.res?.statusCode !== undefined && allowed.statuses?.includes(entry.res.statusCode)) continue;
    else note(`level ${entry.level} ${entry.event ?? entry.msg ?? ''} ${entry.code ?? entry.res?.statusCode ?? ''}`.trim(), line);
  }
  return [...kinds].map(([kind, { count, first }]) => `${path.basename(logFile)}: ${count} × ${kind}; first: ${first}`);
}

/** The simulator over HTTP on loopback, the callback registered at `callbackOrigin`. */
export async function startUpstream(callbackOrigin = 'http://127.0.0.1'): Promise<RunningSimulator> {
  return startSimulator({ callbackUrl: `${callbackOrigin}/connect/callback` });
}

/** Adds figures for the closing summary (bench/RESULTS.md's Reliability section). */
export function recordFigures(name: string, figures: Record<string, number | string>): void {
  fs.mkdirSync(FIGURES_DIR, { recursive: true });
  const file = path.join(FIGURES_DIR, `${name}.json`);
  const current = fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, number | string>) : {};
  fs.writeFileSync(file, JSON.stringify({ ...current, ...figures }, null, 2));
}

/** Every secret a response must never show: the API secret and each token the simulator issued. */
export function secretsOf(simulator: RunningSimulator): string[] {
  return [API_SECRET, ...simulator.state.issuedTokens()];
}
