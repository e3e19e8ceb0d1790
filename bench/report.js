'use strict';
/**
 * The report: the benchmark's tables as Markdown (the rows, where the
 * callback and flow time goes, and what the run left: bytes per session,
 * memory, logs), each row's target and whether it is met, and the section
 * of bench/RESULTS.md it is written to: `bench` for a run whose servers ran
 * on the Node running the benchmark, `bench-node<major>` for one on another
 * (`--node`), so a run on each keeps the other's.
 */
const { execSync } = require('node:child_process');
const os = require('node:os');
const lib = require('./lib');
const { SETTINGS } = require('./settings');
const { ROOT, SERVER_CORE, LOAD_CORE } = require('./rig');
const { writeSection } = require('./results');

const { pct, fmt } = lib;

function gitCommit() {
  try {
    const commit = execSync('git rev-parse --short HEAD', { cwd: ROOT }).toString().trim();
    const dirty = execSync('git status --porcelain -- src views public', { cwd: ROOT }).toString().trim() !== '';
    return dirty ? `${commit} + uncommitted changes in src/ or views/` : commit;
  } catch {
    return 'unknown';
  }
}


const mark = (ok) => (ok === undefined ? '' : ok ? 'met' : '**not met**');

/** Which Node ran what, for the header. */
function nodes(node) {
  const sqlite = node.betterSqlite3 ? `, better-sqlite3 built for it in ${node.betterSqlite3}` : '';
  if (node.sameAsLoadGenerator) return `Node ${process.version} (servers under test, reference, floors, load generator, simulator${sqlite})`;
  return `Node ${node.version} for the servers under test, the reference and the floors (${node.path}${sqlite}); Node ${process.version} for the load generator and the simulator`;
}

/** The RESULTS.md section a run writes, and its title. */
function section(node) {
  if (node.sameAsLoadGenerator || node.abi === process.versions.modules) return { name: 'bench', title: 'Benchmark' };
  const major = node.version.replace(/^v/, '').split('.')[0];
  return { name: `bench-node${major}`, title: `Benchmark on Node ${major}` };
}

function report(rows, facts, seconds) {
  const lines = [];
  const cpu = os.cpus()[0]?.model ?? 'unknown';
  lines.push(`Run ${new Date().toISOString()} · commit ${gitCommit()} · ${os.cpus().length} cores (${cpu}) · ${nodes(facts.node)} · ${os.platform()} ${os.release()} · load average ${facts.load.map((l) => l.toFixed(2)).join(' → ')}`);
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

/** Writes the report as its section of bench/RESULTS.md; answers the section's name. */
function write(text, node) {
  const { name, title } = section(node);
  writeSection(name, `## ${title}\n\n${text}\n`);
  return name;
}

module.exports = { report, write, section };
