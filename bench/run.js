'use strict';
/**
 * The benchmark: `npm run bench` (builds, then runs this file).
 *
 * Starts, each in its own child process on loopback, a bare Express 5 "hello"
 * (the reference), the built server (`dist/server.js`, once with the SQLite
 * store and once with Redis on a private redis-server) and the ipernity
 * simulator, and drives them from this process. Throughput cases alternate
 * reference and case runs (ref, case, ref, case, ..., ref), so every ratio
 * is measured side by side in the same run. With taskset, the server under
 * test and the reference run on core 1; this load generator, the simulator
 * and redis-server on core 0.
 *
 * Options: --rounds N (3), --seconds S per run (3), --flow-seconds S (10),
 * --callbacks N (3000), --quick (1 round of 2 s, 4 s of flows),
 * --no-write (do not touch bench/RESULTS.md), --profile (see profile.js).
 */
const { execSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { setTimeout: sleep } = require('node:timers/promises');
const autocannon = require('autocannon');
const { Pool } = require('undici');
const lib = require('./lib');
const { writeSection } = require('./results');

const ROOT = path.join(__dirname, '..');
const API_KEY = 'bench-api-key-0123456789abcdef';
const API_SECRET = 'bench-api-secret-fedcba9876543210';
const SESSION_SECRET = 'bench-session-secret-long-enough-for-production-0123456789';
const REDIS_PREFIX = 'ipernity-connect:';
const SERVER_CORE = 1;
const LOAD_CORE = 0;
const UPSTREAM_DELAY_MS = 20;

function option(name, fallback) {
  const at = process.argv.indexOf(`--${name}`);
  return at === -1 ? fallback : Number(process.argv[at + 1]);
}
const QUICK = process.argv.includes('--quick');
const SETTINGS = {
  rounds: option('rounds', QUICK ? 1 : 3),
  seconds: option('seconds', QUICK ? 2 : 3),
  flowSeconds: option('flow-seconds', QUICK ? 4 : 10),
  callbacks: option('callbacks', QUICK ? 1000 : 3000),
  connections: option('connections', 10),
  concurrency: 50,
};

const say = (line) => process.stdout.write(`${line}\n`);

/** Everything started for the run, so it can all be stopped. */
class Rig {
  constructor() {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ipernity-connect-bench-'));
    this.children = [];
  }

  async start() {
    [this.redisPort, this.simPort, this.appPort, this.refPort] = await Promise.all([lib.freePort(), lib.freePort(), lib.freePort(), lib.freePort()]);
    this.appOrigin = `http://127.0.0.1:${this.appPort}`;
    this.simOrigin = `http://127.0.0.1:${this.simPort}`;
    this.refOrigin = `http://127.0.0.1:${this.refPort}`;
    this.redis = this.#spawn(LOAD_CORE, 'redis-server', ['--port', String(this.redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir]);
    this.simulator = this.#spawn(LOAD_CORE, process.execPath, [path.join(ROOT, 'dist/simulator/server.js')], {
      env: { ...process.env, SIMULATOR_PORT: String(this.simPort), SIMULATOR_API_KEY: API_KEY, SIMULATOR_API_SECRET: API_SECRET, SIMULATOR_CALLBACK_URL: `${this.appOrigin}/connect/callback` },
    });
    this.reference = this.#spawn(SERVER_CORE, process.execPath, [path.join(__dirname, 'reference-server.js')], { env: { ...process.env, PORT: String(this.refPort), NODE_ENV: 'production' } });
    await Promise.all([lib.waitForPort(this.redisPort), lib.waitForPort(this.simPort), lib.waitForPort(this.refPort)]);
    this.sim = new Pool(this.simOrigin, { connections: SETTINGS.concurrency });
  }

  /** The server with one session store, pinned to the server core, logging at info to a file. */
  async startServer(store, { extraNodeArgs = [], tag = store } = {}) {
    const logFile = path.join(this.dir, `server-${tag}.log`);
    const env = {
      ...process.env,
      NODE_ENV: 'production',
      PORT: String(this.appPort),
      PUBLIC_URL: this.appOrigin,
      SESSION_SECRET,
      IPERNITY_API_KEY: API_KEY,
      IPERNITY_API_SECRET: API_SECRET,
      IPERNITY_API_URL: `${this.simOrigin}/api`,
      IPERNITY_AUTHORIZE_URL: `${this.simOrigin}/apps/authorize`,
      IPERNITY_TIMEOUT_MS: '5000',
      SESSION_STORE: store,
      DATA_DIR: path.join(this.dir, `data-${tag}`),
      REDIS_URL: `redis://127.0.0.1:${this.redisPort}`,
      LOG_LEVEL: 'info',
      RATE_LIMIT_PER_MINUTE: '0',
    };
    const child = this.#spawn(SERVER_CORE, process.execPath, [...extraNodeArgs, path.join(ROOT, 'dist/server.js')], { env, logFile, cwd: ROOT });
    await lib.waitForPort(this.appPort);
    // ready means the store answers too
    for (let i = 0; i < 100; i += 1) {
      const ready = await fetch(`${this.appOrigin}/readyz`).then((r) => r.status, () => 0);
      if (ready === 200) break;
      await sleep(50);
    }
    const app = new Pool(this.appOrigin, { connections: SETTINGS.concurrency });
    return { child, app, logFile, dataDir: env.DATA_DIR, store };
  }

  async stopServer(server) {
    await server.app.close();
    const code = await lib.stopChild(server.child);
    this.children = this.children.filter((child) => child !== server.child);
    return code;
  }

  #spawn(core, command, args, options = {}) {
    const child = lib.spawnPinned(core, command, args, options);
    this.children.push(child);
    return child;
  }

  async stop() {
    await this.sim?.close().catch(() => undefined);
    await Promise.all(this.children.map((child) => lib.stopChild(child, 5000)));
  }
}

