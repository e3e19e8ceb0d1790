'use strict';
/**
 * The runner's command-line settings, read once from process.argv. bench/run.js,
 * bench/whatif.js and bench/profile.js all take these (each adds its own).
 *
 *   --rounds N (3)            throughput rounds per row
 *   --seconds S (3)           seconds per throughput run
 *   --connections N (50)      autocannon connections
 *   --flow-seconds S (10)     seconds of complete flows
 *   --callbacks N (3000)      prepared callbacks for the closed loop
 *   --paced-rate R (200)      callbacks per second in the paced row
 *   --paced-seconds S (15)    seconds of paced callbacks
 *   --max-other-load F (0.1)  a run pair where other processes took more of the server core is repeated...
 *   --retries N (2)           ...at most this many times
 *   --quick                   1 round of 2 s, 4 s of flows
 *   --node PATH               the Node binary the servers under test, the reference and the floors run on
 *                             (default: this one); see rig.js for its better-sqlite3
 *   --no-write                do not touch bench/RESULTS.md
 *   --profile                 CPU profiles instead (profile.js)
 */
const path = require('node:path');

function option(name, fallback) {
  const at = process.argv.indexOf(`--${name}`);
  return at === -1 ? fallback : Number(process.argv[at + 1]);
}

function stringOption(name, fallback) {
  const at = process.argv.indexOf(`--${name}`);
  if (at === -1) return fallback;
  const value = process.argv[at + 1];
  if (value === undefined || value.startsWith('--')) throw new Error(`--${name} needs a value`);
  return value;
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
  /** The Node binary for the servers under test, the reference and the floor servers. */
  node: path.resolve(stringOption('node', process.execPath)),
  write: !process.argv.includes('--no-write'),
  profile: process.argv.includes('--profile'),
};

module.exports = { SETTINGS, option, stringOption };
