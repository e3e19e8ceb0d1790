'use strict';
/**
 * The benchmark: `npm run bench` (builds, then runs this file).
 *
 * Starts, each in its own child process on loopback, a bare Express 5 "hello"
 * (the reference), the built server (`dist/server.js`, once with the SQLite
 * store and once with Redis on a private redis-server) and the ipernity
 * simulator, and drives them from this process. Throughput cases alternate
 * reference and case runs (ref, case, ref, case, ..., ref), so every ratio
 * is measured side by side in the same run; then as many rounds drive case
 * and reference at the same time, for a CPU-cost ratio that the host's other
 * work moves least. With taskset, the server under test and the reference
 * run on core 1; this load generator, the simulator and redis-server on
 * core 0.
 *
 * Options: --rounds N (3), --seconds S per run (3), --connections N (50),
 * --flow-seconds S (10), --callbacks N (3000), --paced-rate R (200/s),
 * --paced-seconds S (15), --max-other-load F (0.1) and --retries N (2) for
 * repeating runs that other processes disturbed, --quick (1 round of 2 s,
 * 4 s of flows), --no-write (do not touch bench/RESULTS.md), --profile
 * (CPU profiles instead; see profile.js).
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
/** The heap caps the image (NODE_OPTIONS) and `npm start` run the server with. */
const PRODUCTION_NODE_ARGS = ['--max-semi-space-size=16', '--max-old-space-size=96'];

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
  pacedRate: option('paced-rate', 200),
  // 3000 paced callbacks: their p99 rests on the 30 slowest, not on 10
  pacedSeconds: option('paced-seconds', QUICK ? 2 : 15),
  connections: option('connections', 50),
  /** A round where other processes took more than this share of the server's core is run again. */
  maxOtherLoad: option('max-other-load', 0.1),
  retries: option('retries', 2),
  concurrency: 50,
};

const say = (line) => process.stdout.write(`${line}\n`);
const pct = (share) => (Number.isFinite(share) ? `${(share * 100).toFixed(0)}%` : '—');

/** Everything started for the run, so it can all be stopped. */
class Rig {
  constructor() {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ipernity-connect-bench-'));
    this.children = [];
    // an interrupted run leaves no server, simulator or redis-server behind
    for (const signal of ['SIGINT', 'SIGTERM']) {
      process.once(signal, () => {
        for (const child of this.children) child.kill('SIGKILL');
        process.exit(130);
      });
    }
  }

  async start() {
    [this.redisPort, this.simPort, this.appPort, this.refPort] = await Promise.all([lib.freePort(), lib.freePort(), lib.freePort(), lib.freePort()]);
    this.appOrigin = `http://127.0.0.1:${this.appPort}`;
    this.simOrigin = `http://127.0.0.1:${this.simPort}`;
    this.refOrigin = `http://127.0.0.1:${this.refPort}`;
    this.redis = this.#spawn(LOAD_CORE, 'redis-server', ['--port', String(this.redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir]);
    this.reference = this.#spawn(SERVER_CORE, process.execPath, [path.join(__dirname, 'reference-server.js')], { env: { ...process.env, PORT: String(this.refPort), NODE_ENV: 'production' } });
    await Promise.all([lib.waitForPort(this.redisPort), lib.waitForPort(this.refPort), this.restartSimulator()]);
  }

