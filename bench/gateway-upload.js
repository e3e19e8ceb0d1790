'use strict';
/**
 * What an upload through the gateway costs the server: `POST
 * /api/ipernity/upload.file` (multipart/form-data, the fields then one `file`
 * part) from a connected visitor with doc:write, streamed by the server to
 * the simulator. Targets (issue 22): a 200 MB upload raises the server's RSS
 * by at most 32 MiB and goes at least 0.7× as fast as a bare node:http proxy
 * piping the same bytes (the floor, measured in the same run); 20 concurrent
 * 20 MB uploads all arrive intact with the server's peak RSS within 160 MB.
 *
 *   npm run build && node bench/gateway-upload.js [--node PATH] [--rounds N] [--no-write]
 *
 * Processes: this one (the visitors: it connects them, sends the files and
 * writes the "Gateway uploads" section of bench/RESULTS.md, or "Gateway
 * uploads on Node <major>" with --node another Node), a standalone simulator
 * (dist/, limits large enough to keep every file, so that `doc.checkMD5`
 * proves every byte arrived), the server under test (`dist/server.js`, SQLite
 * sessions, the heap flags of `npm start`) and the floor
 * (floors/upload-pipe-floor-server.js), each alone in its process. With
 * taskset, the server and the floor run on core 1, this process and the
 * simulator on core 0 (as in `npm run bench`). The server and the floor run on
 * --node (bench/node.js gives that Node a better-sqlite3 it loads); this
 * process and the simulator on the Node running the script.
 *
 * Each measured upload: half a second idle, the process's VmRSS read, its
 * peak (VmHWM) reset through /proc/<pid>/clear_refs, VmRSS sampled every
 * 50 ms, the upload (`async=0`: answered once the simulator has the
 * document), VmHWM read again; "rise" is that peak minus the RSS before. The
 * floor's client sends the body the gateway itself would send: the same
 * fields, signed with the same visitor's token, then the same file bytes.
 * Rounds alternate which of the two goes first.
 */
const { execFileSync, fork } = require('node:child_process');
const { createHash, randomBytes } = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const { setTimeout: sleep } = require('node:timers/promises');
const { Pool } = require('undici');
const lib = require('./lib');
const { SETTINGS } = require('./settings');
const { serverNode } = require('./node');
const { ROOT, SERVER_CORE, LOAD_CORE, PRODUCTION_NODE_ARGS } = require('./rig');
const { logTrouble } = require('./cases');

const DIST = path.join(ROOT, 'dist');
const API_KEY = 'bench-gateway-upload-key';
const API_SECRET = 'bench-gateway-upload-secret';
const MB = 1000 * 1000;
const MiB = 1024 * 1024;
const BIG_BYTES = 200 * MB;
const EACH_BYTES = 20 * MB;
const CONCURRENT = 20;
const WARM_BYTES = 1 * MB;
const UPLOAD_MAX_BYTES = 256 * MiB;
const SAMPLE_MS = 50;
const CHUNK = 64 * 1024;
const TARGET = { riseMiB: 32, ratio: 0.7, peakBytes: 160 * MB };
const FIELDS = { title: 'gateway upload benchmark', async: '0' };
const FILE = { fileName: 'bench.jpg', contentType: 'image/jpeg' };
const say = lib.say;

/** The simulator, alone in its process: answers its URL, then each user's tokens over IPC. */
function simulatorMain(appOrigin) {
  const { createSimulatorApp } = require(path.join(DIST, 'simulator', 'app.js'));
  const sim = createSimulatorApp({
    apps: [{ apiKey: API_KEY, apiSecret: API_SECRET, name: 'bench', callbackUrl: `${appOrigin}/connect/callback` }],
    openUsers: true,
    // every file is kept whole (its md5 proves it arrived), the 20 concurrent ones at once, then deleted
    uploads: { processingMs: 10, maxFileBytes: BIG_BYTES + MiB, maxTotalBytes: 4 * CONCURRENT * EACH_BYTES + 4 * BIG_BYTES },
  });
  const server = http.createServer(sim.app);
  server.listen(0, '127.0.0.1', () => process.send({ url: `http://127.0.0.1:${server.address().port}` }));
  process.on('message', (message) => {
    // the token the server holds for this user (their only one), and one with doc:delete for checks and cleaning up
    const visitor = sim.state.issuedTokens().filter((token) => sim.state.token(API_KEY, token)?.userId === message.userId).pop();
    const { token: admin } = sim.state.exchangeFrob(API_KEY, sim.state.createAuthorizedFrob(API_KEY, message.userId, { doc: 'delete' }));
    process.send({ id: message.id, visitor, admin });
  });
  process.on('disconnect', () => process.exit(0));
}

