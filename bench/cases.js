'use strict';
/**
 * The cases: each benchmark row, what it drives and how it measures it.
 *
 * - Throughput rows (`compare`): autocannon against one request, alternating
 *   with the reference (ref, case, ref, ..., case, ref), then as many rounds
 *   with case and reference driven at the same time.
 * - Callback rows (`callbackCases`): prepared attempt+frob pairs replayed by
 *   50 undici clients, closed loop and paced, with ipernity's auth.getToken
 *   answering after 20 ms; each callback's own upstream time comes from its
 *   log line.
 * - Flow rows (`flowsCase`): complete flows from 50 concurrent visitors.
 * - Floor rows ("for scale"): a server from bench/floors/, measured like a case.
 * - What the run leaves (`redisSessionBytes`, `sqliteSessionBytes`,
 *   `memoryBreakdown`, `logTrouble`): bytes per session, memory, log lines.
 */
const fs = require('node:fs');
const path = require('node:path');
const { setTimeout: sleep } = require('node:timers/promises');
const autocannon = require('autocannon');
const lib = require('./lib');
const { SETTINGS } = require('./settings');
const { ROOT, API_KEY, API_SECRET, REDIS_PREFIX, SERVER_CORE } = require('./rig');

const { say, pct, fmt, median } = lib;
const UPSTREAM_DELAY_MS = 20;

// ---- throughput rows

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

// ---- the inputs the rows replay

let nextUserId = 10_000_000;

/** A new ipernity user id for one more flow. */
const nextUser = () => (nextUserId += 1);

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
      body: lib.form({ ...Object.fromEntries(link.searchParams), decision: 'authorize', user_id: String(nextUser()) }),
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

// ---- callback rows

let replayRuns = 0;

/**
 * Replays prepared requests from 50 undici clients: a closed loop (each
 * client sends its next request as soon as the last is answered), or paced
 * (each client sends one every `paceMs`, so the offered rate is 50 ÷ paceMs,
 * below saturation). Each request carries its own request id, and its log
 * line (its path starts with `logPrefix`) says how long its call to
 * ipernity took (upstreamMs): the latency minus that is our overhead above
 * the upstream latency, call by call, whatever the simulator added to its
 * 20 ms. Beside it: the server's own view (the request log's responseTime).
 * `target` is one of ours, or a floor server that writes the same log line.
 * Answers the row's figures, and how many calls the log timed.
 */