/** One autocannon run; latencies of every answer (not only 2xx) from the `response` event. */
async function cannon(origin, request, seconds, watchPid) {
  const latencies = [];
  const statuses = {};
  const cpuBefore = process.cpuUsage();
  const serverCpuBefore = watchPid ? lib.cpuSecondsOf(watchPid) : NaN;
  const started = performance.now();
  const instance = autocannon({ url: origin + request.path, method: request.method ?? 'GET', headers: request.headers, body: request.body, connections: SETTINGS.connections, duration: seconds });
  instance.on('response', (_client, status, _bytes, ms) => {
    latencies.push(ms);
    statuses[status] = (statuses[status] ?? 0) + 1;
  });
  const result = await instance;
  const wall = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  const p = lib.percentiles(latencies);
  return {
    rps: latencies.length / result.duration,
    p50: p.p50,
    p99: p.p99,
    statuses,
    errors: result.errors + result.timeouts,
    genCpu: (cpu.user + cpu.system) / 1e6 / wall,
    serverCpu: watchPid ? (lib.cpuSecondsOf(watchPid) - serverCpuBefore) / wall : NaN,
  };
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

/**
 * A throughput case against the reference, alternating: ref, case, ref, ...,
 * case, ref. Each case run's ratio is to the mean of the reference runs on
 * either side; the figure is the median ratio.
 */
async function compare(rig, server, name, request, expectedStatus) {
  const reference = { path: '/' };
  await cannon(rig.refOrigin, reference, 1);
  await cannon(rig.appOrigin, request, 1);
  const refs = [await cannon(rig.refOrigin, reference, SETTINGS.seconds, rig.reference.pid)];
  const runs = [];
  for (let round = 0; round < SETTINGS.rounds; round += 1) {
    runs.push(await cannon(rig.appOrigin, request, SETTINGS.seconds, server.child.pid));
    refs.push(await cannon(rig.refOrigin, reference, SETTINGS.seconds, rig.reference.pid));
  }
  const ratios = runs.map((run, i) => run.rps / ((refs[i].rps + refs[i + 1].rps) / 2));
  const unexpected = runs.reduce((sum, run) => sum + run.errors + Object.entries(run.statuses).filter(([status]) => Number(status) !== expectedStatus).reduce((s, [, n]) => s + n, 0), 0);
  const row = {
    name,
    rps: median(runs.map((r) => r.rps)),
    p50: median(runs.map((r) => r.p50)),
    p99: median(runs.map((r) => r.p99)),
    ratio: median(ratios),
    ratios,
    refRps: median(refs.map((r) => r.rps)),
    refP50: median(refs.map((r) => r.p50)),
    refP99: median(refs.map((r) => r.p99)),
    serverCpu: median(runs.map((r) => r.serverCpu)),
    genCpu: Math.max(...runs.map((r) => r.genCpu), ...refs.map((r) => r.genCpu)),
    unexpected,
  };
  say(`  ${name}: ${row.rps.toFixed(0)} req/s (ref ${row.refRps.toFixed(0)}), ratio ${row.ratio.toFixed(3)} [${ratios.map((r) => r.toFixed(3)).join(', ')}], p50 ${row.p50.toFixed(2)} ms, p99 ${row.p99.toFixed(2)} ms, server CPU ${(row.serverCpu * 100).toFixed(0)}%, load CPU ≤ ${(row.genCpu * 100).toFixed(0)}%, unexpected ${unexpected}`);
  return row;
}

/** Runs `task(i)` for i in [0, count) with `concurrency` workers; answers when all are done. */
async function pool(count, concurrency, task) {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const i = next;
        next += 1;
        await task(i);
      }
    }),
  );
}

