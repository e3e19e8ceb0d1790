'use strict';
/**
 * bench/RESULTS.md holds two sections, each rewritten by its own tool
 * (`npm run bench` and `npm run test:reliability`) without touching the other.
 */
const fs = require('node:fs');
const path = require('node:path');

const FILE = path.join(__dirname, 'RESULTS.md');
const ORDER = ['bench', 'whatif', 'reliability'];
const HEADER = '# Benchmark and reliability results\n\nWritten by `npm run bench`, `node bench/whatif.js` and `npm run test:reliability`; each rewrites only its own section.\n';

/** Replaces (or adds) the section named `name` with `text`. */
function writeSection(name, text, file = FILE) {
  const current = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
  const sections = {};
  for (const section of ORDER) {
    const match = new RegExp(`<!-- ${section}:start -->\\n([\\s\\S]*?)<!-- ${section}:end -->`).exec(current);
    if (match) sections[section] = match[1];
  }
  sections[name] = text.endsWith('\n') ? text : `${text}\n`;
  const body = ORDER.filter((section) => sections[section] !== undefined).map((section) => `<!-- ${section}:start -->\n${sections[section]}<!-- ${section}:end -->\n`);
  fs.writeFileSync(file, `${HEADER}\n${body.join('\n')}`);
}

module.exports = { writeSection, FILE };