  /**
   * A fresh simulator: it keeps every user and frob it ever made, and its
   * authorization page lists users in time proportional to how many there
   * are, so each store's cases start from an empty one.
   */
  async restartSimulator() {
    if (this.simulator) {
      await this.sim.close();
      await lib.stopChild(this.simulator);
      this.children = this.children.filter((child) => child !== this.simulator);
    }
    this.simulator = this.#spawn(LOAD_CORE, process.execPath, [path.join(ROOT, 'dist/simulator/server.js')], {
      env: { ...process.env, SIMULATOR_PORT: String(this.simPort), SIMULATOR_API_KEY: API_KEY, SIMULATOR_API_SECRET: API_SECRET, SIMULATOR_CALLBACK_URL: `${this.appOrigin}/connect/callback` },
    });
    await lib.waitForPort(this.simPort);
    this.sim = new Pool(this.simOrigin, { connections: SETTINGS.concurrency });
  }

  /** The server with one session store, pinned to the server core, logging at info to a file; `root` is another build's checkout. */
  async startServer(store, { extraNodeArgs = PRODUCTION_NODE_ARGS, tag = store, port = this.appPort, root = ROOT } = {}) {
    const logFile = path.join(this.dir, `server-${tag}.log`);
    const origin = `http://127.0.0.1:${port}`;
    const env = {
      ...process.env,
      NODE_ENV: 'production',
      PORT: String(port),
      PUBLIC_URL: origin,
      METRICS_TOKEN: lib.METRICS_TOKEN,
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
    const child = this.#spawn(SERVER_CORE, process.execPath, [...extraNodeArgs, path.join(root, 'dist/server.js')], { env, logFile, cwd: root });
    await lib.waitForPort(port);
    // ready means the store answers too
    for (let i = 0; i < 100; i += 1) {
      const ready = await fetch(`${origin}/readyz`).then((r) => r.status, () => 0);
      if (ready === 200) break;
      await sleep(50);
    }
    const app = new Pool(origin, { connections: SETTINGS.concurrency });
    return { child, app, origin, logFile, dataDir: env.DATA_DIR, store };
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
  const watch = lib.cpuWatch(watchPid ? { server: watchPid } : {});
  const instance = autocannon({ url: origin + request.path, method: request.method ?? 'GET', headers: request.headers, body: request.body, connections: SETTINGS.connections, duration: seconds });
  instance.on('response', (_client, status, _bytes, ms) => {
    latencies.push(ms);
    statuses[status] = (statuses[status] ?? 0) + 1;
  });
  const result = await instance;
  const cpu = watch();
  const p = lib.percentiles(latencies);
  return {
    rps: latencies.length / result.duration,
    p50: p.p50,
    p99: p.p99,
    statuses,
    errors: result.errors + result.timeouts,
    genCpu: cpu.loadGenerator,
    serverCpu: watchPid ? cpu.server : NaN,
    // CPU on the server's core that is not the watched server: other processes on this machine
    otherOnServerCore: watchPid ? Math.max(0, cpu[`core${SERVER_CORE}`] - cpu.server) : NaN,
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
  const origin = server.origin ?? rig.appOrigin;
  await cannon(origin, request, 1);
  const disturbed = (run) => run.otherOnServerCore > SETTINGS.maxOtherLoad;
  let repeated = 0;
  let first = await cannon(rig.refOrigin, reference, SETTINGS.seconds, rig.reference.pid);
  for (let retry = 0; retry < SETTINGS.retries && disturbed(first); retry += 1, repeated += 1) first = await cannon(rig.refOrigin, reference, SETTINGS.seconds, rig.reference.pid);
  const refs = [first];
  const runs = [];
  for (let round = 0; round < SETTINGS.rounds; round += 1) {
    // a case run and the reference run after it, again when other processes took the server's core
    let run;
    let ref;
    for (let attempt = 0; attempt <= SETTINGS.retries; attempt += 1) {
      run = await cannon(origin, request, SETTINGS.seconds, server.child.pid);
      ref = await cannon(rig.refOrigin, reference, SETTINGS.seconds, rig.reference.pid);
      if (!disturbed(run) && !disturbed(ref)) break;
      if (attempt < SETTINGS.retries) repeated += 1;
    }
    runs.push(run);
    refs.push(ref);
  }
  const ratios = runs.map((run, i) => run.rps / ((refs[i].rps + refs[i + 1].rps) / 2));
  // the same rounds with case and reference driven at the same time: whatever slows the core then slows both alike
  const together = [];
  const concurrent = [];
  for (let round = 0; round < SETTINGS.rounds; round += 1) {
    const [run, ref] = await Promise.all([cannon(origin, request, SETTINGS.seconds, server.child.pid), cannon(rig.refOrigin, reference, SETTINGS.seconds, rig.reference.pid)]);
    concurrent.push(run);
    together.push(ref.serverCpu / ref.rps / (run.serverCpu / run.rps));
  }
  const unexpected = [...runs, ...concurrent].reduce((sum, run) => sum + run.errors + Object.entries(run.statuses).filter(([status]) => Number(status) !== expectedStatus).reduce((s, [, n]) => s + n, 0), 0);
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
    refCpu: median(refs.map((r) => r.serverCpu)),
    genCpu: Math.max(...runs.map((r) => r.genCpu), ...refs.map((r) => r.genCpu)),
    otherLoad: Math.max(...runs.map((r) => r.otherOnServerCore), ...refs.map((r) => r.otherOnServerCore)),
    cpuMsPerRequest: median(runs.map((r) => (r.serverCpu * 1000) / r.rps)),
    refCpuMsPerRequest: median(refs.map((r) => (r.serverCpu * 1000) / r.rps)),
    repeated,
    unexpected,
  };
  // the same comparison in CPU time per request: what one saturated core would serve, whatever else ran
  row.cpuRatio = row.refCpuMsPerRequest / row.cpuMsPerRequest;
  row.cpuRatioTogether = median(together);
  row.cpuRatiosTogether = together;
  say(`  ${name}: ${row.rps.toFixed(0)} req/s (ref ${row.refRps.toFixed(0)}), ratio ${row.ratio.toFixed(3)} [${ratios.map((r) => r.toFixed(3)).join(', ')}], p50 ${row.p50.toFixed(2)} ms, p99 ${row.p99.toFixed(2)} ms, ` +
    `server CPU ${pct(row.serverCpu)} (${row.cpuMsPerRequest.toFixed(3)} ms/request; reference ${pct(row.refCpu)}, ${row.refCpuMsPerRequest.toFixed(3)} ms/request; CPU-cost ratio ${row.cpuRatio.toFixed(3)}; both at once ${row.cpuRatioTogether.toFixed(3)} [${together.map((r) => r.toFixed(3)).join(', ')}]), ` +
    `load generator ≤ ${pct(row.genCpu)}, other processes on core ${SERVER_CORE} ≤ ${pct(row.otherLoad)} (${repeated} runs repeated), unexpected ${unexpected}`);
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

/** `count` pending attempts (POST /connect, one attempts cookie each) and as many authorized frobs (the simulator's form, one user each). */
async function prepareCallbacks(rig, server, count) {
  const { cookie, token } = await csrfPair(rig, server);
  const pairs = new Array(count);
  await pool(count, SETTINGS.concurrency, async (i) => {
    const start = await lib.exchange(server.app, rig.appOrigin, '/connect', { method: 'POST', headers: { cookie, 'content-type': lib.FORM }, body: lib.form({ _csrf: token, perm_doc: 'read', return_to: '/after' }) });
    if (start.status !== 303) throw new Error(`POST /connect answered ${start.status}`);
    const jar = lib.keepCookies(new Map(), start.headers['set-cookie']);
    const link = new URL(start.headers.location);
    // no authorization page here: the decision says it comes from the simulator's own page, as a browser's does
    const decision = await lib.exchange(rig.sim, rig.simOrigin, link.pathname, {
      method: 'POST',
      headers: { 'content-type': lib.FORM, 'sec-fetch-site': 'same-origin' },
      body: lib.form({ ...Object.fromEntries(link.searchParams), decision: 'authorize', user_id: String((nextUserId += 1)) }),
    });
    if (decision.status !== 303) throw new Error(`the simulator's authorization answered ${decision.status}`);
    const back = new URL(decision.headers.location);
    pairs[i] = { path: back.pathname + back.search, cookie: `${cookie}; ${lib.cookieHeader(jar)}` };
  });
  return pairs;
}

/** auth.getToken straight from the load generator at the same concurrency (a spent frob, answered after the same delay). */
async function upstreamAlone(rig) {
  const { sign } = require(path.join(ROOT, 'dist/ipernity/signature'));
  const params = { api_key: API_KEY, frob: '123456789-0ad5e2a8' };
  const body = lib.form({ ...params, api_sig: sign(params, API_SECRET, 'auth.getToken') });
  const latencies = [];
  await pool(SETTINGS.concurrency * 10, SETTINGS.concurrency, async () => {
    const answer = await lib.exchange(rig.sim, rig.simOrigin, '/api/auth.getToken/json', { method: 'POST', headers: { 'content-type': lib.FORM }, body });
    latencies.push(answer.ms);
  });
  return lib.percentiles(latencies);
}

/**
 * Replays prepared callbacks from 50 undici clients: a closed loop (each
 * client sends its next callback as soon as the last is answered), or paced
 * (each client sends one every `paceMs`, so the offered rate is 50 ÷ paceMs,
 * below saturation). Each latency is one GET /connect/callback, so p − 20 ms
 * is a first estimate of our overhead. Each callback carries its own request
 * id, and its log line says how long its auth.getToken took (upstreamMs):
 * the latency minus that is our overhead above the upstream latency, call by
 * call, whatever the simulator added to its 20 ms. Beside it: the server's
 * own view (the request log's responseTime). `server` is one of ours, or a
 * floor server that writes the same log line.
 */
async function replayCallbacks(rig, server, name, pairs, upstream, paceMs) {
  const warmup = Math.min(100, Math.floor(pairs.length / 10));
  const runTag = (callbackRuns += 1);
  const clientMs = new Map();
  const latencies = [];
  const statuses = {};
  const logOffset = fs.statSync(server.logFile).size;
  const watch = lib.cpuWatch({ server: server.child.pid, simulator: rig.simulator.pid, redis: rig.redis.pid });
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: SETTINGS.concurrency }, async (_, client) => {
      if (paceMs) await sleep((paceMs * client) / SETTINGS.concurrency); // spread the clients over one period
      while (next < pairs.length) {
        const i = next;
        next += 1;
        const sent = performance.now();
        const id = `bench-callback-${runTag}-${i}`;
        const answer = await lib.exchange(server.app, server.origin, pairs[i].path, { headers: { cookie: pairs[i].cookie, 'x-request-id': id } });
        const ok = answer.status === 303 && answer.headers.location === '/after';
        statuses[ok ? 'ok' : answer.status] = (statuses[ok ? 'ok' : answer.status] ?? 0) + 1;
        if (i >= warmup) {
          latencies.push(answer.ms);
          clientMs.set(id, answer.ms);
        }
        if (paceMs) await sleep(Math.max(0, paceMs - (performance.now() - sent)));
      }
    }),
  );
  const wall = (performance.now() - started) / 1000;
  const cpu = watch();
  const p = lib.percentiles(latencies);
  await sleep(300); // pino writes asynchronously
  const callbacks = callbackLines(server.logFile, logOffset);
  const s = lib.percentiles(callbacks.map((line) => line.responseTime));
  // per callback, from its own log line: the time auth.getToken took, subtracted from what the client and the server saw
  const lines = new Map(callbacks.filter((line) => typeof line.upstreamMs === 'number').map((line) => [line.reqId, line]));
  const ours = { client: [], server: [] };
  for (const [id, ms] of clientMs) {
    const line = lines.get(id);
    if (!line) continue;
    ours.client.push(ms - line.upstreamMs);
    ours.server.push(line.responseTime - line.upstreamMs);
  }
  const oursClient = lib.percentiles(ours.client);
  const oursServer = lib.percentiles(ours.server);
  const upstreamTimes = [...lines.values()].map((line) => line.upstreamMs);
  const upstreamSeen = lib.percentiles(upstreamTimes);
  const calls = upstreamTimes.length;
  const upstreamMean = upstreamTimes.reduce((sum, ms) => sum + ms, 0) / calls;
  const rate = pairs.length / wall;
  const row = {
    name,
    rps: rate,
    p50: p.p50,
    p99: p.p99,
    overheadP50: p.p50 - UPSTREAM_DELAY_MS,
    overheadP99: p.p99 - UPSTREAM_DELAY_MS,
    upstreamP50: upstream.p50,
    upstreamP99: upstream.p99,
    serverCpu: cpu.server,
    cpuMsPerRequest: (cpu.server * 1000) / rate,
    cpu,
    serverP50: s.p50,
    serverP99: s.p99,
    upstreamMean,
    upstreamSeenP50: upstreamSeen.p50,
    upstreamSeenP99: upstreamSeen.p99,
    oursP50: oursClient.p50,
    oursP99: oursClient.p99,
    oursServerP50: oursServer.p50,
    oursServerP99: oursServer.p99,
    matched: ours.client.length,
    unexpected: pairs.length - (statuses.ok ?? 0),
    statuses,
  };
  say(`  ${name}: ${rate.toFixed(0)} callbacks/s, client-side p50 ${p.p50.toFixed(2)} ms, p99 ${p.p99.toFixed(2)} ms; server-side (pino responseTime) p50 ${s.p50} ms, p99 ${s.p99} ms; ` +
    `getToken as the server saw it: mean ${upstreamMean.toFixed(2)} ms over ${calls} calls, p50 ${fmt(upstreamSeen.p50, 2)}, p99 ${fmt(upstreamSeen.p99, 2)} ms; ` +
    `ours above each call's own getToken time (${ours.client.length} callbacks): client-side p50 ${fmt(oursClient.p50, 2)}, p99 ${fmt(oursClient.p99, 2)} ms, server-side p50 ${fmt(oursServer.p50, 2)}, p99 ${fmt(oursServer.p99, 2)} ms; upstream alone from the load generator p50 ${upstream.p50.toFixed(2)}, p99 ${upstream.p99.toFixed(2)} ms; ` +
    `CPU: server ${pct(cpu.server)} (${row.cpuMsPerRequest.toFixed(3)} ms/callback), simulator ${pct(cpu.simulator)}, redis ${pct(cpu.redis)}, load generator ${pct(cpu.loadGenerator)}, core0 ${pct(cpu.core0)}, core1 ${pct(cpu.core1)}; answers ${JSON.stringify(statuses)}`);
  return row;
}