let nextUserId = 10_000_000;

/** A browser's CSRF cookie and the matching form token, read from one warning page. */
async function csrfPair(rig, server) {
  const page = await lib.exchange(server.app, rig.appOrigin, '/connect?perm_doc=read');
  const jar = lib.keepCookies(new Map(), page.headers['set-cookie']);
  return { cookie: lib.cookieHeader(jar), token: lib.hiddenFields(page.text)._csrf, jar };
}

async function setFault(rig, fault) {
  const answer = await lib.exchange(rig.sim, rig.simOrigin, '/__simulator/faults', fault
    ? { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(fault) }
    : { method: 'DELETE' });
  if (answer.status !== 204) throw new Error(`the simulator refused the fault: ${answer.status} ${answer.text}`);
}

/**
 * The callback with the simulator answering auth.getToken after a fixed delay.
 * Prepares `count` pending attempts (POST /connect, one session each) and as
 * many authorized frobs (the simulator's authorization form, one user each),
 * then replays the callbacks with a closed loop of 50 undici clients: each
 * latency is one GET /connect/callback, so p - 20 ms is our overhead.
 */
async function callbackCase(rig, server, name) {
  const { cookie, token } = await csrfPair(rig, server);
  const pairs = new Array(SETTINGS.callbacks);
  await pool(SETTINGS.callbacks, SETTINGS.concurrency, async (i) => {
    const start = await lib.exchange(server.app, rig.appOrigin, '/connect', { method: 'POST', headers: { cookie, 'content-type': lib.FORM }, body: lib.form({ _csrf: token, perm_doc: 'read', return_to: '/after' }) });
    if (start.status !== 303) throw new Error(`POST /connect answered ${start.status}`);
    const jar = lib.keepCookies(new Map(), start.headers['set-cookie']);
    const link = new URL(start.headers.location);
    const decision = await lib.exchange(rig.sim, rig.simOrigin, link.pathname, {
      method: 'POST',
      headers: { 'content-type': lib.FORM },
      body: lib.form({ ...Object.fromEntries(link.searchParams), decision: 'authorize', user_id: String((nextUserId += 1)) }),
    });
    if (decision.status !== 303) throw new Error(`the simulator's authorization answered ${decision.status}`);
    const back = new URL(decision.headers.location);
    pairs[i] = { path: back.pathname + back.search, cookie: `${cookie}; ${lib.cookieHeader(jar)}` };
  });

  // the upstream alone at the same concurrency: auth.getToken with a spent frob, answered after the same delay
  await setFault(rig, { delayMs: UPSTREAM_DELAY_MS, methods: ['auth.getToken'] });
  const { sign } = require(path.join(ROOT, 'dist/ipernity/signature'));
  const params = { api_key: API_KEY, frob: '123456789-0ad5e2a8' };
  const upstreamBody = lib.form({ ...params, api_sig: sign(params, API_SECRET, 'auth.getToken') });
  const upstream = [];
  await pool(SETTINGS.concurrency * 10, SETTINGS.concurrency, async () => {
    const answer = await lib.exchange(rig.sim, rig.simOrigin, '/api/auth.getToken/json', { method: 'POST', headers: { 'content-type': lib.FORM }, body: upstreamBody });
    upstream.push(answer.ms);
  });

  const warmup = Math.min(200, Math.floor(SETTINGS.callbacks / 10));
  const latencies = [];
  const statuses = {};
  const serverCpuBefore = lib.cpuSecondsOf(server.child.pid);
  const started = performance.now();
  await pool(SETTINGS.callbacks, SETTINGS.concurrency, async (i) => {
    const answer = await lib.exchange(server.app, rig.appOrigin, pairs[i].path, { headers: { cookie: pairs[i].cookie } });
    const ok = answer.status === 303 && answer.headers.location === '/after';
    statuses[ok ? 'ok' : answer.status] = (statuses[ok ? 'ok' : answer.status] ?? 0) + 1;
    if (i >= warmup) latencies.push(answer.ms);
  });
  const wall = (performance.now() - started) / 1000;
  await setFault(rig, undefined);
  const p = lib.percentiles(latencies);
  const u = lib.percentiles(upstream);
  const row = {
    name,
    rps: SETTINGS.callbacks / wall,
    p50: p.p50,
    p99: p.p99,
    overheadP50: p.p50 - UPSTREAM_DELAY_MS,
    overheadP99: p.p99 - UPSTREAM_DELAY_MS,
    upstreamP50: u.p50,
    upstreamP99: u.p99,
    serverCpu: (lib.cpuSecondsOf(server.child.pid) - serverCpuBefore) / wall,
    unexpected: SETTINGS.callbacks - (statuses.ok ?? 0),
    statuses,
  };
  say(`  ${name}: ${row.rps.toFixed(0)} callbacks/s, p50 ${p.p50.toFixed(2)} ms, p99 ${p.p99.toFixed(2)} ms (upstream alone p50 ${u.p50.toFixed(2)}, p99 ${u.p99.toFixed(2)}), server CPU ${(row.serverCpu * 100).toFixed(0)}%, answers ${JSON.stringify(statuses)}`);
  return row;
}