/** 1 MiB of random bytes: every file is made of views of it (no allocation in this process). */
const BLOCK = randomBytes(MiB);

/**
 * The chunks of a `bytes`-long JPEG-looking file (its start and end markers
 * around views of BLOCK, so that the simulator keeps it as a photo); `seed`
 * shifts the views, so that files of different seeds differ.
 */
function* fileChunks(bytes, seed) {
  let made = 0;
  while (made < bytes) {
    let chunk;
    if (made === 0) chunk = Buffer.from([0xff, 0xd8]);
    else if (bytes - made <= 2) chunk = Buffer.from([0xff, 0xd9]).subarray(2 - (bytes - made));
    else {
      const at = (made + seed * 7919) % (MiB - CHUNK);
      chunk = BLOCK.subarray(at, at + Math.min(CHUNK, bytes - made - 2));
    }
    made += chunk.length;
    yield chunk;
  }
}

const md5Of = (bytes, seed) => {
  const hash = createHash('md5');
  for (const chunk of fileChunks(bytes, seed)) hash.update(chunk);
  return hash.digest('hex');
};

/**
 * One multipart POST: `frame.head`, the file's chunks as the socket takes
 * them, `frame.tail`, with its Content-Length; answers the status, the JSON
 * answer and the seconds from the first byte to the answer's end.
 */
function send(url, headers, frame, bytes, seed) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    let answered = false;
    const request = http.request(url, {
      method: 'POST',
      agent: false,
      headers: { ...headers, accept: 'application/json', 'content-type': `multipart/form-data; boundary=${frame.boundary}`, 'content-length': frame.head.length + bytes + frame.tail.length },
    }, (response) => {
      answered = true;
      const chunks = [];
      response.on('data', (chunk) => chunks.push(chunk));
      response.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try {
          json = JSON.parse(text);
        } catch {
          json = { unparsed: text.slice(0, 200) };
        }
        resolve({ status: response.statusCode, json, seconds: (performance.now() - started) / 1000 });
      });
    });
    request.on('error', (error) => {
      if (!answered) reject(error);
    });
    const chunks = fileChunks(bytes, seed);
    const pump = () => {
      for (;;) {
        const next = chunks.next();
        if (next.done) {
          request.end(frame.tail);
          return;
        }
        if (!request.write(next.value)) {
          request.once('drain', pump);
          return;
        }
      }
    };
    request.write(frame.head);
    pump();
  });
}

/** Asks a forked child over IPC and answers its reply (matched by id). */
function asker(child) {
  let next = 0;
  const waiting = new Map();
  child.on('message', (message) => {
    waiting.get(message.id)?.(message);
    waiting.delete(message.id);
  });
  return (message) =>
    new Promise((resolve) => {
      next += 1;
      waiting.set(next, resolve);
      child.send({ ...message, id: next });
    });
}

function firstMessage(child) {
  return new Promise((resolve, reject) => {
    child.once('message', resolve);
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`child exited with ${code} before answering`)));
  });
}

