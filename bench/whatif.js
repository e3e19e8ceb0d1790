'use strict';
/**
 * What-if measurements: the server's CPU time per request with one change
 * made in the running process (a preload from bench/whatif/, or Node flags),
 * against the unchanged server, alternating runs of each in the same rig.
 * CPU time per request hardly moves with other load on the machine, so the
 * difference is what the change would buy.
 *
 *   npm run build && node bench/whatif.js [--cases name,...] [--rounds 3] [--seconds 3]
 */
const path = require('node:path');
const lib = require('./lib');

const WHATIF = path.join(__dirname, 'whatif');

/** Each variant: how the server starts, and the cases it is measured on. */
const VARIANTS = {
  'helmet headers precomputed once': { args: ['-r', path.join(WHATIF, 'static-security-headers.js')], cases: ['warning-anon'] },
  'log lines written 4 KB at a time': { args: ['-r', path.join(WHATIF, 'buffered-log.js')], cases: ['warning-anon', 'post-redis'] },
  'SQLite store without touch on every read': { args: ['-r', path.join(WHATIF, 'sqlite-no-touch.js')], cases: ['warning-session-sqlite'] },
  // the live heap after a full GC is about 18 MiB; V8 sizes the heap for a 24 GiB machine unless told
  'young generation 8 MiB (--max-semi-space-size=4)': { args: ['--max-semi-space-size=4'], cases: ['post-redis'], memory: true },
  'old generation capped (--max-old-space-size=64)': { args: ['--max-old-space-size=64'], cases: ['post-redis'], memory: true },
  'both (--max-semi-space-size=8 --max-old-space-size=64)': { args: ['--max-semi-space-size=8', '--max-old-space-size=64'], cases: ['post-redis'], memory: true },
};

const CASES = {
  'warning-anon': { store: 'sqlite', request: () => ({ path: '/connect', headers: lib.BROWSER_NAVIGATION }) },
  'warning-session-sqlite': { store: 'sqlite', request: ({ sessionCookie }) => ({ path: '/connect', headers: { cookie: sessionCookie } }) },
  'warning-session-redis': { store: 'redis', request: ({ sessionCookie }) => ({ path: '/connect', headers: { cookie: sessionCookie } }) },
  'post-redis': { store: 'redis', request: ({ csrfCookie, postBody }) => ({ path: '/connect', method: 'POST', headers: { cookie: csrfCookie, 'content-type': lib.FORM }, body: postBody }) },
};

/** Noise from other processes only adds CPU time, so the least of the rounds is the best estimate of the cost. */
const least = (values) => Math.min(...values);

async function prepared(rig, bench, store, args, tag, port) {
  const server = await rig.startServer(store, { tag, extraNodeArgs: args, port });
  let connected;
  for (let i = 0; i < 10; i += 1) {
    ({ jar: connected } = await lib.walkFlow({ app: server.app, sim: rig.sim, appOrigin: server.origin, simOrigin: rig.simOrigin, userId: 40_000_000 + Math.floor(Math.random() * 1e6) }));
  }
  const { cookie: csrfCookie, token } = await bench.csrfPair({ appOrigin: server.origin }, server);
  return { server, inputs: { sessionCookie: lib.cookieHeader(connected), csrfCookie, postBody: lib.form({ _csrf: token, perm_doc: 'read', return_to: '/after' }) } };
}

async function main() {
  const bench = require('./run');
  const option = (name, fallback) => (process.argv.includes(`--${name}`) ? Number(process.argv[process.argv.indexOf(`--${name}`) + 1]) : fallback);
  const rounds = option('rounds', 3);
  const seconds = option('seconds', 3);
  const only = process.argv.includes('--variants') ? process.argv[process.argv.indexOf('--variants') + 1].split(',') : undefined;
  lib.pinSelf(bench.LOAD_CORE);
  const rig = new bench.Rig();
  const lines = [];
  try {
    await rig.start();
    for (const [variant, spec] of Object.entries(VARIANTS)) {
      if (only && !only.some((name) => variant.startsWith(name))) continue;
      for (const caseName of spec.cases) {
        const c = CASES[caseName];
        // both servers run side by side on the server core (one idle while the other is measured); the callback's port does not matter here
        const [basePort, changedPort] = await Promise.all([lib.freePort(), lib.freePort()]);
        const base = await prepared(rig, bench, c.store, [], 'whatif-base', basePort);
        const changed = await prepared(rig, bench, c.store, spec.args, 'whatif-changed', changedPort);
        const costs = { base: [], changed: [] };
        for (const side of [base, changed]) await bench.cannon(side.server.origin, c.request(side.inputs), 3, side.server.child.pid); // past the JIT's warm-up
        for (let round = 0; round < rounds; round += 1) {
          for (const [label, side] of [['base', base], ['changed', changed]]) {
            const run = await bench.cannon(side.server.origin, c.request(side.inputs), seconds, side.server.child.pid);
            costs[label].push((run.serverCpu * 1000) / run.rps);
          }
        }
        const peaks = [lib.memoryOf(base.server.child.pid).peak, lib.memoryOf(changed.server.child.pid).peak];
        await rig.stopServer(base.server);
        await rig.stopServer(changed.server);
        const b = least(costs.base);
        const v = least(costs.changed);
        const memory = spec.memory ? `; peak RSS ${(peaks[0] / 2 ** 20).toFixed(0)} → ${(peaks[1] / 2 ** 20).toFixed(0)} MiB` : '';
        const line = `${variant} · ${caseName}: ${b.toFixed(3)} → ${v.toFixed(3)} ms CPU/request (${(((v - b) / b) * 100).toFixed(1)}%; rounds ${costs.base.map((x) => x.toFixed(3)).join(' ')} | ${costs.changed.map((x) => x.toFixed(3)).join(' ')})${memory}`;
        process.stdout.write(`${line}\n`);
        lines.push(line);
      }
    }
  } finally {
    await rig.stop();
    require('node:fs').rmSync(rig.dir, { recursive: true, force: true });
  }
  if (!process.argv.includes('--no-write') && !only) {
    const { execSync } = require('node:child_process');
    const os = require('node:os');
    const commit = execSync('git rev-parse --short HEAD', { cwd: path.join(__dirname, '..') }).toString().trim();
    const head = `## What-if: CPU time per request with one change\n\nRun ${new Date().toISOString()} · commit ${commit} · ${os.cpus().length} cores · Node ${process.version} · load average ${os.loadavg()[0].toFixed(2)}. ` +
      `Two servers side by side on core 1 (unchanged, changed), ${rounds} alternating runs of ${seconds} s each at 50 connections after 3 s of warm-up; the figure is the least CPU time per request of the runs (other load only adds). ` +
      'Changes are made in the running process by a preload (bench/whatif/) or Node flags; src/ is untouched.\n\n';
    require('./results').writeSection('whatif', `${head}${lines.map((line) => `- ${line}`).join('\n')}\n`);
  }
}

main().catch((error) => {
  process.stderr.write(`${error.stack ?? error}\n`);
  process.exit(1);
});
