'use strict';
/**
 * The rig: everything a benchmark run starts, each in its own child process
 * on loopback, and stops again. A private redis-server, the ipernity
 * simulator (`dist/simulator/server.js`), the reference (a bare Express 5
 * "hello", floors/reference-server.js), the built server (`dist/server.js`,
 * with either session store) and the floor servers (floors/). With taskset,
 * the server under test, the reference and the floors run on core 1
 * (SERVER_CORE); the load generator (this process), the simulator and
 * redis-server on core 0 (LOAD_CORE).
 *
 * The servers under test, the reference and the floors run on SETTINGS.node
 * (`--node <path>`, bench/node.js); the simulator and the load generator on
 * the Node running this script.
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { setTimeout: sleep } = require('node:timers/promises');
const { Pool } = require('undici');
const lib = require('./lib');
const { SETTINGS } = require('./settings');
const { serverNode, ownBetterSqlite3 } = require('./node');

const ROOT = path.join(__dirname, '..');
const FLOORS = path.join(__dirname, 'floors');
const API_KEY = 'bench-api-key-0123456789abcdef';
const API_SECRET = 'bench-api-secret-fedcba9876543210';
const REDIS_PREFIX = 'ipernity-connect:';
const SERVER_CORE = 1;
const LOAD_CORE = 0;
/** The heap caps the image (NODE_OPTIONS) and `npm start` run the server with. */
const PRODUCTION_NODE_ARGS = ['--max-semi-space-size=8', '--max-old-space-size=96'];

/** Everything started for the run, so it can all be stopped. */
class Rig {
  constructor() {
    /** The Node the servers under test, the reference and the floors run on. */
    this.node = serverNode(SETTINGS.node);
    ownBetterSqlite3();
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ipernity-connect-bench-'));
    this.children = [];
    lib.killOnInterrupt(this.children);
  }

  async start() {
    [this.redisPort, this.simPort, this.appPort, this.refPort] = await Promise.all([lib.freePort(), lib.freePort(), lib.freePort(), lib.freePort()]);
    this.appOrigin = `http://127.0.0.1:${this.appPort}`;
    this.simOrigin = `http://127.0.0.1:${this.simPort}`;
    this.refOrigin = `http://127.0.0.1:${this.refPort}`;
    this.redis = this.#spawn(LOAD_CORE, 'redis-server', ['--port', String(this.redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir]);
    this.reference = this.#spawn(SERVER_CORE, this.node.path, [path.join(FLOORS, 'reference-server.js')], { env: { ...process.env, PORT: String(this.refPort), NODE_ENV: 'production' } });
    await Promise.all([lib.waitForPort(this.redisPort), lib.waitForPort(this.refPort), this.restartSimulator()]);
  }

  /**
   * A fresh simulator: it keeps every user and frob it ever made, and its
   * authorization page lists users in time proportional to how many there
   * are, so each store's cases start from an empty one.
   */
  async restartSimulator() {
    if (this.simulator) {
      await this.sim.close();
      await lib.stopChild(this.simulator);
      this.children = this.children.filter((child) => child !== this.simulator);
    }
    this.simulator = this.#spawn(LOAD_CORE, process.execPath, [path.join(ROOT, 'dist/simulator/server.js')], {
      env: { ...process.env, SIMULATOR_PORT: String(this.simPort), SIMULATOR_API_KEY: API_KEY, SIMULATOR_API_SECRET: API_SECRET, SIMULATOR_CALLBACK_URL: `${this.appOrigin}/connect/callback` },
    });
    await lib.waitForPort(this.simPort);
    this.sim = new Pool(this.simOrigin, { connections: SETTINGS.concurrency });
  }

  /** The server with one session store, pinned to the server core, logging at info to a file; `root` is another build's checkout. */
  async startServer(store, { extraNodeArgs = PRODUCTION_NODE_ARGS, tag = store, port = this.appPort, root = ROOT } = {}) {
    const logFile = path.join(this.dir, `server-${tag}.log`);
    const origin = `http://127.0.0.1:${port}`;
    const env = lib.serverEnv(
      { node: this.node, port, simOrigin: this.simOrigin, apiKey: API_KEY, apiSecret: API_SECRET, dataDir: path.join(this.dir, `data-${tag}`) },
      {
        IPERNITY_TIMEOUT_MS: '5000',
        SESSION_STORE: store,
        REDIS_URL: `redis://127.0.0.1:${this.redisPort}`,
        // the gateway rows: doc.getList for the connected visitors
        IPERNITY_API_METHODS: 'doc.getList',
      },
    );
    const child = this.#spawn(SERVER_CORE, this.node.path, [...this.node.args, ...extraNodeArgs, path.join(root, 'dist/server.js')], { env, logFile, cwd: root });
    await lib.waitForPort(port);
    // ready means the store answers too
    for (let i = 0; i < 100; i += 1) {
      const ready = await fetch(`${origin}/readyz`).then((r) => r.status, () => 0);
      if (ready === 200) break;
      await sleep(50);
    }
    const app = new Pool(origin, { connections: SETTINGS.concurrency });
    return { child, app, origin, logFile, dataDir: env.DATA_DIR, store };
  }

  async stopServer(server) {
    await server.app.close();
    const code = await lib.stopChild(server.child);
    this.children = this.children.filter((child) => child !== server.child);
    return code;
  }

  /**
   * Starts a floor server from bench/floors/ on the server core (with the rig's Redis and simulator in its
   * environment), hands it to `use` once it listens, and stops it afterwards.
   */
  async withFloorServer(script, use) {
    const port = await lib.freePort();
    const logFile = path.join(this.dir, `${path.basename(script, '.js')}.log`);
    const child = this.#spawn(SERVER_CORE, this.node.path, [path.join(FLOORS, script)], {
      env: { ...process.env, PORT: String(port), NODE_ENV: 'production', REDIS_URL: `redis://127.0.0.1:${this.redisPort}`, IPERNITY_API_URL: `${this.simOrigin}/api`, IPERNITY_API_KEY: API_KEY, IPERNITY_API_SECRET: API_SECRET },
      logFile,
    });
    const origin = `http://127.0.0.1:${port}`;
    const app = new Pool(origin, { connections: SETTINGS.concurrency });
    try {
      await lib.waitForPort(port);
      return await use({ child, origin, logFile, app });
    } finally {
      await app.close();
      await lib.stopChild(child);
      this.children = this.children.filter((c) => c !== child);
    }
  }

  #spawn(core, command, args, options = {}) {
    const child = lib.spawnPinned(core, command, args, options);
    this.children.push(child);
    return child;
  }

  async stop() {
    await this.sim?.close().catch(() => undefined);
    await Promise.all(this.children.map((child) => lib.stopChild(child, 5000)));
  }
}

module.exports = { Rig, ROOT, API_KEY, API_SECRET, REDIS_PREFIX, SERVER_CORE, LOAD_CORE, PRODUCTION_NODE_ARGS };
