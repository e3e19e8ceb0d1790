'use strict';
/**
 * CPU profiles of the server under the benchmark's load:
 *   npm run build && node bench/run.js --profile [--seconds 8] [--cases warning-anon,post-redis,flows-redis]
 *
 * Each case gets its own server process started with `--cpu-prof`; the
 * profile is written when it exits on SIGTERM, to bench/profiles/<case>.cpuprofile
 * (git-ignored), and summarised with profile-summary.js.
 */
const fs = require('node:fs');
const path = require('node:path');
const lib = require('./lib');
const { SETTINGS } = require('./settings');
const { Rig, LOAD_CORE } = require('./rig');
const cases = require('./cases');
const { report } = require('./profile-summary');

const PROFILE_DIR = path.join(__dirname, 'profiles');

const CASES = {
  ...lib.REQUEST_CASES,
  'callback-sqlite': { store: 'sqlite', callbacks: true },
  'callback-redis': { store: 'redis', callbacks: true },
  // complete flows from 50 visitors: every route a flow takes, in the proportions a flow takes them
  'flows-redis': { store: 'redis', flows: true },
  'flows-sqlite': { store: 'sqlite', flows: true },
};

/** The callback case's closed loop (prepared attempt+frob pairs, ipernity answering after 20 ms), for the profiler. */
async function driveCallbacks(rig, server) {
  const pairs = await cases.prepareCallbacks(rig, server, SETTINGS.callbacks);
  await cases.setFault(rig, { delayMs: cases.UPSTREAM_DELAY_MS, methods: ['auth.getToken'] });
  try {
    const from = Number(process.hrtime.bigint() / 1000n);
    const row = await cases.replayCallbacks(rig, server, 'callback', pairs, { p50: NaN, p99: NaN });
    return { from, rps: row.rps, serverCpu: row.serverCpu };
  } finally {
    await cases.setFault(rig, undefined);
  }
}

async function main() {
  const at = process.argv.indexOf('--cases');
  const names = at === -1 ? Object.keys(CASES) : process.argv[at + 1].split(',');
  const seconds = process.argv.includes('--seconds') ? SETTINGS.seconds : 8;
  lib.pinSelf(LOAD_CORE);
  fs.mkdirSync(PROFILE_DIR, { recursive: true });
  const rig = new Rig();
  const written = [];
  try {
    await rig.start();
    for (const name of names) {
      const spec = CASES[name];
      if (!spec) throw new Error(`no profile case ${name}; cases: ${Object.keys(CASES).join(', ')}`);
      const file = `${name}.cpuprofile`;
      fs.rmSync(path.join(PROFILE_DIR, file), { force: true });
      const server = await rig.startServer(spec.store, { tag: `profile-${name}`, extraNodeArgs: ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`, `--cpu-prof-name=${file}`, '--cpu-prof-interval=250'] });
      let connected;
      for (let i = 0; i < 10; i += 1) {
        ({ jar: connected } = await lib.walkFlow({ app: server.app, sim: rig.sim, appOrigin: rig.appOrigin, simOrigin: rig.simOrigin, userId: 30_000_000 + i }));
      }
      let run;
      let from;
      if (spec.callbacks) {
        ({ from, ...run } = await driveCallbacks(rig, server));
      } else if (spec.flows) {
        from = Number(process.hrtime.bigint() / 1000n);
        run = await cases.flowsCase(rig, server, name);
      } else {
        const { cookie: csrfCookie, token } = await cases.csrfPair(rig, server);
        const request = spec.request({ sessionCookie: lib.cookieHeader(connected), csrfCookie, postBody: lib.form({ _csrf: token, perm_doc: 'read', return_to: '/after' }) });
        // the summary counts only the samples taken under load (both clocks are CLOCK_MONOTONIC)
        from = Number(process.hrtime.bigint() / 1000n);
        run = await cases.cannon(rig.appOrigin, request, seconds, server.child.pid);
      }
      fs.writeFileSync(path.join(PROFILE_DIR, `${name}.window.json`), JSON.stringify({ from, to: Number(process.hrtime.bigint() / 1000n) }));
      process.stdout.write(`${name}: ${run.rps.toFixed(0)} req/s under the profiler, server CPU ${(run.serverCpu * 100).toFixed(0)}%\n`);
      await rig.stopServer(server);
      written.push(path.join(PROFILE_DIR, file));
    }
  } finally {
    await rig.stop();
  }
  for (const file of written) {
    if (fs.existsSync(file)) process.stdout.write(`\n${report(file)}\n`);
    else process.stdout.write(`\n${file} was not written\n`);
  }
  fs.rmSync(rig.dir, { recursive: true, force: true });
}

module.exports = { main };
