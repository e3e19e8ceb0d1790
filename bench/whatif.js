'use strict';
/**
 * Side-by-side measurements of the server's CPU time per request:
 *
 *   npm run build && node bench/whatif.js [--variants name,...] [--cases ...] [--rounds 6] [--seconds 3]
 *     one change made in the running process (a preload from bench/whatif/,
 *     or Node flags), against the unchanged server: what it would save
 *     (--cases keeps only those of each variant's cases);
 *   npm run build && node bench/whatif.js --against <git revision> [--cases warning-anon,post-redis]
 *     the working tree's build against the build of an earlier revision:
 *     what the commits since then bought (cases: bench/lib.js's request
 *     loads, flows-redis or flows-sqlite for complete flows, and
 *     callback-sqlite or callback-redis for callbacks in a closed loop);
 *   npm run build && node bench/whatif.js --head <revision> [--base <revision>] [--cases ...]
 *     one revision's build against another's (--base defaults to the head's
 *     parent, so `--head C` is what commit C changed), both built from
 *     `git archive` into temporary folders that use this checkout's
 *     node_modules: the working tree and the index are not touched.
 *
 * --memory adds each side's peak RSS and, from its /metrics after the warm-up,
 * its RSS and V8 heap used (medians of the rounds). --node <path> runs both
 * servers on another Node (settings.js, node.js).
 *
 * Both servers run on the server core and are driven at the same time, each
 * by its own 50 connections, so whatever slows the core (other machines'
 * work on a shared host) slows both alike. Each round gives one ratio, the
 * changed server's CPU time per request over the other's, and the figure is
 * the median of the rounds. Run one after the other instead, rounds on a
 * busy host varied from 0.2 to 0.4 ms per request, burying changes of a few
 * percent. Every round starts both servers anew: two processes of one build
 * kept for a whole run differed by up to 4% in either direction, run to run;
 * with new processes each round, the same build against itself measured
 * -0.8% to +2.0% (three runs of six rounds, two loads each). Changes below about 2% need
 * repeated runs.
 */
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const lib = require('./lib');
const { Rig, LOAD_CORE, PRODUCTION_NODE_ARGS } = require('./rig');
const cases = require('./cases');

const ROOT = path.join(__dirname, '..');
const WHATIF = path.join(__dirname, 'whatif');

/** Each variant: how the changed server starts, the cases it is measured on, and how the unchanged one starts (`base`: npm start's heap caps unless given). */
const VARIANTS = {
  'helmet headers precomputed once': { args: [...PRODUCTION_NODE_ARGS, '-r', path.join(WHATIF, 'static-security-headers.js')], cases: ['warning-anon'] },
  'log lines written 4 KB at a time': { args: [...PRODUCTION_NODE_ARGS, '-r', path.join(WHATIF, 'buffered-log.js')], cases: ['warning-anon', 'post-redis'] },
  // npm start's and the image's heap caps, against none and against halving the young generation
  'heap caps against none': { base: [], args: PRODUCTION_NODE_ARGS, cases: ['flows-sqlite'], memory: true },
  // on Node 24 V8 sizes the young generation from the old generation's cap, so the cap alone shrinks it too
  'old generation capped alone (--max-old-space-size=96), against the caps': { args: ['--max-old-space-size=96'], cases: ['connection-redis'], memory: true },
  'young generation halved (--max-semi-space-size=8 --max-old-space-size=96), against the caps': {
    args: ['--max-semi-space-size=8', '--max-old-space-size=96'],
    cases: ['warning-session-redis', 'post-sqlite', 'flows-sqlite', 'callback-sqlite', 'callback-redis'],
    memory: true,
  },
};

const CASES = {
  ...lib.REQUEST_CASES,
  // complete flows from 50 visitors per server: every route in a flow's proportions
  'flows-redis': { store: 'redis', flows: true },
  'flows-sqlite': { store: 'sqlite', flows: true },
  // callbacks from 50 visitors per server in a closed loop, ipernity answering after 20 ms (prepared attempt+frob pairs)
  'callback-sqlite': { store: 'sqlite', callbacks: true },
  'callback-redis': { store: 'redis', callbacks: true },
};

/** Callbacks replayed per second of a callback case's drive (each server takes about half the core). */
const CALLBACKS_PER_SECOND = 300;

const option = (name, fallback) => (process.argv.includes(`--${name}`) ? process.argv[process.argv.indexOf(`--${name}`) + 1] : fallback);
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