/**
 * The callback with ipernity's auth.getToken answering after 20 ms: 50 clients in a closed loop, then 50 clients
 * paced below saturation. With Redis, the same two loads on the callback floor server follow, for scale.
 */
async function callbackCases(rig, server, store) {
  const pacedCount = Math.round(SETTINGS.pacedRate * SETTINGS.pacedSeconds);
  const withFloor = store === 'redis';
  const pairs = await prepareCallbacks(rig, server, (SETTINGS.callbacks + pacedCount) * (withFloor ? 2 : 1));
  const closedPairs = () => pairs.splice(0, SETTINGS.callbacks);
  const pacedPairs = () => pairs.splice(0, pacedCount);
  const paceMs = (SETTINGS.concurrency / SETTINGS.pacedRate) * 1000;
  const loads = (who) => [`${who}, upstream +${UPSTREAM_DELAY_MS} ms, ${SETTINGS.concurrency} clients closed loop`, `${who}, upstream +${UPSTREAM_DELAY_MS} ms, ${SETTINGS.concurrency} clients paced at ${SETTINGS.pacedRate}/s`];
  await setFault(rig, { delayMs: UPSTREAM_DELAY_MS, methods: ['auth.getToken'] });
  try {
    const upstream = await upstreamAlone(rig);
    const [closedName, pacedName] = loads(`callback, ${store}`);
    const rows = [
      { ...(await replayCallbacks(rig, server, closedName, closedPairs(), upstream)), target: { overhead: [2, 15] } },
      { ...(await replayCallbacks(rig, server, pacedName, pacedPairs(), upstream, paceMs)), target: { overhead: [2, 15] } },
    ];
    if (withFloor) rows.push(...(await callbackFloor(rig, loads, closedPairs(), pacedPairs(), upstream, paceMs)));
    return rows;
  } finally {
    await setFault(rig, undefined);
  }
}