/** Resets a process's VmHWM to its current RSS (Linux ≥ 4.0); false when /proc does not allow it. */
function resetPeak(pid) {
  try {
    fs.writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/**
 * Seconds every core together has spent in processes so far (user, nice,
 * system; from /proc/stat). Interrupts are left out: the loopback traffic a
 * process sends is handled in softirq time, counted to no process.
 */
function processSeconds() {
  try {
    const line = fs.readFileSync('/proc/stat', 'utf8').split('\n').find((l) => l.startsWith('cpu '));
    const [user, nice, system] = line.trim().split(/\s+/).slice(1).map(Number);
    return (user + nice + system) / 100;
  } catch {
    return NaN;
  }
}

/** Runs `work` while watching process `pid`: its RSS before, its peak during (VmHWM since a reset, and 50 ms samples), its CPU seconds. */
async function watched(pid, simulatorPid, work) {
  await sleep(500);
  const lifePeak = lib.memoryOf(pid).peak;
  const before = lib.memoryOf(pid).current;
  const reset = resetPeak(pid);
  let sampled = before;
  let samples = 0;
  const sampler = setInterval(() => {
    sampled = Math.max(sampled, lib.memoryOf(pid).current);
    samples += 1;
  }, SAMPLE_MS);
  const cpu = lib.cpuSecondsOf(pid);
  const mine = process.cpuUsage();
  const simulatorCpu = lib.cpuSecondsOf(simulatorPid);
  const cores = processSeconds();
  const started = performance.now();
  const result = await work();
  const seconds = (performance.now() - started) / 1000;
  const coreSeconds = processSeconds() - cores;
  const ours = (({ user, system }) => (user + system) / 1e6)(process.cpuUsage(mine)) + lib.cpuSecondsOf(simulatorPid) - simulatorCpu;
  clearInterval(sampler);
  const after = lib.memoryOf(pid);
  sampled = Math.max(sampled, after.current);
  const peak = reset ? Math.max(after.peak, sampled) : sampled;
  const used = lib.cpuSecondsOf(pid) - cpu;
  // what other processes (neither the one watched, nor this one, nor the simulator) took of the machine meanwhile, in cores
  const others = Math.max(0, (coreSeconds - used - ours) / seconds);
  return { result, seconds, before, peak, rise: peak - before, sampled, samples, hwmReset: reset, lifePeak: Math.max(lifePeak, peak), after: after.current, cpu: used, others };
}

/** The rig of this bench: the simulator, and the servers under test and floors it starts; all stopped by `stop`. */
class UploadRig {
  constructor(node) {
    this.node = node;
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ipernity-connect-gateway-upload-'));
    this.children = [];
    lib.killOnInterrupt(this.children);
  }

  async start() {
    this.appPort = await lib.freePort();
    this.appOrigin = `http://127.0.0.1:${this.appPort}`;
    this.simulator = fork(__filename, ['--simulator', this.appOrigin], { stdio: 'inherit' });
    this.children.push(this.simulator);
    ({ url: this.simOrigin } = await firstMessage(this.simulator));
    this.askSimulator = asker(this.simulator);
    this.sim = new Pool(this.simOrigin, { connections: 10 });
    const { IpernityClient } = require(path.join(DIST, 'ipernity', 'client.js'));
    this.api = new IpernityClient({ apiUrl: `${this.simOrigin}/api`, apiKey: API_KEY, apiSecret: API_SECRET, timeoutMs: 60_000 });
  }

  /** The server under test (a fresh one for each part), as `npm start` runs it, pointed at the simulator. */
  async startServer(tag) {
    const logFile = path.join(this.dir, `server-${tag}.log`);
    const env = lib.serverEnv(
      { node: this.node, port: this.appPort, simOrigin: this.simOrigin, apiKey: API_KEY, apiSecret: API_SECRET, dataDir: path.join(this.dir, `data-${tag}`) },
      { SESSION_STORE: 'sqlite', IPERNITY_API_METHODS: 'upload.file,upload.checkTickets', UPLOAD_MAX_BYTES: String(UPLOAD_MAX_BYTES) },
    );
    const child = lib.spawnPinned(SERVER_CORE, this.node.path, [...this.node.args, ...PRODUCTION_NODE_ARGS, path.join(DIST, 'server.js')], { env, logFile, cwd: ROOT });
    this.children.push(child);
    await lib.waitForPort(this.appPort);
    for (let i = 0; i < 100; i += 1) {
      const ready = await fetch(`${this.appOrigin}/readyz`).then((r) => r.status, () => 0);
      if (ready === 200) break;
      await sleep(50);
    }
    return { child, logFile, app: new Pool(this.appOrigin, { connections: 10 }), url: `${this.appOrigin}/api/ipernity/upload.file` };
  }

  /** The floor: the bare pipe, with the same Node and heap flags as the server. */
  async startFloor(tag) {
    const port = await lib.freePort();
    const child = lib.spawnPinned(SERVER_CORE, this.node.path, [...PRODUCTION_NODE_ARGS, path.join(__dirname, 'floors', 'upload-pipe-floor-server.js')], {
      env: { ...process.env, PORT: String(port), NODE_ENV: 'production', UPSTREAM_URL: `${this.simOrigin}/api/upload.file/json` },
      logFile: path.join(this.dir, `floor-${tag}.log`),
    });
    this.children.push(child);
    await lib.waitForPort(port);
    return { child, url: `http://127.0.0.1:${port}/` };
  }

  async stopChild(process_) {
    const code = await lib.stopChild(process_.child);
    await process_.app?.close();
    this.children = this.children.filter((child) => child !== process_.child);
    return code;
  }

  /**
   * `count` connected visitors, each a new ipernity user with doc:write: the
   * session cookie and the CSRF cookie and token a script sends (X-CSRF-Token),
   * the token the server holds for them, and a doc:delete token for checking.
   */
  async visitors(server, count, firstUser) {
    const made = [];
    for (let i = 0; i < count; i += 1) {
      const userId = firstUser + i;
      const { jar } = await lib.walkFlow({ app: server.app, sim: this.sim, appOrigin: this.appOrigin, simOrigin: this.simOrigin, userId, query: 'perm_doc=write&return_to=%2Fafter' });
      // a client without Fetch Metadata: the page gives it a CSRF cookie and the token it sends back in X-CSRF-Token
      const page = await lib.exchange(server.app, this.appOrigin, '/connect', { headers: { cookie: lib.cookieHeader(jar) } });
      const csrf = lib.hiddenFields(page.text)._csrf;
      if (page.status !== 200 || !csrf) throw new Error(`GET /connect for a connected visitor answered ${page.status} without a CSRF token`);
      lib.keepCookies(jar, page.headers['set-cookie']);
      const { visitor, admin } = await this.askSimulator({ userId: String(userId) });
      if (!visitor) throw new Error(`the simulator has no token for user ${userId}`);
      made.push({ userId, cookie: lib.cookieHeader(jar), csrf, token: visitor, admin });
    }
    return made;
  }

  /** Whether the simulator holds `docId` among the visitor's documents with `md5`; then deletes it, to make room. */
  async intact(visitor, docId, md5) {
    if (!docId) return false;
    const found = await this.api.call('doc.checkMD5', { md5 }, visitor.admin);
    const list = [].concat(found.docs?.doc ?? []);
    await this.api.call('doc.delete', { doc_id: docId }, visitor.admin);
    return list.some((doc) => doc.doc_id === docId);
  }

  async stop() {
    await this.sim?.close().catch(() => undefined);
    await this.api?.close();
    this.simulator?.disconnect();
    await Promise.all(this.children.filter((child) => child !== this.simulator).map((child) => lib.stopChild(child, 5000)));
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The two ways in: through the gateway (the visitor's form, with cookies and X-CSRF-Token), or through the bare pipe (the body the gateway would send). */
function uploader(rig) {
  const { multipartFrame } = require(path.join(DIST, 'ipernity', 'upload.js'));
  const { sign } = require(path.join(DIST, 'ipernity', 'signature.js'));
  return {
    gateway: (server, visitor, bytes, seed) => send(server.url, { cookie: visitor.cookie, 'x-csrf-token': visitor.csrf }, multipartFrame(FIELDS, FILE), bytes, seed),
    floor: (floor, visitor, bytes, seed) => {
      // as IpernityClient.upload signs and orders them: the credentials, the signature, then the method's parameters
      const signed = { ...FIELDS, api_key: API_KEY, auth_token: visitor.token };
      const fields = { api_key: API_KEY, auth_token: visitor.token, api_sig: sign(signed, API_SECRET, 'upload.file'), ...FIELDS };
      return send(floor.url, {}, multipartFrame(fields, FILE), bytes, seed);
    },
    rig,
  };
}

const mib = (bytes) => (bytes / MiB).toFixed(1);
const rate = (bytes, seconds) => bytes / MiB / seconds;

/**
 * `rounds` rounds of `once(way)` through the gateway and through the floor,
 * alternating which goes first. A round where other processes took more than
 * --max-other-load (0.1) of the server's core is run again, --retries (2)
 * times at most: the last try is `kept` for the times, every try counts for
 * memory (what a process holds does not depend on who else runs).
 */
async function alternating(rounds, once) {
  const runs = [];
  for (let round = 0; round < rounds; round += 1) {
    const order = round % 2 === 0 ? ['gateway', 'floor'] : ['floor', 'gateway'];
    for (let attempt = 0; ; attempt += 1) {
      const pair = [];
      for (const way of order) pair.push({ way, round, attempt, ...(await once(way, round)) });
      const busy = pair.find((run) => run.others > SETTINGS.maxOtherLoad);
      const kept = !busy || attempt >= SETTINGS.retries;
      runs.push(...pair.map((run) => ({ ...run, kept })));
      if (kept) break;
      say(`  round ${round + 1} again: other processes took ${busy.others.toFixed(2)} of a core`);
    }
  }
  return runs;
}

/** Three small uploads through each, so that every module is loaded and the path JIT-compiled before anything is measured. */
async function warmUp(rig, ways, targets, visitor) {
  for (let i = 0; i < 3; i += 1) {
    for (const way of ['gateway', 'floor']) {
      const warm = await ways[way](targets[way], visitor, WARM_BYTES, 100 + i);
      if (warm.status !== 200 || !warm.json.doc_id) throw new Error(`warm-up upload through the ${way} answered ${warm.status} ${JSON.stringify(warm.json)}`);
      await rig.intact(visitor, warm.json.doc_id, md5Of(WARM_BYTES, 100 + i));
    }
  }
}

/** Part 1: one 200 MB upload at a time, from one visitor, through the gateway and through the floor. */
async function bigUploads(rig, ways, rounds) {
  say(`\n${BIG_BYTES / MB} MB uploads, ${rounds} rounds`);
  const targets = { gateway: await rig.startServer('big'), floor: await rig.startFloor('big') };
  const [visitor] = await rig.visitors(targets.gateway, 1, 7_000_001);
  const md5 = md5Of(BIG_BYTES, 0);
  let runs;
  try {
    await warmUp(rig, ways, targets, visitor);
    runs = await alternating(rounds, async (way, round) => {
      const run = await watched(targets[way].child.pid, rig.simulator.pid, () => ways[way](targets[way], visitor, BIG_BYTES, 0));
      const answer = run.result;
      const intact = answer.status === 200 && (await rig.intact(visitor, answer.json.doc_id, md5));
      say(`  round ${round + 1} ${way}: ${run.seconds.toFixed(2)} s (${rate(BIG_BYTES, run.seconds).toFixed(0)} MiB/s), RSS ${mib(run.before)} → peak ${mib(run.peak)} MiB (rise ${mib(run.rise)} MiB; sampled ${mib(run.sampled)} MiB in ${run.samples} samples), CPU ${run.cpu.toFixed(2)} s, others ${run.others.toFixed(2)} core, intact ${intact ? 'yes' : `NO (${answer.status} ${JSON.stringify(answer.json).slice(0, 200)})`}`);
      return { ...run, result: undefined, status: answer.status, intact };
    });
  } finally {
    targets.gateway.exit = await rig.stopChild(targets.gateway);
    await rig.stopChild(targets.floor);
  }
  return { runs, log: logTrouble(targets.gateway.logFile), exit: targets.gateway.exit };
}

/** Part 2: `CONCURRENT` uploads of 20 MB at once, each from a visitor of its own (a file of its own each), through the gateway and through the floor. */
async function concurrentUploads(rig, ways, rounds) {
  say(`\n${CONCURRENT} concurrent ${EACH_BYTES / MB} MB uploads, ${rounds} rounds`);
  const targets = { gateway: await rig.startServer('concurrent'), floor: await rig.startFloor('concurrent') };
  const visitors = await rig.visitors(targets.gateway, CONCURRENT, 7_100_001);
  const sums = visitors.map((_, i) => md5Of(EACH_BYTES, i + 1));
  let runs;
  try {
    await warmUp(rig, ways, targets, visitors[0]);
    runs = await alternating(rounds, async (way, round) => {
      const all = () => Promise.all(visitors.map((visitor, i) => ways[way](targets[way], visitor, EACH_BYTES, i + 1).catch((error) => ({ status: 0, json: { error: error.message } }))));
      const run = await watched(targets[way].child.pid, rig.simulator.pid, all);
      const intact = await Promise.all(run.result.map((answer, i) => (answer.status === 200 ? rig.intact(visitors[i], answer.json.doc_id, sums[i]) : false)));
      const failures = run.result.filter((_, i) => !intact[i]).map((answer) => `${answer.status} ${JSON.stringify(answer.json).slice(0, 120)}`);
      const count = intact.filter(Boolean).length;
      say(`  round ${round + 1} ${way}: ${count}/${CONCURRENT} intact in ${run.seconds.toFixed(2)} s (${rate(CONCURRENT * EACH_BYTES, run.seconds).toFixed(0)} MiB/s together), RSS ${mib(run.before)} → peak ${mib(run.peak)} MiB (${(run.peak / MB).toFixed(1)} MB; sampled ${mib(run.sampled)} MiB), CPU ${run.cpu.toFixed(2)} s, others ${run.others.toFixed(2)} core${failures.length ? `; failed: ${failures.slice(0, 3).join('; ')}` : ''}`);
      return { ...run, result: undefined, intact: count, failures };
    });
  } finally {
    targets.gateway.exit = await rig.stopChild(targets.gateway);
    await rig.stopChild(targets.floor);
  }
  return { runs, log: logTrouble(targets.gateway.logFile), exit: targets.gateway.exit };
}

/** Where the section goes: `gateway-upload` on the Node of this script's ABI, else `gateway-upload-node<major>`. */
function section(node) {
  if (node.sameAsLoadGenerator || node.abi === process.versions.modules) return { name: 'gateway-upload', title: 'Gateway uploads' };
  const major = node.version.replace(/^v/, '').split('.')[0];
  return { name: `gateway-upload-node${major}`, title: `Gateway uploads on Node ${major}` };
}

function gitCommit() {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

const met = (ok) => (ok ? 'met' : '**not met**');

function report(node, big, concurrent, seconds, load) {
  const { median } = lib;
  const ours = big.runs.filter((run) => run.way === 'gateway');
  const floors = big.runs.filter((run) => run.way === 'floor');
  const worst = (runs, key) => Math.max(...runs.map((run) => run[key]));
  // times from the kept tries only; memory from every try
  const keptOurs = ours.filter((run) => run.kept);
  const ratios = keptOurs.map((run) => floors.find((other) => other.kept && other.round === run.round).seconds / run.seconds);
  const ratio = median(ratios);
  const ourRate = median(keptOurs.map((run) => rate(BIG_BYTES, run.seconds)));
  const floorRate = median(floors.filter((run) => run.kept).map((run) => rate(BIG_BYTES, run.seconds)));
  const intact = (runs) => `${runs.filter((run) => run.intact).length}/${runs.length}`;
  const allIntact = (runs) => runs.every((run) => run.intact);
  const of = (way) => concurrent.runs.filter((run) => run.way === way);
  const cPeak = (way) => worst(of(way), 'peak');
  const cIntact = (way) => `${of(way).reduce((sum, run) => sum + run.intact, 0)}/${of(way).length * CONCURRENT}`;
  const cAll = (way) => of(way).every((run) => run.intact === CONCURRENT);
  const rounds = keptOurs.length;
  const tried = (run) => `${run.round + 1}${run.attempt ? `, try ${run.attempt + 1}` : ''}${run.kept ? '' : ' (run again)'}`;
  const lines = [
    `Run ${new Date().toISOString()} · commit ${gitCommit()} (working tree) · ${os.cpus().length} cores (${os.cpus()[0]?.model.split(' ').slice(0, 2).join(' ')}) · server and floor on Node ${node.version}, visitors and simulator on Node ${process.version} · linux ${os.release()} · ${lib.hasTaskset ? 'server and floor on core 1, visitors and simulator on core 0' : 'no taskset'} · load average ${load.map((l) => l.toFixed(2)).join(' → ')} · ${seconds.toFixed(0)} s. Command: \`npm run build && node bench/gateway-upload.js${node.sameAsLoadGenerator ? '' : ` --node ${node.path}`}\`.`,
    '',
    `The server under test is \`dist/server.js\` with SQLite sessions and \`npm start\`'s heap flags (${PRODUCTION_NODE_ARGS.join(' ')}), IPERNITY_API_METHODS=upload.file,upload.checkTickets and UPLOAD_MAX_BYTES=${UPLOAD_MAX_BYTES}; a visitor connected with doc:write posts \`/api/ipernity/upload.file\` (multipart/form-data: \`title\`, \`async=0\`, then the \`file\` part; Content-Length; the session and CSRF cookies, X-CSRF-Token, no Fetch Metadata). The server streams the file to the simulator (a standalone process keeping every file, \`async=0\`), which answers once it holds the document; "intact": \`doc.checkMD5\` finds that document by the md5 of the bytes sent. The file: random bytes between JPEG markers, made as the socket takes them. The floor (bench/floors/upload-pipe-floor-server.js, same Node and flags): \`req.pipe(http.request(<simulator>/api/upload.file/json))\` and the answer back, nothing else; its client sends the body the gateway would send (the same fields signed with the same visitor's token, then the same file). RSS: half a second idle, VmRSS read, VmHWM reset (/proc/<pid>/clear_refs), the upload, VmHWM read again (and VmRSS sampled every ${SAMPLE_MS} ms as a check); "rise" is that peak minus the RSS before. Throughput: file bytes ÷ time from the first byte sent to the answer, median of ${rounds} rounds alternating which goes first; "ratio" is the floor's time ÷ the gateway's in the same round, median. "CPU": the watched process's CPU seconds during the run. "Others": the CPU other processes (not the watched one, the visitors or the simulator) took meanwhile, in cores (the machine may be shared; a round where they took over ${SETTINGS.maxOtherLoad} of a core is run again, ${SETTINGS.retries} times at most; the times are the last try's, the memory figures every try's). The concurrent part runs on a fresh server and floor: ${CONCURRENT} visitors connected (a new ipernity user each), each sending a file of its own at the same moment; "peak" there is the process's highest RSS during the ${CONCURRENT} uploads.`,
    '',
    '| measure | figure | target | floor (bare pipe) | met |',
    '|---|---:|---|---:|---|',
    `| ${BIG_BYTES / MB} MB upload: server RSS rise (worst of ${ours.length} runs) | ${mib(worst(ours, 'rise'))} MiB | ≤ ${TARGET.riseMiB} MiB | ${mib(worst(floors, 'rise'))} MiB | ${met(worst(ours, 'rise') <= TARGET.riseMiB * MiB)} |`,
    `| ${BIG_BYTES / MB} MB upload: throughput (median), ratio to the floor | ${ourRate.toFixed(0)} MiB/s, ratio ${ratio.toFixed(2)} (rounds ${ratios.map((r) => r.toFixed(2)).join(', ')}) | ratio ≥ ${TARGET.ratio} | ${floorRate.toFixed(0)} MiB/s | ${met(ratio >= TARGET.ratio)} |`,
    `| ${BIG_BYTES / MB} MB upload: intact | ${intact(ours)} | all | ${intact(floors)} | ${met(allIntact(ours))} |`,
    `| ${CONCURRENT} concurrent ${EACH_BYTES / MB} MB uploads: intact (${of('gateway').length} runs) | ${cIntact('gateway')} | all | ${cIntact('floor')} | ${met(cAll('gateway'))} |`,
    `| ${CONCURRENT} concurrent ${EACH_BYTES / MB} MB uploads: server peak RSS (worst of ${of('gateway').length} runs) | ${mib(cPeak('gateway'))} MiB (${(cPeak('gateway') / MB).toFixed(1)} MB) | ≤ ${TARGET.peakBytes / MB} MB | ${mib(cPeak('floor'))} MiB | ${met(cPeak('gateway') <= TARGET.peakBytes)} |`,
    `| server log: lines, level ≥ 50, exit code (${BIG_BYTES / MB} MB; concurrent) | ${big.log.lines}, ${big.log.trouble.length}, ${big.exit}; ${concurrent.log.lines}, ${concurrent.log.trouble.length}, ${concurrent.exit} | 0 errors, exit 0 | | ${met(big.log.trouble.length === 0 && concurrent.log.trouble.length === 0 && big.exit === 0 && concurrent.exit === 0)} |`,
    '',
    'Each run:',
    '',
    '| part | round | through | time | rate | RSS before | peak | rise | sampled peak | CPU | others | intact |',
    '|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|',
    ...big.runs.map((run) => `| ${BIG_BYTES / MB} MB | ${tried(run)} | ${run.way} | ${run.seconds.toFixed(2)} s | ${rate(BIG_BYTES, run.seconds).toFixed(0)} MiB/s | ${mib(run.before)} MiB | ${mib(run.peak)} MiB | **${mib(run.rise)} MiB** | ${mib(run.sampled)} MiB | ${run.cpu.toFixed(2)} s | ${run.others.toFixed(2)} | ${run.intact ? 'yes' : 'NO'} |`),
    ...concurrent.runs.map((run) => `| ${CONCURRENT} × ${EACH_BYTES / MB} MB at once | ${tried(run)} | ${run.way} | ${run.seconds.toFixed(2)} s | ${rate(CONCURRENT * EACH_BYTES, run.seconds).toFixed(0)} MiB/s together | ${mib(run.before)} MiB | **${mib(run.peak)} MiB** | ${mib(run.rise)} MiB | ${mib(run.sampled)} MiB | ${run.cpu.toFixed(2)} s | ${run.others.toFixed(2)} | ${run.intact}/${CONCURRENT} |`),
    '',
    `Reading: the ${BIG_BYTES / MB} MB rises, run by run: gateway ${ours.map((run) => mib(run.rise)).join(', ')} MiB, floor ${floors.map((run) => mib(run.rise)).join(', ')} MiB (RSS before ${mib(ours[0].before)} and ${mib(floors[0].before)} MiB at the first; freed memory is not always given back to the system, so a later round may start higher and rise less). CPU per ${BIG_BYTES / MB} MB upload: the gateway ${median(ours.map((run) => run.cpu)).toFixed(2)} s, the bare pipe ${median(floors.map((run) => run.cpu)).toFixed(2)} s (medians). ${CONCURRENT} at once: the server's peak ${mib(cPeak('gateway'))} MiB from ${mib(Math.min(...of('gateway').map((run) => run.before)))} MiB idle at least, the floor's ${mib(cPeak('floor'))} MiB from ${mib(Math.min(...of('floor').map((run) => run.before)))} MiB.`,
  ];
  return lines.join('\n');
}

async function main() {
  if (!fs.existsSync(path.join(DIST, 'server.js'))) throw new Error('dist/ is missing: run `npm run build` first');
  const began = performance.now();
  const load = [os.loadavg()[0]];
  // (a better-sqlite3 for another Node is built first, on every core)
  const node = serverNode(SETTINGS.node);
  // the simulator, forked from here, runs on this core too
  lib.pinSelf(LOAD_CORE);
  say(`gateway uploads: server and floor on Node ${node.version} (${node.path}); visitors and simulator on Node ${process.version}`);
  const rig = new UploadRig(node);
  let big;
  let concurrent;
  try {
    await rig.start();
    const ways = uploader(rig);
    big = await bigUploads(rig, ways, SETTINGS.rounds);
    concurrent = await concurrentUploads(rig, ways, SETTINGS.rounds);
  } finally {
    await rig.stop();
  }
  load.push(os.loadavg()[0]);
  const { name, title } = section(node);
  const text = `## ${title}\n\n${report(node, big, concurrent, (performance.now() - began) / 1000, load)}\n`;
  say(`\n${text}`);
  if (SETTINGS.write) {
    require('./results').writeSection(name, text);
    say(`written to bench/RESULTS.md (section ${name})`);
  }
}

if (process.argv[2] === '--simulator') simulatorMain(process.argv[3]);
else {
  main().catch((error) => {
    console.error(error);
    process.exit(1);
  });
}
