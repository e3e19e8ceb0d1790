'use strict';
/**
 * Summarises a V8 .cpuprofile: where the samples were (self time) by
 * function and by package, and inclusive time of the frames worth naming.
 *
 *   node bench/profile-summary.js bench/profiles/<case>.cpuprofile [--top 25]
 */
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');

/** Where a frame's code lives: a package, our own file, Node's internals, or V8's pseudo-frames. */
function ownerOf(url, functionName) {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  const file = url.replace(/^file:\/\//, '');
  const modules = file.lastIndexOf('node_modules/');
  if (modules !== -1) {
    const rest = file.slice(modules + 'node_modules/'.length).split('/');
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  if (file.startsWith('node:')) return `node:${file.slice(5).split('/')[0] === 'internal' ? 'internal' : file.slice(5)}`;
  if (file.startsWith(ROOT)) return path.relative(ROOT, file);
  return file;
}

function frameName(frame) {
  const where = frame.url ? `${ownerOf(frame.url, frame.functionName)}:${frame.lineNumber + 1}` : '';
  return `${frame.functionName || '(anonymous)'}${where ? ` ${where}` : ''}`;
}

/** Self and inclusive milliseconds per frame and per owner. */
function summarise(profile, window) {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const self = new Map();
  const inclusive = new Map();
  const owners = new Map();
  let total = 0;
  let idle = 0;
  let at = profile.startTime;
  let first = Infinity;
  let last = -Infinity;
  profile.samples.forEach((id, i) => {
    at += profile.timeDeltas[i] ?? 0;
    if (window && (at < window.from || at > window.to)) return;
    first = Math.min(first, at);
    last = Math.max(last, at);
    const ms = (profile.timeDeltas[i] ?? 0) / 1000;
    const node = byId.get(id);
    const frame = node.callFrame;
    if (frame.functionName === '(idle)') {
      idle += ms;
      return;
    }
    total += ms;
    const name = frameName(frame);
    self.set(name, (self.get(name) ?? 0) + ms);
    const owner = ownerOf(frame.url, frame.functionName);
    owners.set(owner, (owners.get(owner) ?? 0) + ms);
    const seen = new Set();
    for (let at = id; at !== undefined; at = parent.get(at)) {
      const key = frameName(byId.get(at).callFrame);
      if (!seen.has(key)) {
        seen.add(key);
        inclusive.set(key, (inclusive.get(key) ?? 0) + ms);
      }
    }
  });
  return { self, inclusive, owners, total, idle, wall: (last - first) / 1000 };
}

/** The summary as text lines: top self-time frames, owners, and inclusive time of named frames. */
function report(file, top = 25) {
  const profile = JSON.parse(fs.readFileSync(file, 'utf8'));
  // written by profile.js: the time under load, so start-up and warm-up are left out
  const windowFile = file.replace(/\.cpuprofile$/, '.window.json');
  const window = fs.existsSync(windowFile) ? JSON.parse(fs.readFileSync(windowFile, 'utf8')) : undefined;
  const s = summarise(profile, window);
  const pct = (ms) => `${((ms / s.total) * 100).toFixed(1).padStart(5)}%`;
  const sorted = (map) => [...map].sort((a, b) => b[1] - a[1]);
  const lines = [`${path.basename(file)}: ${s.total.toFixed(0)} ms busy, ${s.idle.toFixed(0)} ms idle over ${s.wall.toFixed(0)} ms${window ? ' under load' : ' (whole process: no window file)'}`];
  lines.push('  self time by function:');
  for (const [name, ms] of sorted(s.self).slice(0, top)) lines.push(`    ${pct(ms)}  ${name}`);
  lines.push('  self time by package / file:');
  for (const [name, ms] of sorted(s.owners).slice(0, 15)) lines.push(`    ${pct(ms)}  ${name}`);
  lines.push('  inclusive time of the work worth naming (middleware chains left out: next() nests them):');
  const chain = /^(canonicalHost|required|optional|enforceLifetime|\w+Middleware|internalNext|handle|next|handleRequest|processParams|trimPrefix|router|dispatch|session) /;
  const named = /dist\/|onResFinished|genReqId|renderString|render |resolvePath|serialize|hash |generate|save |set |get |inflate|parse |writeHead|_storeHeader|stringify|urlencodedParser|read /;
  const wanted = sorted(s.inclusive).filter(([name]) => named.test(name) && !chain.test(name)).slice(0, top);
  for (const [name, ms] of wanted) lines.push(`    ${pct(ms)}  ${name}`);
  return lines.join('\n');
}

if (require.main === module) {
  const files = process.argv.slice(2).filter((arg) => arg.endsWith('.cpuprofile'));
  const at = process.argv.indexOf('--top');
  const top = at === -1 ? 25 : Number(process.argv[at + 1]);
  if (files.length === 0) {
    process.stderr.write('usage: node bench/profile-summary.js <file.cpuprofile>... [--top N]\n');
    process.exit(2);
  }
  for (const file of files) process.stdout.write(`${report(file, top)}\n\n`);
}

module.exports = { report, summarise };
