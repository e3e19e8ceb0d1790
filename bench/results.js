'use strict';
/**
 * bench/RESULTS.md holds sections, each rewritten by its own tool
 * (`npm run bench`, `node bench/whatif.js` and `npm run test:reliability`)
 * without touching the others. `npm run bench --node <another Node>` writes
 * `bench-node<major>`, kept beside `bench`.
 */
const fs = require('node:fs');
const path = require('node:path');

const FILE = path.join(__dirname, 'RESULTS.md');
const ORDER = ['bench', 'bench-node*', 'whatif', 'reliability'];
const HEADER = '# Benchmark and reliability results\n\nWritten by `npm run bench`, `node bench/whatif.js` and `npm run test:reliability`; each rewrites only its own section.\n';

/** Where a section goes: its place in ORDER (`bench-node24` as `bench-node*`), then its name. */
const rank = (name) => {
  const at = ORDER.findIndex((known) => (known.endsWith('*') ? name.startsWith(known.slice(0, -1)) : name === known));
  return at === -1 ? ORDER.length : at;
};

/** Replaces (or adds) the section named `name` with `text`. */
function writeSection(name, text, file = FILE) {
  const current = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
  const sections = {};
  for (const match of current.matchAll(/<!-- ([a-z0-9-]+):start -->\n([\s\S]*?)<!-- \1:end -->/g)) sections[match[1]] = match[2];
  sections[name] = text.endsWith('\n') ? text : `${text}\n`;
  const names = Object.keys(sections).sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  const body = names.map((section) => `<!-- ${section}:start -->\n${sections[section]}<!-- ${section}:end -->\n`);
  fs.writeFileSync(file, `${HEADER}\n${body.join('\n')}`);
}

module.exports = { writeSection, FILE };
