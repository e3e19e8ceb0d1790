'use strict';
/**
 * The benchmark: `npm run bench` (builds, then runs this file).
 *
 * Starts the rig (rig.js: a private redis-server, the ipernity simulator, a
 * bare Express 5 "hello" as the reference, the built server `dist/server.js`
 * with each session store, and the floor servers of floors/), drives each
 * row (cases.js) from this process, prints every row as it goes, and writes
 * the report (report.js) to bench/RESULTS.md. Throughput rows are measured
 * side by side with the reference in the same run. With taskset, the server
 * under test, the reference and the floors run on core 1; this load
 * generator, the simulator and redis-server on core 0.
 *
 * Options (settings.js): --rounds N (3), --seconds S per run (3),
 * --connections N (50), --flow-seconds S (10), --callbacks N (3000),
 * --paced-rate R (200/s), --paced-seconds S (15), --max-other-load F (0.1)
 * and --retries N (2) for repeating runs that other processes disturbed,
 * --quick (1 round of 2 s, 4 s of flows), --node PATH (the Node the servers
 * under test, the reference and the floors run on; a run on another Node
 * writes its own section of bench/RESULTS.md), --no-write (do not touch
 * bench/RESULTS.md), --profile (CPU profiles instead; see profile.js).
 */
const fs = require('node:fs');
const os = require('node:os');
const lib = require('./lib');
const { SETTINGS } = require('./settings');
const { Rig, LOAD_CORE } = require('./rig');
const cases = require('./cases');
const { report, write } = require('./report');

const { say } = lib;

/** One store's rows, in order, into `rows`; what the store's server leaves, into `facts`. */
async function benchStore(rig, store, rows, facts) {
  say(`\n${store} store`);
  await rig.restartSimulator();
  const server = await rig.startServer(store);
  // warm the JIT and the store with real flows, and keep one connected browser
  let connected;
  for (let i = 0; i < 20; i += 1) {
    ({ jar: connected } = await lib.walkFlow({ app: server.app, sim: rig.sim, appOrigin: rig.appOrigin, simOrigin: rig.simOrigin, userId: cases.nextUser() }));
  }
  const sessionCookie = lib.cookieHeader(connected);
  const { cookie: csrfCookie, token } = await cases.csrfPair(rig, server);
  const postBody = lib.form({ _csrf: token, perm_doc: 'read', return_to: '/after' });

  if (store === 'sqlite') {
    // a browser's first view: Fetch Metadata, so the page needs no CSRF cookie or token
    rows.push({ ...(await cases.compare(rig, server, 'warning page, no cookie', { path: '/connect', headers: lib.BROWSER_NAVIGATION }, 200)), target: { ratio: 0.65 } });
    rows.push(await cases.pageFloor(rig));
    rows.push(await cases.compare(rig, server, 'warning page, no cookie, client without Fetch Metadata (CSRF cookie and token)', { path: '/connect' }, 200));
  }
  rows.push({ ...(await cases.compare(rig, server, `warning page, ${store} session`, { path: '/connect', headers: { cookie: sessionCookie } }, 200)), target: store === 'redis' ? { ratio: 0.4 } : undefined });
  if (store === 'redis') rows.push(await cases.sessionPageFloor(rig));
  rows.push({
    ...(await cases.compare(rig, server, `POST /connect, ${store}`, { path: '/connect', method: 'POST', headers: { cookie: csrfCookie, 'content-type': lib.FORM }, body: postBody }, 303)),
    target: { ratio: 0.35 },
  });
  if (store === 'redis') rows.push(await cases.postFloor(rig));
  rows.push(...(await cases.callbackCases(rig, server, store)));
  if (store === 'redis') {
    // the reverse proxy's sub-request, on every request of the site behind it
    rows.push({ ...(await cases.compare(rig, server, 'GET /connect/auth, redis session (forward auth)', { path: '/connect/auth', headers: { cookie: sessionCookie } }, 200)), target: { ratio: 0.8 } });
    rows.push(await cases.sessionFloor(rig));
    rows.push(...(await cases.gatewayCases(rig, server)));
  }
  const flows = await cases.flowsCase(rig, server, `complete flows, ${store}`);
  rows.push({ ...flows, target: store === 'redis' ? { flows: 300 } : undefined });

  // what a started flow leaves: an attempts cookie in the browser, nothing in the store
  const attempt = await lib.exchange(server.app, rig.appOrigin, '/connect', { method: 'POST', headers: { cookie: csrfCookie, 'content-type': lib.FORM }, body: postBody });
  facts.attemptCookie = [].concat(attempt.headers['set-cookie'] ?? []).find((c) => c.startsWith('ipernity-connect.attempts='))?.split(';')[0].length;

  const memory = lib.memoryOf(server.child.pid);
  facts.memory[store] = await cases.memoryBreakdown(server, rig.appOrigin).catch(() => undefined);
  if (store === 'redis') facts.redisBytes = await cases.redisSessionBytes(rig, flows.lastJar ?? connected);
  const exitCode = await rig.stopServer(server);
  if (store === 'sqlite') facts.sqliteBytes = cases.sqliteSessionBytes(server.dataDir, flows.lastJar ?? connected);
  facts.rss[store] = memory.peak;
  facts.exitCodes[store] = exitCode;
  facts.logs[store] = cases.logTrouble(server.logFile);
  say(`  peak RSS ${(memory.peak / 2 ** 20).toFixed(1)} MiB, exit ${exitCode}, ${facts.logs[store].lines} log lines, ${facts.logs[store].trouble.length} at level 50+`);
  for (const line of facts.logs[store].trouble.slice(0, 5)) say(`    ${line}`);
}

async function main() {
  if (SETTINGS.profile) {
    await require('./profile').main();
    return;
  }
  const began = performance.now();
  const pinned = lib.pinSelf(LOAD_CORE);
  say(`ipernity-connect benchmark: ${os.cpus().length} cores, ${lib.hasTaskset ? (pinned ? `load generator pinned to core ${LOAD_CORE}` : 'taskset failed') : 'no taskset'}`);
  const rig = new Rig();
  say(`servers under test, reference and floors on Node ${rig.node.version} (${rig.node.path}); load generator and simulator on Node ${process.version}`);
  const rows = [];
  const facts = { rss: {}, exitCodes: {}, logs: {}, memory: {}, load: [os.loadavg()[0]], node: rig.node };
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
  if (SETTINGS.write) {
    const name = write(text, rig.node);
    say(`\nwritten to bench/RESULTS.md (section ${name})`);
  }
  fs.rmSync(rig.dir, { recursive: true, force: true });
}

if (require.main === module) {
  main().catch((error) => {
    process.stderr.write(`${error.stack ?? error}\n`);
    process.exit(1);
  });
}
