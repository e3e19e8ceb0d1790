'use strict';
/**
 * Helpers shared by the benchmark scripts: child processes pinned to a core,
 * free ports, cookies, and one visitor's connect flow over undici.
 */
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const { setTimeout: sleep } = require('node:timers/promises');
const { request } = require('undici');

const hasTaskset = spawnSync('taskset', ['--version'], { stdio: 'ignore' }).status === 0;

/** A free TCP port on loopback. */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Pins this process (every thread) to `core` when taskset exists. */
function pinSelf(core) {
  if (!hasTaskset) return false;
  return spawnSync('taskset', ['-a', '-pc', String(core), String(process.pid)], { stdio: 'ignore' }).status === 0;
}

/**
 * Spawns `command args` pinned to `core` (taskset execs, so the child's pid is
 * the command's own). stdout goes to `logFile` (or is ignored).
 */
function spawnPinned(core, command, args, { env, logFile, cwd } = {}) {
  const out = logFile ? fs.openSync(logFile, 'a') : 'ignore';
  const [cmd, argv] = hasTaskset && core !== undefined ? ['taskset', ['-c', String(core), command, ...args]] : [command, args];
  const child = spawn(cmd, argv, { env: env ?? process.env, cwd, stdio: ['ignore', out, out] });
  if (typeof out === 'number') fs.closeSync(out);
  return child;
}

/** Waits until something listens on `port`. */
async function waitForPort(port, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.end();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`nothing listened on port ${port} within ${timeoutMs} ms`);
}

/** Sends SIGTERM and waits for the exit; answers the exit code (SIGKILL after `timeoutMs`). */
function stopChild(child, timeoutMs = 15_000) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => {
    const force = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(force);
      resolve(code);
    });
    child.kill('SIGTERM');
  });
}

/** Peak and current resident memory of a process, in bytes (Linux /proc). */
function memoryOf(pid) {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
    return { peak: kb('VmHWM'), current: kb('VmRSS') };
  } catch {
    return { peak: NaN, current: NaN };
  }
}

/** CPU time (user+system, seconds) a process has used so far (Linux /proc). */
function cpuSecondsOf(pid) {
  try {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
  } catch {
    return NaN;
  }
}

/** Busy seconds of one core so far, every process included (Linux /proc/stat; iowait and idle left out). */
function coreBusySeconds(core) {
  try {
    const line = fs.readFileSync('/proc/stat', 'utf8').split('\n').find((l) => l.startsWith(`cpu${core} `));
    const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
    return (user + nice + system + irq + softirq + steal) / 100;
  } catch {
    return NaN;
  }
}

/** Watches CPU use from now: answers, per second of wall time, each core's busy share and each named process's. */
function cpuWatch(pids = {}) {
  const started = performance.now();
  const cores = [0, 1].map(coreBusySeconds);
  const self = process.cpuUsage();
  const before = Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, cpuSecondsOf(pid)]));
  return function stop() {
    const wall = (performance.now() - started) / 1000;
    const mine = process.cpuUsage(self);
    const shares = { core0: (coreBusySeconds(0) - cores[0]) / wall, core1: (coreBusySeconds(1) - cores[1]) / wall, loadGenerator: (mine.user + mine.system) / 1e6 / wall };
    for (const [name, pid] of Object.entries(pids)) shares[name] = (cpuSecondsOf(pid) - before[name]) / wall;
    return { wall, ...shares };
  };
}

/** The bearer token the benchmark's production servers keep `/metrics` behind (so it stays on their main port). */
const METRICS_TOKEN = 'bench-metrics-token';