/** A server warmed with ten complete flows (so its JIT has seen every route), and the inputs its case needs. */
async function prepared(rig, store, { args, tag, port, root }) {
  const server = await rig.startServer(store, { tag, extraNodeArgs: args, port, root });
  let connected;
  for (let i = 0; i < 10; i += 1) {
    ({ jar: connected } = await lib.walkFlow({ app: server.app, sim: rig.sim, appOrigin: server.origin, simOrigin: rig.simOrigin, userId: 40_000_000 + Math.floor(Math.random() * 1e6) }));
  }
  const { cookie: csrfCookie, token } = await cases.csrfPair({ appOrigin: server.origin }, server);
  return { server, inputs: { sessionCookie: lib.cookieHeader(connected), csrfCookie, postBody: lib.form({ _csrf: token, perm_doc: 'read', return_to: '/after' }) } };
}

/** Builds `revision` into a temporary folder (from `git archive`) that uses this checkout's node_modules; answers the folder. */
function buildRevision(revision) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ipernity-connect-against-'));
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  const archive = execFileSync('git', ['archive', revision, 'src', 'views', 'public', 'package.json', 'tsconfig.json', 'tsconfig.build.json'], { cwd: ROOT, maxBuffer: 64 * 2 ** 20 });
  execFileSync('tar', ['-x', '-C', dir], { input: archive });
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  execFileSync(path.join(ROOT, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.build.json'], { cwd: dir, stdio: 'inherit' });
  return dir;
}

/** One comparison: `base` and `changed` started side by side on the server core, driven at the same time. */
async function sideBySide(rig, caseName, base, changed, rounds, seconds, memory) {
  const c = CASES[caseName];
  if (!c) throw new Error(`no case ${caseName}; cases: ${Object.keys(CASES).join(', ')}`);
  const costs = [[], []];
  const ratios = [];
  const peaks = [0, 0];
  const warm = [[], []];
  for (let round = 0; round < rounds; round += 1) {
    // new processes every round, started in turn first: two processes of the same build can differ by a few
    // percent for as long as they run (what their JIT made of the code), which a round of its own averages out
    const [basePort, changedPort] = await Promise.all([lib.freePort(), lib.freePort()]);
    const specs = [{ ...base, tag: 'whatif-base', port: basePort }, { ...changed, tag: 'whatif-changed', port: changedPort }];
    const order = round % 2 === 0 ? [0, 1] : [1, 0];
    const sides = [];
    try {
      for (const i of order) sides[i] = await prepared(rig, c.store, specs[i]);
      const name = (i) => `${caseName}, ${i === 0 ? 'unchanged' : 'changed'}`;
      const pairs = c.callbacks ? await Promise.all(sides.map((side) => cases.prepareCallbacks(rig, side.server, (3 + seconds) * CALLBACKS_PER_SECOND))) : [];
      const load = (side, i, s) => {
        if (c.flows) return cases.flowsCase(rig, side.server, name(i), s);
        if (c.callbacks) return cases.replayCallbacks(rig, side.server, name(i), pairs[i].splice(0, s * CALLBACKS_PER_SECOND), { p50: NaN, p99: NaN });
        return cases.cannon(side.server.origin, c.request(side.inputs), s, side.server.child.pid);
      };
      const drive = (s) => Promise.all(sides.map((side, i) => load(side, i, s)));
      if (c.callbacks) await cases.setFault(rig, { delayMs: cases.UPSTREAM_DELAY_MS, methods: ['auth.getToken'] });
      await drive(3); // past the JIT's warm-up
      if (memory) {
        for (const [i, side] of sides.entries()) {
          const m = await lib.scrapeMetrics(side.server.app, side.server.origin);
          warm[i].push({ rss: m.get('process_resident_memory_bytes'), heapUsed: m.get('nodejs_heap_size_used_bytes') });
        }
      }
      const runs = await drive(seconds);
      runs.forEach((run, i) => costs[i].push((run.serverCpu * 1000) / run.rps));
      ratios.push(costs[1][round] / costs[0][round]);
      sides.forEach((side, i) => (peaks[i] = Math.max(peaks[i], lib.memoryOf(side.server.child.pid).peak)));
    } finally {
      if (c.callbacks) await cases.setFault(rig, undefined);
      for (const side of sides) if (side) await rig.stopServer(side.server);
    }
  }
  const warmMedian = (i, key) => median(warm[i].map((m) => m[key]));
  const warmed = memory ? [0, 1].map((i) => ({ rss: warmMedian(i, 'rss'), heapUsed: warmMedian(i, 'heapUsed') })) : undefined;
  return { base: median(costs[0]), changed: median(costs[1]), ratio: median(ratios), ratios, peaks, warmed };
}

function describe(label, result, memory) {
  const change = (Math.abs(result.ratio - 1) < 0.0005 ? 0 : (result.ratio - 1) * 100).toFixed(1);
  const mib = (bytes) => (bytes / 2 ** 20).toFixed(1);
  const warmed = result.warmed ? `; after warm-up RSS ${mib(result.warmed[0].rss)} → ${mib(result.warmed[1].rss)} MiB, V8 heap used ${mib(result.warmed[0].heapUsed)} → ${mib(result.warmed[1].heapUsed)} MiB` : '';
  const peaks = memory ? `; peak RSS ${(result.peaks[0] / 2 ** 20).toFixed(0)} → ${(result.peaks[1] / 2 ** 20).toFixed(0)} MiB${warmed}` : '';
  // the figure is the median of the per-round ratios; the medians of each side's own rounds can disagree with it, as the core's speed moved
  return `${label}: ${change > 0 ? '+' : ''}${change}% CPU per request (ratio per round ${result.ratios.map((r) => r.toFixed(3)).join(' ')}; ` +
    `unchanged ${result.base.toFixed(3)}, changed ${result.changed.toFixed(3)} ms, medians of their rounds)${peaks}`;
}

async function main() {
  const rounds = Number(option('rounds', 6));
  const seconds = Number(option('seconds', 3));
  const against = option('against', undefined);
  const head = option('head', undefined);
  const memory = process.argv.includes('--memory');
  const only = option('variants', undefined)?.split(',');
  const casesAsked = option('cases', undefined)?.split(',');
  const comparisons = [];
  if (against || head) {
    if (against && head) throw new Error('--against compares with the working tree; --head names the other revision: give one');
    const short = (revision) => execFileSync('git', ['rev-parse', '--short', revision], { cwd: ROOT }).toString().trim();
    const baseRevision = short(against ?? option('base', `${head}^`));
    const headRevision = head && short(head);
    const root = buildRevision(baseRevision);
    const headRoot = headRevision ? buildRevision(headRevision) : ROOT;
    for (const caseName of option('cases', 'warning-anon,post-redis').split(',')) {
      comparisons.push({ label: `${baseRevision} → ${headRevision ?? 'working tree'} · ${caseName}`, caseName, base: { args: PRODUCTION_NODE_ARGS, root }, changed: { args: PRODUCTION_NODE_ARGS, root: headRoot }, memory });
    }
  } else {
    for (const [variant, spec] of Object.entries(VARIANTS)) {
      if (only && !only.some((name) => variant.startsWith(name))) continue;
      for (const caseName of spec.cases.filter((name) => !casesAsked || casesAsked.includes(name))) comparisons.push({ label: `${variant} · ${caseName}`, caseName, base: { args: spec.base ?? PRODUCTION_NODE_ARGS }, changed: { args: spec.args }, memory: spec.memory || memory });
    }
  }

  lib.pinSelf(LOAD_CORE);
  const rig = new Rig();
  const lines = [];
  try {
    await rig.start();
    for (const comparison of comparisons) {
      const result = await sideBySide(rig, comparison.caseName, comparison.base, comparison.changed, rounds, seconds, comparison.memory);
      const line = describe(comparison.label, result, comparison.memory);
      process.stdout.write(`${line}\n`);
      lines.push(line);
    }
  } finally {
    await rig.stop();
    fs.rmSync(rig.dir, { recursive: true, force: true });
  }
  if (!process.argv.includes('--no-write') && !only && !against && !head) {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT }).toString().trim();
    const heading = `## What-if: CPU time per request with one change\n\nRun ${new Date().toISOString()} · commit ${commit} · ${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown'}) · Node ${rig.node.version} · load average ${os.loadavg()[0].toFixed(2)}. ` +
      `Two servers side by side on core 1 (unchanged, changed), started anew for each of ${rounds} rounds, warmed with ten flows and 3 s of load, then driven at the same time by 50 connections each for ${seconds} s; ` +
      'each round gives the changed server\'s CPU time per request over the unchanged one\'s, and the figure is the median of the rounds. ' +
      'Changes are made in the running process by a preload (bench/whatif/) or Node flags; src/ is untouched.\n\n';
    require('./results').writeSection('whatif', `${heading}${lines.map((line) => `- ${line}`).join('\n')}\n`);
  }
}

main().catch((error) => {
  process.stderr.write(`${error.stack ?? error}\n`);
  process.exit(1);
});