/** Complete flows for `seconds` from 50 concurrent visitors, each as a distinct ipernity user. */
async function flowsCase(rig, server, name) {
  const deadline = performance.now() + SETTINGS.flowSeconds * 1000;
  const latencies = [];
  const failures = {};
  let lastJar;
  const serverCpuBefore = lib.cpuSecondsOf(server.child.pid);
  const started = performance.now();
  await Promise.all(
    Array.from({ length: SETTINGS.concurrency }, async () => {
      while (performance.now() < deadline) {
        const flowStarted = performance.now();
        try {
          const { jar } = await lib.walkFlow({ app: server.app, sim: rig.sim, appOrigin: rig.appOrigin, simOrigin: rig.simOrigin, userId: (nextUserId += 1) });
          latencies.push(performance.now() - flowStarted);
          lastJar = jar;
        } catch (error) {
          const key = error instanceof lib.FlowError ? `${error.step} ${error.status}` : error.message;
          failures[key] = (failures[key] ?? 0) + 1;
        }
      }
    }),
  );
  const wall = (performance.now() - started) / 1000;
  const p = lib.percentiles(latencies);
  const failed = Object.values(failures).reduce((a, b) => a + b, 0);
  const row = {
    name,
    rps: latencies.length / wall,
    p50: p.p50,
    p99: p.p99,
    completed: latencies.length,
    unexpected: failed,
    failures,
    serverCpu: (lib.cpuSecondsOf(server.child.pid) - serverCpuBefore) / wall,
    lastJar,
  };
  say(`  ${name}: ${row.rps.toFixed(0)} flows/s (${latencies.length} in ${wall.toFixed(1)} s), flow p50 ${p.p50.toFixed(1)} ms, p99 ${p.p99.toFixed(1)} ms, server CPU ${(row.serverCpu * 100).toFixed(0)}%, failures ${JSON.stringify(failures)}`);
  return row;
}