/**
 * The callback floor (callback-floor-server.js) under the callback rows' two loads, with frobs prepared by our
 * server: what the plainest Express server doing the callback's unavoidable work shows, on the same core.
 */
async function callbackFloor(rig, loads, closedPairs, pacedPairs, upstream, paceMs) {
  return withFloorServer(rig, 'callback-floor-server.js', async (floorServer) => {
    const [closedName, pacedName] = loads('for scale: bare Express 5 + one auth.getToken + express-session saving to Redis');
    return [await replayCallbacks(rig, floorServer, closedName, closedPairs, upstream), await replayCallbacks(rig, floorServer, pacedName, pacedPairs, upstream, paceMs)];
  });
}

/**
 * Starts a floor server from this folder on the server core (with the rig's Redis and simulator in its
 * environment), hands it to `use` once it listens, and stops it afterwards.
 */
async function withFloorServer(rig, script, use) {
  const port = await lib.freePort();
  const logFile = path.join(rig.dir, `${path.basename(script, '.js')}.log`);
  const child = lib.spawnPinned(SERVER_CORE, process.execPath, [path.join(__dirname, script)], {
    env: { ...process.env, PORT: String(port), NODE_ENV: 'production', REDIS_URL: `redis://127.0.0.1:${rig.redisPort}`, IPERNITY_API_URL: `${rig.simOrigin}/api`, IPERNITY_API_KEY: API_KEY, IPERNITY_API_SECRET: API_SECRET },
    logFile,
  });
  rig.children.push(child);
  const origin = `http://127.0.0.1:${port}`;
  const app = new Pool(origin, { connections: SETTINGS.concurrency });
  try {
    await lib.waitForPort(port);
    return await use({ child, origin, logFile, app });
  } finally {
    await app.close();
    await lib.stopChild(child);
    rig.children = rig.children.filter((c) => c !== child);
  }
}