/** A Prometheus text exposition as a map from `name{labels}` to value. */
async function scrapeMetrics(dispatcher, origin) {
  const answer = await exchange(dispatcher, origin, '/metrics', { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
  if (answer.status !== 200) throw new Error(`/metrics answered ${answer.status}`);
  const values = new Map();
  for (const line of answer.text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    values.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return values;
}

/** Adds the `Set-Cookie` headers of an answer to a cookie jar (a Map). */
function keepCookies(jar, setCookie) {
  const list = setCookie === undefined ? [] : Array.isArray(setCookie) ? setCookie : [setCookie];
  for (const line of list) {
    const pair = line.split(';', 1)[0];
    const eq = pair.indexOf('=');
    if (eq > 0) jar.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
  }
  return jar;
}

function cookieHeader(jar) {
  return [...jar].map(([name, value]) => `${name}=${value}`).join('; ');
}

/** The session id inside an express-session cookie value (`s:<sid>.<signature>`, URL-encoded). */
function sessionIdOf(cookieValue) {
  const decoded = decodeURIComponent(cookieValue);
  return decoded.startsWith('s:') ? decoded.slice(2, decoded.lastIndexOf('.')) : undefined;
}

function decodeHtml(value) {
  return value.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

/** The hidden fields of the warning page's form. */
function hiddenFields(html) {
  return Object.fromEntries([...html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)].map((m) => [m[1], decodeHtml(m[2])]));
}

/** One HTTP exchange: status, headers, body text, and the elapsed milliseconds. */
async function exchange(dispatcher, origin, path, { method = 'GET', headers = {}, body } = {}) {
  const started = performance.now();
  const response = await request(origin + path, { method, headers, body, dispatcher });
  const text = await response.body.text();
  return { status: response.statusCode, headers: response.headers, text, ms: performance.now() - started };
}

class FlowError extends Error {
  constructor(step, status, detail) {
    super(`${step}: ${status}${detail ? ` ${detail}` : ''}`);
    this.step = step;
    this.status = status;
  }
}

const form = (fields) => new URLSearchParams(fields).toString();
const FORM = 'application/x-www-form-urlencoded';
/** What Chromium sends with a page request typed in the address bar: a visitor's first view of the warning page. */
const BROWSER_NAVIGATION = { 'sec-fetch-site': 'none', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document', 'sec-fetch-user': '?1' };

/**
 * The single-request loads the profiler and the what-if runs drive, by name:
 * the store the server runs with, and the request, made from a warmed
 * server's inputs (a connected session cookie, a CSRF cookie and its form).
 */
const REQUEST_CASES = {
  'warning-anon': { store: 'sqlite', request: () => ({ path: '/connect', headers: BROWSER_NAVIGATION }) },
  'warning-session-sqlite': { store: 'sqlite', request: ({ sessionCookie }) => ({ path: '/connect', headers: { cookie: sessionCookie } }) },
  'warning-session-redis': { store: 'redis', request: ({ sessionCookie }) => ({ path: '/connect', headers: { cookie: sessionCookie } }) },
  'post-sqlite': { store: 'sqlite', request: ({ csrfCookie, postBody }) => ({ path: '/connect', method: 'POST', headers: { cookie: csrfCookie, 'content-type': FORM }, body: postBody }) },
  'post-redis': { store: 'redis', request: ({ csrfCookie, postBody }) => ({ path: '/connect', method: 'POST', headers: { cookie: csrfCookie, 'content-type': FORM }, body: postBody }) },
  // what a site's own pages ask on every view, for a connected visitor
  'connection-redis': { store: 'redis', request: ({ sessionCookie }) => ({ path: '/connection', headers: { cookie: sessionCookie } }) },
};

/**
 * One visitor's whole web flow: warning page, POST /connect, the simulator's
 * authorization page and decision (as `userId`), the callback, then
 * /connection. Throws a FlowError naming the step that went wrong; answers
 * the cookie jar and the /connection JSON.
 */
async function walkFlow({ app, sim, appOrigin, simOrigin, userId, query = 'perm_doc=read&return_to=%2Fafter', jar = new Map(), appFor }) {
  const appAt = (step) => (appFor ? appFor(step) : { dispatcher: app, origin: appOrigin });
  let at = appAt('warning');
  const warning = await exchange(at.dispatcher, at.origin, `/connect?${query}`, { headers: { cookie: cookieHeader(jar) } });
  if (warning.status !== 200) throw new FlowError('warning', warning.status);
  keepCookies(jar, warning.headers['set-cookie']);
  at = appAt('start');
  const start = await exchange(at.dispatcher, at.origin, '/connect', {
    method: 'POST',
    headers: { cookie: cookieHeader(jar), 'content-type': FORM, origin: at.origin },
    body: form(hiddenFields(warning.text)),
  });
  if (start.status !== 303) throw new FlowError('start', start.status);
  keepCookies(jar, start.headers['set-cookie']);
  const link = new URL(start.headers.location);
  const page = await exchange(sim, simOrigin, link.pathname + link.search);
  if (page.status !== 200) throw new FlowError('authorize page', page.status);
  // the simulator's form is CSRF-protected: its hidden fields (the `_csrf` token among them) and its cookie go back with the decision
  const decision = await exchange(sim, simOrigin, link.pathname, {
    method: 'POST',
    headers: { 'content-type': FORM, cookie: cookieHeader(keepCookies(new Map(), page.headers['set-cookie'])) },
    body: form({ ...hiddenFields(page.text), decision: 'authorize', user_id: String(userId) }),
  });
  if (decision.status !== 303) throw new FlowError('authorize decision', decision.status);
  const back = new URL(decision.headers.location);
  at = appAt('callback');
  const callback = await exchange(at.dispatcher, at.origin, back.pathname + back.search, { headers: { cookie: cookieHeader(jar) } });
  if (callback.status !== 303) throw new FlowError('callback', callback.status, /Error code: ([A-Z_]+)/.exec(callback.text)?.[1]);
  keepCookies(jar, callback.headers['set-cookie']);
  at = appAt('connection');
  const connection = await exchange(at.dispatcher, at.origin, '/connection', { headers: { cookie: cookieHeader(jar) } });
  if (connection.status !== 200) throw new FlowError('connection', connection.status);
  const json = JSON.parse(connection.text);
  // the doc level the query asked for (`perm_doc=write` for the upload rows), read by default
  const docLevel = new URLSearchParams(query).get('perm_doc') ?? 'read';
  if (!json.connected || json.user?.userId !== String(userId) || json.user?.username !== `user${userId}` || json.permissions?.doc !== docLevel) {
    throw new FlowError('connection', connection.status, `wrong answer ${connection.text.slice(0, 200)}`);
  }
  return { jar, json, callbackLocation: callback.headers.location };
}

/** The median of a list (the mean of the middle two for an even count). */
const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

const say = (line) => process.stdout.write(`${line}\n`);
const pct = (share) => (Number.isFinite(share) ? `${(share * 100).toFixed(0)}%` : '—');
const fmt = (value, digits = 0) => (Number.isFinite(value) ? value.toFixed(digits) : '—');

/** Latency percentiles (ms) of a list of samples. */
function percentiles(samples) {
  const sorted = Float64Array.from(samples).sort();
  const at = (p) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] : NaN);
  return { p50: at(50), p90: at(90), p99: at(99), max: sorted.length ? sorted[sorted.length - 1] : NaN, count: sorted.length };
}

/** The session secret of every server under test (production refuses a short one). */
const SESSION_SECRET = 'bench-session-secret-long-enough-for-production-0123456789';

/**
 * The environment of a server under test as production reads it, on
 * 127.0.0.1:`port`, pointed at the simulator, with no flow or gateway rate
 * limit in the way; `extra` adds or replaces variables.
 */
function serverEnv({ node, port, simOrigin, apiKey, apiSecret, dataDir }, extra = {}) {
  return {
    ...process.env,
    ...node.env,
    NODE_ENV: 'production',
    PORT: String(port),
    PUBLIC_URL: `http://127.0.0.1:${port}`,
    METRICS_TOKEN,
    SESSION_SECRET,
    IPERNITY_API_KEY: apiKey,
    IPERNITY_API_SECRET: apiSecret,
    IPERNITY_API_URL: `${simOrigin}/api`,
    IPERNITY_AUTHORIZE_URL: `${simOrigin}/apps/authorize`,
    DATA_DIR: dataDir,
    LOG_LEVEL: 'info',
    RATE_LIMIT_PER_MINUTE: '0',
    API_RATE_LIMIT_PER_MINUTE: '0',
    ...extra,
  };
}

/** On SIGINT or SIGTERM, kills `children` (a list the caller keeps adding to) and exits: an interrupted run leaves no process behind. */
function killOnInterrupt(children) {
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.once(signal, () => {
      for (const child of children) child.kill('SIGKILL');
      process.exit(130);
    });
  }
}

module.exports = {
  killOnInterrupt,
  serverEnv,
  SESSION_SECRET,
  BROWSER_NAVIGATION,
  FORM,
  REQUEST_CASES,
  coreBusySeconds,
  cpuWatch,
  scrapeMetrics,
  METRICS_TOKEN,
  FlowError,
  cookieHeader,
  cpuSecondsOf,
  exchange,
  fmt,
  form,
  freePort,
  hasTaskset,
  hiddenFields,
  keepCookies,
  median,
  memoryOf,
  pct,
  percentiles,
  pinSelf,
  say,
  sessionIdOf,
  spawnPinned,
  stopChild,
  waitForPort,
  walkFlow,
};