/** Bytes a connected session and an attempt-only session take in Redis. */
async function redisSessionBytes(rig, connectedJar, attemptJar) {
  const { createClient } = require('redis');
  const client = createClient({ url: `redis://127.0.0.1:${rig.redisPort}` });
  await client.connect();
  try {
    const measure = async (jar) => {
      const sid = lib.sessionIdOf(jar.get('ipernity-connect.sid') ?? '');
      const key = `${REDIS_PREFIX}${sid}`;
      const [usage, length] = await Promise.all([client.sendCommand(['MEMORY', 'USAGE', key, 'SAMPLES', '0']), client.strLen(key)]);
      return { usage: Number(usage), length: Number(length) };
    };
    const info = await client.info('memory');
    const keys = await client.dbSize();
    return { connected: await measure(connectedJar), attempt: await measure(attemptJar), keys, usedMemory: Number(/used_memory:(\d+)/.exec(info)?.[1]) };
  } finally {
    await client.close();
  }
}

/** Bytes a connected session takes in SQLite: its JSON, and the file's pages per row. */
function sqliteSessionBytes(dataDir, connectedJar) {
  const Database = require('better-sqlite3');
  const db = new Database(path.join(dataDir, 'sessions.sqlite'), { readonly: true, fileMustExist: true });
  try {
    const sid = lib.sessionIdOf(connectedJar.get('ipernity-connect.sid') ?? '');
    const one = db.prepare('SELECT length(data) AS n FROM sessions WHERE sid = ?').get(sid)?.n ?? NaN;
    const rows = db.prepare('SELECT count(*) AS n, avg(length(data)) AS avg FROM sessions').get();
    const pageSize = db.pragma('page_size', { simple: true });
    const used = db.pragma('page_count', { simple: true }) - db.pragma('freelist_count', { simple: true });
    let tableAndIndex;
    try {
      tableAndIndex = db.prepare("SELECT sum(pgsize) AS n FROM dbstat WHERE name IN ('sessions', 'sessions_expires')").get().n;
    } catch {
      tableAndIndex = used * pageSize;
    }
    return { connected: one, rows: rows.n, avgData: rows.avg, perRow: tableAndIndex / rows.n };
  } finally {
    db.close();
  }
}

/** Lines at level 50+ (error, fatal) and unhandled rejections in a server's JSON log. */
function logTrouble(logFile) {
  const lines = fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8').split('\n').filter(Boolean) : [];
  const trouble = [];
  for (const line of lines) {
    let entry;
    try {
      entry = JSON.parse(line);
    } catch {
      trouble.push(line.slice(0, 200));
      continue;
    }
    if (entry.level >= 50 || entry.event === 'unhandled_rejection') trouble.push(line.slice(0, 300));
  }
  return { lines: lines.length, trouble };
}

async function benchStore(rig, store, rows, facts) {
  say(`\n${store} store`);
  const server = await rig.startServer(store);
  // warm the JIT and the store with real flows, and keep one connected browser
  let connected;
  for (let i = 0; i < 20; i += 1) {
    ({ jar: connected } = await lib.walkFlow({ app: server.app, sim: rig.sim, appOrigin: rig.appOrigin, simOrigin: rig.simOrigin, userId: (nextUserId += 1) }));
  }
  const sessionCookie = lib.cookieHeader(connected);
  const { cookie: csrfCookie, token } = await csrfPair(rig, server);
  const postBody = lib.form({ _csrf: token, perm_doc: 'read', return_to: '/after' });

  if (store === 'sqlite') {
    rows.push({ ...(await compare(rig, server, 'warning page, no cookie', { path: '/connect' }, 200)), target: { ratio: 0.65 } });
  }
  rows.push({ ...(await compare(rig, server, `warning page, ${store} session`, { path: '/connect', headers: { cookie: sessionCookie } }, 200)), target: store === 'redis' ? { ratio: 0.4 } : undefined });
  rows.push({
    ...(await compare(rig, server, `POST /connect, ${store}`, { path: '/connect', method: 'POST', headers: { cookie: csrfCookie, 'content-type': lib.FORM }, body: postBody }, 303)),
    target: { ratio: 0.35 },
  });
  rows.push({ ...(await callbackCase(rig, server, `callback, ${store}, upstream +${UPSTREAM_DELAY_MS} ms`)), target: { overhead: [2, 15] } });
  const flows = await flowsCase(rig, server, `complete flows, ${store}`);
  rows.push({ ...flows, target: store === 'redis' ? { flows: 300 } : undefined });

  // an attempt-only session: what every POST /connect leaves behind
  const attempt = await lib.exchange(server.app, rig.appOrigin, '/connect', { method: 'POST', headers: { cookie: csrfCookie, 'content-type': lib.FORM }, body: postBody });
  const attemptJar = lib.keepCookies(new Map(), attempt.headers['set-cookie']);

  const memory = lib.memoryOf(server.child.pid);
  if (store === 'redis') facts.redisBytes = await redisSessionBytes(rig, flows.lastJar ?? connected, attemptJar);
  const exitCode = await rig.stopServer(server);
  if (store === 'sqlite') facts.sqliteBytes = sqliteSessionBytes(server.dataDir, flows.lastJar ?? connected);
  facts.rss[store] = memory.peak;
  facts.exitCodes[store] = exitCode;
  facts.logs[store] = logTrouble(server.logFile);
  say(`  peak RSS ${(memory.peak / 2 ** 20).toFixed(1)} MiB, exit ${exitCode}, ${facts.logs[store].lines} log lines, ${facts.logs[store].trouble.length} at level 50+`);
  for (const line of facts.logs[store].trouble.slice(0, 5)) say(`    ${line}`);
}