/** Complete flows for `seconds` from 50 concurrent visitors, each as a distinct ipernity user. */
async function flowsCase(rig, server, name, seconds = SETTINGS.flowSeconds) {
  const deadline = performance.now() + seconds * 1000;
  const latencies = [];
  const failures = {};
  let lastJar;
  const watch = lib.cpuWatch({ server: server.child.pid, simulator: rig.simulator.pid, redis: rig.redis.pid });
  const started = performance.now();
  await Promise.all(
    Array.from({ length: SETTINGS.concurrency }, async () => {
      while (performance.now() < deadline) {
        const flowStarted = performance.now();
        try {
          const { jar } = await lib.walkFlow({ app: server.app, sim: rig.sim, appOrigin: server.origin, simOrigin: rig.simOrigin, userId: (nextUserId += 1) });
          latencies.push(performance.now() - flowStarted);
          lastJar = jar;
        } catch (error) {
          const key = error instanceof lib.FlowError ? error.message : error.message;
          failures[key] = (failures[key] ?? 0) + 1;
        }
      }
    }),
  );
  const wall = (performance.now() - started) / 1000;
  const cpu = watch();
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
    serverCpu: cpu.server,
    cpuMsPerRequest: (cpu.server * 1000) / (latencies.length / wall),
    cpu,
    lastJar,
  };
  say(`  ${name}: ${row.rps.toFixed(0)} flows/s (${latencies.length} in ${wall.toFixed(1)} s), flow p50 ${p.p50.toFixed(1)} ms, p99 ${p.p99.toFixed(1)} ms; ` +
    `CPU: server ${pct(cpu.server)} (${row.cpuMsPerRequest.toFixed(2)} ms/flow, so one core would serve ${(1000 / row.cpuMsPerRequest).toFixed(0)} flows/s), simulator ${pct(cpu.simulator)}, redis ${pct(cpu.redis)}, load generator ${pct(cpu.loadGenerator)}, core0 ${pct(cpu.core0)}, core1 ${pct(cpu.core1)}; failures ${JSON.stringify(failures)}`);
  return row;
}