async function replay(rig, target, { tag, requests, paceMs, accepted, logPrefix }) {
  const warmup = Math.min(100, Math.floor(requests.length / 10));
  const runTag = (replayRuns += 1);
  const clientMs = new Map();
  const latencies = [];
  const statuses = {};
  const logOffset = fs.statSync(target.logFile).size;
  const watch = lib.cpuWatch({ server: target.child.pid, simulator: rig.simulator.pid, redis: rig.redis.pid });
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: SETTINGS.concurrency }, async (_, client) => {
      if (paceMs) await sleep((paceMs * client) / SETTINGS.concurrency); // spread the clients over one period
      while (next < requests.length) {
        const i = next;
        next += 1;
        const sent = performance.now();
        const id = `bench-${tag}-${runTag}-${i}`;
        const answer = await lib.exchange(target.app, target.origin, requests[i].path, { headers: { cookie: requests[i].cookie, 'x-request-id': id } });
        const ok = accepted(answer);
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
  const logged = requestLines(target.logFile, logOffset, logPrefix);
  const s = lib.percentiles(logged.map((line) => line.responseTime));
  // per request, from its own log line: the time the upstream call took, subtracted from what the client and the server saw
  const lines = new Map(logged.filter((line) => typeof line.upstreamMs === 'number').map((line) => [line.reqId, line]));
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
  const rate = requests.length / wall;
  return {
    calls: upstreamTimes.length,
    row: {
      rps: rate,
      p50: p.p50,
      p99: p.p99,
      overheadP50: p.p50 - UPSTREAM_DELAY_MS,
      overheadP99: p.p99 - UPSTREAM_DELAY_MS,
      serverCpu: cpu.server,
      cpuMsPerRequest: (cpu.server * 1000) / rate,
      cpu,
      serverP50: s.p50,
      serverP99: s.p99,
      upstreamMean: upstreamTimes.reduce((sum, ms) => sum + ms, 0) / upstreamTimes.length,
      upstreamSeenP50: upstreamSeen.p50,
      upstreamSeenP99: upstreamSeen.p99,
      oursP50: oursClient.p50,
      oursP99: oursClient.p99,
      oursServerP50: oursServer.p50,
      oursServerP99: oursServer.p99,
      matched: ours.client.length,
      unexpected: requests.length - (statuses.ok ?? 0),
      statuses,
    },
  };
}

/** The replay's figures as the runner prints them: what `noun`s the client and the server saw, and ours above each call's own upstream time. */
function sayReplay(name, row, calls, noun, upstreamCall) {
  const c = row.cpu;
  say(`  ${name}: ${row.rps.toFixed(0)} ${noun}s/s, client-side p50 ${row.p50.toFixed(2)} ms, p99 ${row.p99.toFixed(2)} ms; server-side (pino responseTime) p50 ${row.serverP50} ms, p99 ${row.serverP99} ms; ` +
    `${upstreamCall} as the server saw it: mean ${fmt(row.upstreamMean, 2)} ms over ${calls} calls, p50 ${fmt(row.upstreamSeenP50, 2)}, p99 ${fmt(row.upstreamSeenP99, 2)} ms; ` +
    `ours above each call's own ${upstreamCall} time (${row.matched} ${noun}s): client-side p50 ${fmt(row.oursP50, 2)}, p99 ${fmt(row.oursP99, 2)} ms, server-side p50 ${fmt(row.oursServerP50, 2)}, p99 ${fmt(row.oursServerP99, 2)} ms; ` +
    (row.upstreamP50 !== undefined ? `upstream alone from the load generator p50 ${row.upstreamP50.toFixed(2)}, p99 ${row.upstreamP99.toFixed(2)} ms; ` : '') +
    `CPU: server ${pct(c.server)} (${row.cpuMsPerRequest.toFixed(3)} ms/${noun}), simulator ${pct(c.simulator)}, redis ${pct(c.redis)}, load generator ${pct(c.loadGenerator)}, core0 ${pct(c.core0)}, core1 ${pct(c.core1)}; answers ${JSON.stringify(row.statuses)}`);
}

/**
 * Replays prepared callbacks (see `replay`): each latency is one GET
 * /connect/callback, so p − 20 ms is a first estimate of our overhead, and
 * "ours" subtracts each callback's own auth.getToken time.
 */
async function replayCallbacks(rig, server, name, pairs, upstream, paceMs) {
  const { row, calls } = await replay(rig, server, {
    tag: 'callback',
    requests: pairs,
    paceMs,
    accepted: (answer) => answer.status === 303 && answer.headers.location === '/after',
    logPrefix: '/connect/callback',
  });
  const full = { name, ...row, upstreamP50: upstream.p50, upstreamP99: upstream.p99 };
  sayReplay(name, full, calls, 'callback', 'getToken');
  return full;
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
      // no target: a closed loop measures the queue in front of a saturated core (the floor's row misses 2 ms too)
      await replayCallbacks(rig, server, `for scale: ${closedName}`, closedPairs(), upstream),
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
  return rig.withFloorServer('callback-floor-server.js', async (floorServer) => {
    const [closedName, pacedName] = loads('for scale: bare Express 5 + one auth.getToken + express-session saving to Redis');
    return [await replayCallbacks(rig, floorServer, closedName, closedPairs, upstream), await replayCallbacks(rig, floorServer, pacedName, pacedPairs, upstream, paceMs)];
  });
}

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
 * The request lines logged after `offset` bytes, read once, whose path
 * starts with `prefix`: each with its request id, responseTime and, for
 * those that called ipernity, the upstreamMs of that call.
 */
function requestLines(logFile, offset, prefix) {
  const found = [];
  for (const line of logLinesAfter(logFile, offset)) {
    if (!line.includes(prefix)) continue;
    try {
      const entry = JSON.parse(line);
      if (entry.req?.url?.startsWith(prefix) && typeof entry.responseTime === 'number') {
        found.push({ reqId: entry.reqId, responseTime: entry.responseTime, upstreamMs: entry.upstreamMs });
      }
    } catch {
      // a line cut at the end of the read
    }
  }
  return found;
}

// ---- gateway rows

/** `count` visitors connected to `server` through real flows, each its own ipernity user: their cookies and user ids. */
async function connectedVisitors(rig, server, count) {
  const visitors = new Array(count);
  await pool(count, 10, async (i) => {
    const userId = nextUser();
    const { jar } = await lib.walkFlow({ app: server.app, sim: rig.sim, appOrigin: rig.appOrigin, simOrigin: rig.simOrigin, userId });
    visitors[i] = { cookie: lib.cookieHeader(jar), userId };
  });
  return visitors;
}

/** `count` visitors of the gateway floor: a frob authorized at the simulator's form for a new user each, exchanged by the floor. */
async function floorVisitors(rig, floorServer, count) {
  const { sign } = require(path.join(ROOT, 'dist/ipernity/signature'));
  const link = { api_key: API_KEY, perm_doc: 'read' };
  const signed = { ...link, api_sig: sign(link, API_SECRET) };
  const visitors = new Array(count);
  await pool(count, 10, async (i) => {
    const userId = nextUser();
    const decision = await lib.exchange(rig.sim, rig.simOrigin, '/apps/authorize', {
      method: 'POST',
      headers: { 'content-type': lib.FORM, 'sec-fetch-site': 'same-origin' },
      body: lib.form({ ...signed, decision: 'authorize', user_id: String(userId) }),
    });
    if (decision.status !== 303) throw new Error(`the simulator's authorization answered ${decision.status}`);
    const back = new URL(decision.headers.location);
    const made = await lib.exchange(floorServer.app, floorServer.origin, back.pathname + back.search);
    if (made.status !== 204) throw new Error(`the gateway floor's session answered ${made.status}`);
    visitors[i] = { cookie: lib.cookieHeader(lib.keepCookies(new Map(), made.headers['set-cookie'])), userId };
  });
  return visitors;
}

/**
 * `count` gateway doc.getList calls (see `replay`), each for one of the
 * visitors in turn, paced at `paceMs` per client.
 */
async function replayGateway(rig, target, name, visitors, count, paceMs) {
  const requests = Array.from({ length: count }, (_, i) => {
    const visitor = visitors[i % visitors.length];
    return { path: `/api/ipernity/doc.getList?user_id=${visitor.userId}&per_page=5`, cookie: visitor.cookie };
  });
  const { row, calls } = await replay(rig, target, {
    tag: 'gateway',
    requests,
    paceMs,
    accepted: (answer) => answer.status === 200 && answer.text.includes('"docs"'),
    logPrefix: '/api/ipernity/doc.getList',
  });
  const full = { name, ...row };
  sayReplay(name, full, calls, 'call', 'doc.getList');
  return full;
}

/**
 * The gateway's doc.getList for 50 connected visitors, the simulator answering after 20 ms, paced at
 * SETTINGS.pacedRate; then the same load on the gateway floor, for scale.
 */
async function gatewayCases(rig, server) {
  const count = Math.round(SETTINGS.pacedRate * SETTINGS.pacedSeconds);
  const paceMs = (1000 * SETTINGS.concurrency) / SETTINGS.pacedRate;
  const visitors = await connectedVisitors(rig, server, SETTINGS.concurrency);
  await setFault(rig, { delayMs: UPSTREAM_DELAY_MS, methods: ['doc.getList'] });
  try {
    const ours = await replayGateway(rig, server, `gateway doc.getList, redis, ${SETTINGS.concurrency} visitors paced at ${SETTINGS.pacedRate}/s`, visitors, count, paceMs);
    const floorRow = await rig.withFloorServer('gateway-floor-server.js', async (floorServer) => {
      const floorVisitorsList = await floorVisitors(rig, floorServer, SETTINGS.concurrency);
      return replayGateway(rig, floorServer, 'for scale: bare Express 5 + the Redis session read + one signed doc.getList, passed on', floorVisitorsList, count, paceMs);
    });
    return [{ ...ours, target: { overhead: [1.5, 10] } }, floorRow];
  } finally {
    await setFault(rig, undefined);
  }
}

// ---- complete flows

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
          const { jar } = await lib.walkFlow({ app: server.app, sim: rig.sim, appOrigin: server.origin, simOrigin: rig.simOrigin, userId: nextUser() });
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

// ---- floor rows, for scale

/**
 * A "for scale" row: a floor server from bench/floors/ (no store of ours, no
 * router of ours), compared like a case. `prepare(origin)` answers the
 * request to drive once the server is up.
 */
async function floor(rig, name, script, prepare = async () => ({ path: '/' })) {
  return rig.withFloorServer(script, async (server) => compare(rig, server, `for scale: ${name}`, await prepare(server.origin), 200));
}

/** Bare Express 5 doing only what the warning page must do for a browser's first view, asked as the page is. */
const pageFloor = (rig) => floor(rig, 'bare Express 5 + helmet + a pino line + a 1.6 KB page', 'page-floor-server.js', async () => ({ path: '/', headers: lib.BROWSER_NAVIGATION }));

/** A Redis session made by `GET /make` of a session floor: the request that reads it. */
async function madeSession(origin) {
  let made;
  for (let i = 0; i < 50 && !made; i += 1) {
    made = await fetch(`${origin}/make`).then((r) => (r.ok ? r.headers.get('set-cookie') : undefined), () => undefined);
    if (!made) await sleep(50);
  }
  return { path: '/', headers: { cookie: made.split(';')[0] } };
}

/** Bare Express 5 with express-session reading a Redis session, and nothing else (forward auth's floor). */
const sessionFloor = (rig) => floor(rig, 'bare Express 5 + express-session reading a Redis session', 'session-floor-server.js', madeSession);

/** Bare Express 5 doing only what the warning page must do for a visitor with a Redis session. */
const sessionPageFloor = (rig) => floor(rig, 'bare Express 5 + helmet + a pino line + express-session reading a Redis session + a 1.6 KB page', 'session-page-floor-server.js', madeSession);

/** Bare Express 5 doing only what POST /connect must do, asked as the POST /connect rows ask (a CSRF cookie and the form's token). */
const postFloor = (rig) =>
  floor(rig, 'bare Express 5 + helmet + a pino line + a form checked against its CSRF cookie + a sealed attempts cookie + a signed 303', 'post-floor-server.js', async (origin) => {
    // no store to wait for: the server answers once its port does
    const answer = await fetch(`${origin}/csrf`);
    const cookie = answer.headers.get('set-cookie').split(';')[0];
    return { path: '/connect', method: 'POST', headers: { cookie, 'content-type': lib.FORM }, body: lib.form({ _csrf: await answer.text(), perm_doc: 'read', return_to: '/after' }) };
  });

// ---- what a store's rows leave behind

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

module.exports = {
  gatewayCases,
  UPSTREAM_DELAY_MS,
  cannon,
  compare,
  csrfPair,
  setFault,
  nextUser,
  prepareCallbacks,
  upstreamAlone,
  replayCallbacks,
  callbackCases,
  flowsCase,
  pageFloor,
  sessionFloor,
  sessionPageFloor,
  postFloor,
  redisSessionBytes,
  sqliteSessionBytes,
  memoryBreakdown,
  logTrouble,
};