function gitCommit() {
  try {
    const commit = execSync('git rev-parse --short HEAD', { cwd: ROOT }).toString().trim();
    const dirty = execSync('git status --porcelain -- src views public', { cwd: ROOT }).toString().trim() !== '';
    return dirty ? `${commit} + uncommitted changes in src/ or views/` : commit;
  } catch {
    return 'unknown';
  }
}

const fmt = (value, digits = 0) => (Number.isFinite(value) ? value.toFixed(digits) : '—');
const mark = (ok) => (ok === undefined ? '' : ok ? 'met' : '**not met**');

function report(rows, facts, seconds) {
  const lines = [];
  const cpu = os.cpus()[0]?.model ?? 'unknown';
  lines.push(`Run ${new Date().toISOString()} · commit ${gitCommit()} · ${os.cpus().length} cores (${cpu}) · Node ${process.version} · ${os.platform()} ${os.release()}`);
  lines.push('');
  lines.push(`Throughput rows: autocannon, ${SETTINGS.connections} connections, ${SETTINGS.rounds} rounds of ${SETTINGS.seconds} s alternating reference and case (ratio = case ÷ mean of the reference runs either side, median of the rounds). ` +
    `Callback and flow rows: closed loops of ${SETTINGS.concurrency} undici clients (the callback replays ${SETTINGS.callbacks} prepared attempt+frob pairs; flows run ${SETTINGS.flowSeconds} s). ` +
    `${lib.hasTaskset ? `Server under test and reference pinned to core ${SERVER_CORE}; load generator, simulator and redis-server to core ${LOAD_CORE}.` : 'No taskset: nothing pinned.'} ` +
    `Server: NODE_ENV=production, LOG_LEVEL=info to a file, RATE_LIMIT_PER_MINUTE=0. Whole run ${fmt(seconds)} s.`);
  lines.push('');
  lines.push('| case | req/s | p50 ms | p99 ms | ratio to bare Express 5 | reference req/s | server CPU | bad answers | target | met |');
  lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---|---|');
  for (const row of rows) {
    let target = '';
    let met;
    if (row.target?.ratio !== undefined) {
      target = `ratio ≥ ${row.target.ratio}`;
      met = row.ratio >= row.target.ratio && row.unexpected === 0;
    } else if (row.target?.overhead) {
      target = `overhead ≤ ${row.target.overhead[0]} ms p50, ≤ ${row.target.overhead[1]} ms p99`;
      met = row.overheadP50 <= row.target.overhead[0] && row.overheadP99 <= row.target.overhead[1] && row.unexpected === 0;
    } else if (row.target?.flows !== undefined) {
      target = `≥ ${row.target.flows} flows/s`;
      met = row.rps >= row.target.flows && row.unexpected === 0;
    }
    const latency = row.overheadP50 !== undefined
      ? [`${fmt(row.p50, 2)} (+${fmt(row.overheadP50, 2)})`, `${fmt(row.p99, 2)} (+${fmt(row.overheadP99, 2)})`]
      : [fmt(row.p50, 2), fmt(row.p99, 2)];
    lines.push(`| ${row.name} | ${fmt(row.rps)}${row.completed !== undefined ? ' flows/s' : ''} | ${latency[0]} | ${latency[1]} | ${row.ratio !== undefined ? fmt(row.ratio, 3) : '—'} | ${row.refRps !== undefined ? fmt(row.refRps) : '—'} | ${fmt(row.serverCpu * 100)}% | ${row.unexpected} | ${target} | ${mark(met)} |`);
  }
  const rb = facts.redisBytes;
  const sb = facts.sqliteBytes;
  const mib = (bytes) => `${fmt(bytes / 2 ** 20, 1)} MiB`;
  lines.push('');
  lines.push('| measure | value | target | met |');
  lines.push('|---|---:|---|---|');
  if (rb) {
    lines.push(`| Redis, connected session: MEMORY USAGE (value length) | ${rb.connected.usage} B (${rb.connected.length} B) | ≤ 1024 B | ${mark(rb.connected.usage <= 1024)} |`);
    lines.push(`| Redis, attempt-only session (left by each POST /connect) | ${rb.attempt.usage} B (${rb.attempt.length} B) | | |`);
    lines.push(`| Redis after the run: keys, used_memory | ${rb.keys} keys, ${mib(rb.usedMemory)} | | |`);
  }
  if (sb) {
    lines.push(`| SQLite, connected session: length(data) | ${sb.connected} B | | |`);
    lines.push(`| SQLite, table + index pages per row (${sb.rows} rows, mean data ${fmt(sb.avgData)} B) | ${fmt(sb.perRow)} B | | |`);
  }
  for (const [store, peak] of Object.entries(facts.rss)) {
    lines.push(`| peak RSS (VmHWM), server with ${store} store | ${mib(peak)} | ≤ 160 MB | ${mark(peak <= 160e6)} |`);
  }
  if (facts.refRss) lines.push(`| peak RSS (VmHWM), bare Express 5 reference | ${mib(facts.refRss)} | | |`);
  for (const [store, logs] of Object.entries(facts.logs)) {
    lines.push(`| server log (${store}): lines, level ≥ 50 or unhandled rejection, exit code | ${logs.lines}, ${logs.trouble.length}, ${facts.exitCodes[store]} | 0 errors, exit 0 | ${mark(logs.trouble.length === 0 && facts.exitCodes[store] === 0)} |`);
  }
  return lines.join('\n');
}