/** Bytes a connected session takes in Redis, and what Redis holds after the run. */
async function redisSessionBytes(rig, connectedJar) {
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
    return { connected: await measure(connectedJar), keys, usedMemory: Number(/used_memory:(\d+)/.exec(info)?.[1]) };
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

let callbackRuns = 0;

/** The lines written to `logFile` after `offset` bytes. */
function logLinesAfter(logFile, offset) {
  const fd = fs.openSync(logFile, 'r');
  try {
    const buffer = Buffer.alloc(fs.fstatSync(fd).size - offset);
    fs.readSync(fd, buffer, 0, buffer.length, offset);
    return buffer.toString('utf8').split('\n');
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The request lines of the callbacks logged after `offset` bytes, read once:
 * each with its request id, responseTime and, for those that connected, the
 * upstreamMs of its auth.getToken.
 */
function callbackLines(logFile, offset) {
  const found = [];
  for (const line of logLinesAfter(logFile, offset)) {
    if (!line.includes('/connect/callback')) continue;
    try {
      const entry = JSON.parse(line);
      if (entry.req?.url?.startsWith('/connect/callback') && typeof entry.responseTime === 'number') {
        found.push({ reqId: entry.reqId, responseTime: entry.responseTime, upstreamMs: entry.upstreamMs });
      }
    } catch {
      // a line cut at the end of the read
    }
  }
  return found;
}

/** Where the server's memory is, from its own Prometheus metrics. */
async function memoryBreakdown(server, origin) {
  const m = await lib.scrapeMetrics(server.app, origin);
  const space = (name) => m.get(`nodejs_heap_space_size_total_bytes{space="${name}"}`);
  return {
    rss: m.get('process_resident_memory_bytes'),
    heapTotal: m.get('nodejs_heap_size_total_bytes'),
    heapUsed: m.get('nodejs_heap_size_used_bytes'),
    external: m.get('nodejs_external_memory_bytes'),
    newSpace: space('new'),
    oldSpace: space('old'),
    codeSpace: space('code'),
    largeObject: space('large_object'),
  };
}

/** Lines at level 50+ (error, fatal) and unhandled rejections in a server's JSON log. */
function logTrouble(logFile) {
  const lines = fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8').split('\n').filter(Boolean) : [];
  const trouble = [];
  const failed = new Map();
  for (const line of lines) {
    let entry;
    try {
      entry = JSON.parse(line);
    } catch {
      trouble.push(line.slice(0, 200));
      continue;
    }
    if (entry.level >= 50 || entry.event === 'unhandled_rejection') trouble.push(line.slice(0, 300));
    else if (entry.event === 'request_failed') {
      // an upstream or store failure during the run: its code and what lay under it, counted
      const key = [entry.code, entry.err?.cause?.code, entry.err?.cause?.message].filter(Boolean).join(' ');
      failed.set(key, (failed.get(key) ?? 0) + 1);
    }
  }
  return { lines: lines.length, trouble, failed };
}

/**
 * A "for scale" row: a floor server from this folder (no store of ours, no
 * router of ours), compared like a case. `prepare(origin)` answers the
 * request to drive once the server is up.
 */
async function floor(rig, name, script, prepare = async () => ({ path: '/' })) {
  return withFloorServer(rig, script, async (server) => compare(rig, server, `for scale: ${name}`, await prepare(server.origin), 200));
}

/** Bare Express 5 doing only what the warning page must do for a browser's first view, asked as the page is. */
const pageFloor = (rig) => floor(rig, 'bare Express 5 + helmet + a pino line + a 1.6 KB page', 'page-floor-server.js', async () => ({ path: '/', headers: lib.BROWSER_NAVIGATION }));

/** Bare Express 5 with express-session reading a Redis session, and nothing else. */
const sessionFloor = (rig) =>
  floor(rig, 'bare Express 5 + express-session reading a Redis session', 'session-floor-server.js', async (origin) => {
    let made;
    for (let i = 0; i < 50 && !made; i += 1) {
      made = await fetch(`${origin}/make`).then((r) => (r.ok ? r.headers.get('set-cookie') : undefined), () => undefined);
      if (!made) await sleep(50);
    }
    return { path: '/', headers: { cookie: made.split(';')[0] } };
  });

async function benchStore(rig, store, rows, facts) {
  say(`\n${store} store`);
  await rig.restartSimulator();
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
    // a browser's first view: Fetch Metadata, so the page needs no CSRF cookie or token
    rows.push({ ...(await compare(rig, server, 'warning page, no cookie', { path: '/connect', headers: lib.BROWSER_NAVIGATION }, 200)), target: { ratio: 0.65 } });
    rows.push(await pageFloor(rig));
    rows.push(await compare(rig, server, 'warning page, no cookie, client without Fetch Metadata (CSRF cookie and token)', { path: '/connect' }, 200));
  }
  rows.push({ ...(await compare(rig, server, `warning page, ${store} session`, { path: '/connect', headers: { cookie: sessionCookie } }, 200)), target: store === 'redis' ? { ratio: 0.4 } : undefined });
  if (store === 'redis') rows.push(await sessionFloor(rig));
  rows.push({
    ...(await compare(rig, server, `POST /connect, ${store}`, { path: '/connect', method: 'POST', headers: { cookie: csrfCookie, 'content-type': lib.FORM }, body: postBody }, 303)),
    target: { ratio: 0.35 },
  });
  rows.push(...(await callbackCases(rig, server, store)));
  const flows = await flowsCase(rig, server, `complete flows, ${store}`);
  rows.push({ ...flows, target: store === 'redis' ? { flows: 300 } : undefined });

  // what a started flow leaves: an attempts cookie in the browser, nothing in the store
  const attempt = await lib.exchange(server.app, rig.appOrigin, '/connect', { method: 'POST', headers: { cookie: csrfCookie, 'content-type': lib.FORM }, body: postBody });
  facts.attemptCookie = [].concat(attempt.headers['set-cookie'] ?? []).find((c) => c.startsWith('ipernity-connect.attempts='))?.split(';')[0].length;

  const memory = lib.memoryOf(server.child.pid);
  facts.memory[store] = await memoryBreakdown(server, rig.appOrigin).catch(() => undefined);
  if (store === 'redis') facts.redisBytes = await redisSessionBytes(rig, flows.lastJar ?? connected);
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
  lines.push(`Run ${new Date().toISOString()} · commit ${gitCommit()} · ${os.cpus().length} cores (${cpu}) · Node ${process.version} · ${os.platform()} ${os.release()} · load average ${facts.load.map((l) => l.toFixed(2)).join(' → ')}`);
  lines.push('');
  lines.push(`Throughput rows: autocannon, ${SETTINGS.connections} connections, ${SETTINGS.rounds} rounds of ${SETTINGS.seconds} s alternating reference and case (ratio = case ÷ mean of the reference runs either side, median of the rounds). ` +
    `Callback and flow rows: closed loops of ${SETTINGS.concurrency} undici clients (the callback replays ${SETTINGS.callbacks} prepared attempt+frob pairs; flows run ${SETTINGS.flowSeconds} s), and the paced callback row ${Math.round(SETTINGS.pacedRate * SETTINGS.pacedSeconds)} more pairs at ${SETTINGS.pacedRate}/s. ` +
    `${lib.hasTaskset ? `Server under test and reference pinned to core ${SERVER_CORE}; load generator, simulator and redis-server to core ${LOAD_CORE}.` : 'No taskset: nothing pinned.'} ` +
    `Server: NODE_ENV=production, LOG_LEVEL=info to a file, RATE_LIMIT_PER_MINUTE=0. Whole run ${fmt(seconds)} s. ` +
    `"CPU ms/op" is the server process's CPU time per request (per flow for flows): 1000 ÷ it is what one saturated core would serve; the reference's figure (about 0.14 ms on an undisturbed core here) shows how fast the core was during that row. "CPU-cost ratio" is the reference's CPU ms per request ÷ the case's: the throughput ratio two saturated, undisturbed cores would show. "Both at once" is that ratio from ${SETTINGS.rounds} more rounds in which case and reference take load at the same time on the server core (median of the rounds): whatever else slows the core then slows both, so it moves least from run to run. ` +
    `"Other load" is the most CPU that processes outside the benchmark took on the server's core during a run; a run pair above ${pct(SETTINGS.maxOtherLoad)} is repeated (at most ${SETTINGS.retries} times).`);
  lines.push('');
  lines.push('| case | req/s | p50 ms | p99 ms | ratio to bare Express 5 | reference req/s | CPU-cost ratio | CPU-cost ratio, both at once | server CPU | CPU ms/op (reference) | other load (runs repeated) | bad answers | target | met |');
  lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|');
  for (const row of rows) {
    let target = '';
    let met;
    if (row.target?.ratio !== undefined) {
      target = `ratio ≥ ${row.target.ratio}`;
      met = row.ratio >= row.target.ratio && row.unexpected === 0;
    } else if (row.target?.overhead) {
      target = `ours ≤ ${row.target.overhead[0]} ms p50, ≤ ${row.target.overhead[1]} ms p99`;
      met = row.oursP50 <= row.target.overhead[0] && row.oursP99 <= row.target.overhead[1] && row.unexpected === 0;
    } else if (row.target?.flows !== undefined) {
      target = `≥ ${row.target.flows} flows/s`;
      met = row.rps >= row.target.flows && row.unexpected === 0;
    }
    const latency = row.overheadP50 !== undefined
      ? [`${fmt(row.p50, 2)} (+${fmt(row.overheadP50, 2)}; ours ${fmt(row.oursP50, 2)})`, `${fmt(row.p99, 2)} (+${fmt(row.overheadP99, 2)}; ours ${fmt(row.oursP99, 2)})`]
      : [fmt(row.p50, 2), fmt(row.p99, 2)];
    lines.push(`| ${row.name} | ${fmt(row.rps)}${row.completed !== undefined ? ' flows/s' : ''} | ${latency[0]} | ${latency[1]} | ${row.ratio !== undefined ? fmt(row.ratio, 3) : '—'} | ${row.refRps !== undefined ? fmt(row.refRps) : '—'} | ${row.cpuRatio !== undefined ? fmt(row.cpuRatio, 3) : '—'} | ${row.cpuRatioTogether !== undefined ? fmt(row.cpuRatioTogether, 3) : '—'} | ${pct(row.serverCpu)} | ${fmt(row.cpuMsPerRequest, 3)}${row.refCpuMsPerRequest !== undefined ? ` (${fmt(row.refCpuMsPerRequest, 3)})` : ''} | ${row.otherLoad !== undefined ? `${pct(row.otherLoad)} (${row.repeated})` : '—'} | ${row.unexpected} | ${target} | ${mark(met)} |`);
  }
  const detail = rows.filter((row) => row.cpu);
  if (detail.length) {
    lines.push('');
    lines.push('Where the callback and flow time goes. Callback: client-side latency; the server\'s own `responseTime` for the same requests; `auth.getToken` as the server timed each call (`upstreamMs` on the callback\'s log line); "ours", each callback\'s latency minus its own `upstreamMs`, seen from the client and from the server; `auth.getToken` sent straight to the simulator by the load generator. CPU shares of one core:');
    lines.push('');
    lines.push('| case | client p50 / p99 ms | server-side p50 / p99 ms | getToken as the server timed it p50 / p99 ms | ours, client-side p50 / p99 ms | ours, server-side p50 / p99 ms | upstream alone p50 / p99 ms | server | simulator | redis | load generator | core 0 | core 1 |');
    lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const row of detail) {
      const c = row.cpu;
      const pair = (a, b, digits = 1) => (a !== undefined ? `${fmt(a, digits)} / ${fmt(b, digits)}` : '—');
      lines.push(`| ${row.name} | ${fmt(row.p50, 1)} / ${fmt(row.p99, 1)} | ${pair(row.serverP50, row.serverP99)} | ${pair(row.upstreamSeenP50, row.upstreamSeenP99)} | ${pair(row.oursP50, row.oursP99, 2)} | ${pair(row.oursServerP50, row.oursServerP99, 2)} | ${row.upstreamP50 !== undefined ? `${fmt(row.upstreamP50, 1)} / ${fmt(row.upstreamP99, 1)}` : '—'} | ${pct(c.server)} | ${pct(c.simulator)} | ${pct(c.redis)} | ${pct(c.loadGenerator)} | ${pct(c.core0)} | ${pct(c.core1)} |`);
    }
  }
  const rb = facts.redisBytes;
  const sb = facts.sqliteBytes;
  const mib = (bytes) => `${fmt(bytes / 2 ** 20, 1)} MiB`;
  lines.push('');
  lines.push('| measure | value | target | met |');
  lines.push('|---|---:|---|---|');
  if (rb) {
    lines.push(`| Redis, connected session: MEMORY USAGE (value length) | ${rb.connected.usage} B (${rb.connected.length} B) | ≤ 1024 B | ${mark(rb.connected.usage <= 1024)} |`);
    lines.push(`| attempts cookie set by POST /connect (name=value; nothing is stored until the callback) | ${facts.attemptCookie} B | | |`);
    lines.push(`| Redis after the run: keys, used_memory | ${rb.keys} keys, ${mib(rb.usedMemory)} | | |`);
  }
  if (sb) {
    lines.push(`| SQLite, connected session: length(data) | ${sb.connected} B | | |`);
    lines.push(`| SQLite, table + index pages per row (${sb.rows} rows, mean data ${fmt(sb.avgData)} B) | ${fmt(sb.perRow)} B | | |`);
  }
  for (const [store, peak] of Object.entries(facts.rss)) {
    lines.push(`| peak RSS (VmHWM), server with ${store} store | ${mib(peak)} | ≤ 160 MB | ${mark(peak <= 160e6)} |`);
    const m = facts.memory[store];
    if (m) {
      lines.push(`| at the end, ${store}: RSS; V8 heap total (used); new space; old space; code; large objects; external | ${mib(m.rss)}; ${mib(m.heapTotal)} (${mib(m.heapUsed)}); ${mib(m.newSpace)}; ${mib(m.oldSpace)}; ${mib(m.codeSpace)}; ${mib(m.largeObject)}; ${mib(m.external)} | | |`);
    }
  }
  if (facts.refRss) lines.push(`| peak RSS (VmHWM), bare Express 5 reference | ${mib(facts.refRss)} | | |`);
  for (const [store, logs] of Object.entries(facts.logs)) {
    lines.push(`| server log (${store}): lines, level ≥ 50 or unhandled rejection, exit code | ${logs.lines}, ${logs.trouble.length}, ${facts.exitCodes[store]} | 0 errors, exit 0 | ${mark(logs.trouble.length === 0 && facts.exitCodes[store] === 0)} |`);
    const failed = [...logs.failed].map(([key, count]) => `${count} × ${key}`).join('; ');
    lines.push(`| server log (${store}): requests failed upstream or at the store (code, cause) | ${failed || 'none'} | | |`);
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
  const facts = { rss: {}, exitCodes: {}, logs: {}, memory: {}, load: [os.loadavg()[0]] };
  try {
    await rig.start();
    await benchStore(rig, 'sqlite', rows, facts);
    await benchStore(rig, 'redis', rows, facts);
    facts.refRss = lib.memoryOf(rig.reference.pid).peak;
    facts.load.push(os.loadavg()[0]);
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

module.exports = { Rig, cannon, csrfPair, compare, flowsCase, prepareCallbacks, replayCallbacks, upstreamAlone, setFault, SETTINGS, API_KEY, API_SECRET, LOAD_CORE, UPSTREAM_DELAY_MS, PRODUCTION_NODE_ARGS };

if (require.main === module) {
  main().catch((error) => {
    process.stderr.write(`${error.stack ?? error}\n`);
    process.exit(1);
  });
}