async function main() {
  if (process.argv.includes('--profile')) {
    await require('./profile').main();
    return;
  }
  const began = performance.now();
  const pinned = lib.pinSelf(LOAD_CORE);
  say(`ipernity-connect benchmark: ${os.cpus().length} cores, ${lib.hasTaskset ? (pinned ? `load generator pinned to core ${LOAD_CORE}` : 'taskset failed') : 'no taskset'}`);
  const rig = new Rig();
  const rows = [];
  const facts = { rss: {}, exitCodes: {}, logs: {} };
  try {
    await rig.start();
    await benchStore(rig, 'sqlite', rows, facts);
    await benchStore(rig, 'redis', rows, facts);
    facts.refRss = lib.memoryOf(rig.reference.pid).peak;
  } finally {
    await rig.stop();
  }
  const text = report(rows, facts, (performance.now() - began) / 1000);
  say(`\n${text}`);
  if (!process.argv.includes('--no-write')) {
    writeSection('bench', `## Benchmark\n\n${text}\n`);
    say(`\nwritten to bench/RESULTS.md`);
  }
  fs.rmSync(rig.dir, { recursive: true, force: true });
}

module.exports = { Rig, cannon, csrfPair, compare, SETTINGS, API_KEY, API_SECRET, LOAD_CORE };

if (require.main === module) {
  main().catch((error) => {
    process.stderr.write(`${error.stack ?? error}\n`);
    process.exit(1);
  });
}
