import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import fc from 'fast-check';
import { createSimulatorApp } from '../../src/simulator/app';
import type { Fault } from '../../src/simulator/faults';
import { renderPng } from '../../src/simulator/images';
import { API_KEY, API_SECRET, listen, type RunningSimulator } from '../support/harness';
import { rawRequest, type RawAnswer } from './support/raw-http';
import {
  SESSION_SECRET,
  closeClient,
  cookieHeader,
  exchange,
  hiddenFields,
  keepCookies,
  logTrouble,
  readLog,
  recordFigures,
  removeScratch,
  scratch,
  secretsOf,
  startServer,
  type Jar,
  type ServerProcess,
} from './support/stack';

/**
 * Uploads through the gateway (`POST /api/ipernity/upload.file`) on a real
 * server process: ipernity cutting the upload halfway, failing or slow; the
 * visitor going away mid-upload; hostile multipart bodies. After each, no
 * request to ipernity is left open (counted on the simulator's sockets and
 * on the server process's own), nothing of the upload is left on disk, and
 * the next upload goes through whole.
 */

const METHODS = 'upload.file,upload.checkTickets,doc.get';
/** UPLOAD_MAX_BYTES here: a file over it is cut off (413). */
const MAX_BYTES = 1_000_000;
/** The size of the files sent under faults and by visitors who go away: well past what the simulator reads before cutting (64 KB). */
const FILE_BYTES = 300_000;
/** How long the simulator takes to process an upload (`async=0` waits for it). */
const PROCESSING_MS = 50;
/** The client's upload idle timeout (DEFAULT_UPLOAD_IDLE_TIMEOUT_MS: no setting changes it). */
const UPLOAD_IDLE_MS = 30_000;
/** Runs of the hostile-body property (about 10 ms each on 2 cores); the time limit bounds a slower machine. */
const RUNS = 800;
const TIME_LIMIT_MS = 15_000;
/** How long sockets get to close after an answer before one still open counts as left open. */
const SETTLE_MS = 3000;

const FORM = 'application/x-www-form-urlencoded';
/** Found in every uploaded file (repeated through it, so any piece of one has it) and in every file name and title. */
const CONTENT_MARKER = `upload-content-marker-${randomBytes(12).toString('hex')}`;
const NAME_MARKER = `upload-name-${randomBytes(6).toString('hex')}`;
const PNG = renderPng({ pattern: 'rings', colour: [200, 60, 20], background: [250, 250, 250] }, 64, 48);
const md5 = (bytes: Buffer): string => createHash('md5').update(bytes).digest('hex');

/** A PNG ipernity reads (the simulator checks its header only), padded to `size` bytes with the marker. */
function photo(size: number, image = true): Buffer {
  const start = image ? PNG : Buffer.from('not an image at all\n');
  const filler = Buffer.from(`${CONTENT_MARKER}\n`);
  const padding = Buffer.alloc(Math.max(0, size - start.length));
  for (let at = 0; at < padding.length; at += filler.length) filler.copy(padding, at);
  return Buffer.concat([start, padding]).subarray(0, Math.max(size, 0));
}

/** A part of a multipart body: its header lines (raw, latin1) and its content. */
interface Part {
  head: string | Buffer;
  body: Buffer;
}

function field(name: string, value: string): Part {
  return { head: `Content-Disposition: form-data; name="${name}"`, body: Buffer.from(value, 'utf8') };
}

function filePart(bytes: Buffer, fileName = `${NAME_MARKER}.png`, type = 'image/png'): Part {
  return { head: `Content-Disposition: form-data; name="file"; filename="${fileName}"\r\nContent-Type: ${type}`, body: bytes };
}

/** A multipart body as a browser sends one (CRLF framing, a closing delimiter). */
function multipart(boundary: string, parts: Part[], { newline = '\r\n', preamble = '', epilogue = '' } = {}): Buffer {
  const chunks: Buffer[] = [Buffer.from(preamble, 'latin1')];
  for (const part of parts) {
    chunks.push(Buffer.from(`--${boundary}${newline}`, 'latin1'), Buffer.isBuffer(part.head) ? part.head : Buffer.from(part.head, 'latin1'), Buffer.from(`${newline}${newline}`), part.body, Buffer.from(newline));
  }
  chunks.push(Buffer.from(`--${boundary}--${newline}${epilogue}`, 'latin1'));
  return Buffer.concat(chunks);
}

interface Visitor {
  userId: string;
  jar: Jar;
  cookie: string;
  csrfToken: string;
}

/** One upload request ipernity (the simulator) received: from which port of the server, and how it ended. */
interface Received {
  port: number;
  /** The socket that carried it closed. */
  closed: boolean;
  /** Its body came whole (known once the request closed). */
  complete?: boolean;
}

interface Upstream extends RunningSimulator {
  port: number;
  /** Every `upload.file` request received, in order. */
  uploads: Received[];
  /** Connections open on the simulator's http.Server. */
  connections(): Promise<number>;
}

/** The simulator over HTTP on loopback, as `startUpstream` makes it, with its upload requests and sockets counted. */
async function startTrackedUpstream(): Promise<Upstream> {
  const simulator = createSimulatorApp({
    apps: [{ apiKey: API_KEY, apiSecret: API_SECRET, name: 'Test Site', callbackUrl: 'http://127.0.0.1/connect/callback' }],
    openUsers: true,
    control: true,
    uploads: { processingMs: PROCESSING_MS },
  });
  const server = http.createServer(simulator.app);
  const uploads: Received[] = [];
  server.on('request', (req: http.IncomingMessage) => {
    if (!req.url?.startsWith('/api/upload.file/')) return;
    const received: Received = { port: req.socket.remotePort ?? 0, closed: req.socket.destroyed };
    uploads.push(received);
    req.once('close', () => {
      received.complete = req.complete;
    });
    req.socket.once('close', () => {
      received.closed = true;
    });
  });
  const url = await listen(server);
  return {
    ...simulator,
    url,
    port: Number(new URL(url).port),
    uploads,
    connections: () => new Promise((resolve, reject) => server.getConnections((error, count) => (error ? reject(error) : resolve(count)))),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * The local ports of a process's TCP connections to `port` on loopback (its
 * sockets to the simulator, whatever state they are in), from /proc;
 * undefined where there is no /proc.
 */
function portsTo(pid: number, port: number): number[] | undefined {
  let fds: string[];
  try {
    fds = fs.readdirSync(`/proc/${pid}/fd`);
  } catch {
    return undefined;
  }
  const inodes = new Set<string>();
  for (const fd of fds) {
    try {
      const inode = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1];
      if (inode) inodes.add(inode);
    } catch {
      // closed while listed
    }
  }
  const ports: number[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = fs.readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 10) continue;
      const [, local, remote, , , , , , , inode] = cols as [string, string, string, string, string, string, string, string, string, string];
      if (parseInt(remote.split(':')[1] ?? '', 16) === port && inodes.has(inode)) ports.push(parseInt(local.split(':')[1] ?? '', 16));
    }
  }
  return ports;
}

/** Every file under `root` (not following links), with its size and time; unreadable folders are skipped. */
function listFiles(root: string, into = new Map<string, string>()): Map<string, string> {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(root, { withFileTypes: true });
  } catch {
    return into;
  }
  for (const entry of entries) {
    const file = path.join(root, entry.name);
    if (entry.isDirectory()) listFiles(file, into);
    else if (entry.isFile()) {
      try {
        const stat = fs.statSync(file);
        into.set(file, `${stat.size}:${stat.mtimeMs}`);
      } catch {
        // removed while listed
      }
    }
  }
  return into;
}

/** Whether a file holds a marker (read in pieces that overlap by a marker's length, so one across two pieces is found). */
function holdsMarker(file: string): boolean {
  const markers = [CONTENT_MARKER, NAME_MARKER].map((marker) => Buffer.from(marker));
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return false;
  }
  try {
    const piece = Buffer.alloc(1024 * 1024);
    let position = 0;
    for (;;) {
      const read = fs.readSync(fd, piece, 0, piece.length, position);
      if (read === 0) return false;
      const view = piece.subarray(0, read);
      if (markers.some((marker) => view.includes(marker))) return true;
      if (read < piece.length) return false;
      position += read - 64;
    }
  } finally {
    fs.closeSync(fd);
  }
}

describe('uploads through the gateway (POST /api/ipernity/upload.file)', () => {
  let dir: string;
  let serverTmp: string;
  let dataDir: string;
  let upstream: Upstream;
  let server: ServerProcess;
  let visitor: Visitor;
  const figures: Record<string, number | string> = {};
  const faultsAnswered: string[] = [];
  /** The folders whose files are listed before and after (the server's temporary folder, its data, the system's). */
  let watched: string[];
  let before: Map<string, string>;

  /** A visitor connected through the web flow with doc:write, and the CSRF token of their session. */
  async function connectWriter(userId: number): Promise<Visitor> {
    const jar: Jar = new Map();
    const step = async (pathAndQuery: string, options: Parameters<typeof exchange>[2] = {}) => {
      const answer = await exchange(server.origin, pathAndQuery, { ...options, headers: { cookie: cookieHeader(jar), ...options.headers } });
      keepCookies(jar, answer.headers['set-cookie']);
      return answer;
    };
    const warning = await step('/connect?perm_doc=write&return_to=%2Fafter');
    expect(warning.status).toBe(200);
    const start = await step('/connect', { method: 'POST', headers: { 'content-type': FORM, origin: server.origin }, body: new URLSearchParams(hiddenFields(warning.text)).toString() });
    expect(start.status).toBe(303);
    const link = new URL(start.headers.location as string);
    const page = await exchange(upstream.url, link.pathname + link.search);
    const decision = await exchange(upstream.url, link.pathname, {
      method: 'POST',
      headers: { 'content-type': FORM, cookie: cookieHeader(keepCookies(new Map(), page.headers['set-cookie'])) },
      body: new URLSearchParams({ ...hiddenFields(page.text), decision: 'authorize', user_id: String(userId) }).toString(),
    });
    expect(decision.status).toBe(303);
    const back = new URL(decision.headers.location as string);
    expect((await step(back.pathname + back.search)).status).toBe(303);
    expect(JSON.parse((await step('/connection')).text)).toMatchObject({ connected: true, user: { userId: String(userId) }, permissions: { doc: 'write' } });
    const csrfToken = hiddenFields((await step('/connect')).text)._csrf ?? '';
    expect(csrfToken).not.toBe('');
    return { userId: String(userId), jar, cookie: cookieHeader(jar), csrfToken };
  }

  /** The headers of an upload from the site's own page. */
  function uploadHeaders(boundary: string, extra: Array<[string, string]> = []): Array<[string, string]> {
    return [['Cookie', visitor.cookie], ['Sec-Fetch-Site', 'same-origin'], ['Content-Type', `multipart/form-data; boundary=${boundary}`], ...extra];
  }

  /** One upload of `file` (with a title, and `async=0` unless told), sent whole over a connection of its own. */
  function upload(file: Buffer, { async = '0', timeoutMs = 10_000 }: { async?: string; timeoutMs?: number } = {}): Promise<RawAnswer> {
    const boundary = `----reliability-${randomBytes(8).toString('hex')}`;
    const body = multipart(boundary, [field('title', `Title ${NAME_MARKER}`), field('async', async), filePart(file)]);
    return rawRequest(server.port, { method: 'POST', target: '/api/ipernity/upload.file', headers: uploadHeaders(boundary), body }, timeoutMs);
  }

  /** The code of a JSON error answer; ipernity's own refusal of the method, passed on, is IPERNITY_METHOD_ERROR with ipernity's code. */
  function codeOf(answer: RawAnswer): string {
    try {
      const json = JSON.parse(answer.body) as { error?: { code?: unknown }; api?: { status?: unknown; code?: unknown } };
      if (json.api?.status === 'error') return `IPERNITY_METHOD_ERROR ${String(json.api.code)}`;
      return String(json.error?.code ?? 'JSON_WITHOUT_CODE');
    } catch {
      return `NOT_JSON(${answer.body.slice(0, 80)})`;
    }
  }

  function headerOf(answer: RawAnswer, name: string): string | undefined {
    return new RegExp(`^${name}: (.*)$`, 'im').exec(answer.head)?.[1];
  }

  /** The secret or token an answer shows, if any. */
  function leakIn(text: string): string | undefined {
    const found = [...secretsOf(upstream), SESSION_SECRET].find((secret) => text.includes(secret));
    return found && `${found.slice(0, 6)}…`;
  }

  /** A well-formed upload goes through: 200, the document made of exactly the bytes sent. */
  async function expectUploadWorks(): Promise<void> {
    const file = photo(40_000);
    const answer = await upload(file);
    expect([answer.status, answer.body.slice(0, 200)]).toEqual([200, expect.stringContaining('"doc_id"')]);
    const docId = (JSON.parse(answer.body) as { doc_id: string }).doc_id;
    const doc = upstream.library.doc(docId);
    expect(doc?.ownerId).toBe(visitor.userId);
    expect(md5(doc?.upload?.bytes ?? Buffer.alloc(0))).toBe(md5(file));
  }

  /**
   * What is still open, once sockets had up to SETTLE_MS to close, of the
   * upload requests the simulator received from index `from` on: the
   * simulator's sockets, the server process's sockets on the same
   * connections, and the simulator's connections in all (which must not
   * exceed `connectionsBefore`: uploads never use the kept-alive pool).
   */
  async function leftOpen(from: number, connectionsBefore: number): Promise<{ atIpernity: number; atServer: number; connectionsAbove: number }> {
    const deadline = Date.now() + SETTLE_MS;
    for (;;) {
      const received = upstream.uploads.slice(from);
      const serverPorts = new Set(portsTo(server.child.pid as number, upstream.port) ?? []);
      const open = {
        atIpernity: received.filter((r) => !r.closed).length,
        atServer: received.filter((r) => serverPorts.has(r.port)).length,
        connectionsAbove: Math.max(0, (await upstream.connections()) - connectionsBefore),
      };
      if ((open.atIpernity === 0 && open.atServer === 0 && open.connectionsAbove === 0) || Date.now() > deadline) return open;
      await sleep(50);
    }
  }

  const NOTHING_OPEN = { atIpernity: 0, atServer: 0, connectionsAbove: 0 };

  beforeAll(async () => {
    dir = scratch('upload');
    serverTmp = path.join(dir, 'tmp');
    dataDir = path.join(dir, 'data');
    fs.mkdirSync(serverTmp);
    upstream = await startTrackedUpstream();
    server = await startServer({
      simulatorUrl: upstream.url,
      store: 'sqlite',
      dataDir,
      logFile: path.join(dir, 'server.log'),
      // the server's own temporary folder, so that anything it writes there is seen
      env: { IPERNITY_API_METHODS: METHODS, UPLOAD_MAX_BYTES: String(MAX_BYTES), API_RATE_LIMIT_PER_MINUTE: '1000000', TMPDIR: serverTmp },
    });
    visitor = await connectWriter(9_100_000);
    expect(portsTo(server.child.pid as number, upstream.port)).toBeDefined();
    watched = [...new Set([os.tmpdir(), '/tmp', serverTmp, dataDir])];
    before = new Map();
    for (const folder of watched) listFiles(folder, before);
  });
  afterEach(() => {
    upstream.faults.clear();
  });
  afterAll(async () => {
    await server?.stop();
    await upstream?.close();
    removeScratch(dir);
    await closeClient();
    recordFigures('upload', { ...figures, 'upload faults answered': faultsAnswered.length, 'upload faults answered, list': faultsAnswered.join('; ') });
  });

  it('a well-formed upload goes through first, and leaves no request to ipernity open', async () => {
    const from = upstream.uploads.length;
    const connections = await upstream.connections();
    await expectUploadWorks();
    expect(upstream.uploads.length).toBe(from + 1);
    expect(await leftOpen(from, connections)).toEqual(NOTHING_OPEN);
  });

  describe('when ipernity misbehaves during the upload', () => {
    /**
     * Where ipernity answers before it has read the body, it closes the
     * connection on the rest: the server may meet the reset while still
     * sending, before it reads the answer, and says UPSTREAM_NETWORK instead
     * (a 502 all the same).
     */
    const EARLY = 'UPSTREAM_NETWORK';
    // every row has all five (a missing last one would make jest pass its `done` there, and wait for it)
    it.each<[string, number, string, Fault, string | undefined]>([
      ['drops the connection halfway through the body', 502, 'UPSTREAM_NETWORK', { cutUpload: true }, undefined],
      ['answers HTTP 500 before reading the body', 502, 'UPSTREAM_HTTP_STATUS', { status: 500 }, EARLY],
      ['answers HTTP 503 before reading the body', 502, 'UPSTREAM_HTTP_STATUS', { status: 503 }, EARLY],
      ['answers HTML instead of JSON before reading the body', 502, 'UPSTREAM_BAD_RESPONSE', { notJson: true }, EARLY],
      ['drops the connection before reading the body', 502, 'UPSTREAM_NETWORK', { drop: true }, undefined],
      ['answers 2 (the file is over the account\'s limit)', 413, 'IPERNITY_FILE_TOO_LARGE', { apiError: 2 }, undefined],
      ['answers 113 (too many requests)', 429, 'IPERNITY_RATE_LIMITED', { apiError: 113 }, undefined],
      ['is slow (1.5 s) but within the upload idle timeout', 200, 'a document', { delayMs: 1500 }, undefined],
    ])('it %s: 5 concurrent uploads each get %i %s, nothing is left open, and the next upload goes through', async (name, status, code, fault, early) => {
      const from = upstream.uploads.length;
      const connections = await upstream.connections();
      upstream.faults.set({ ...fault, methods: ['upload.file'] });
      const answers = await Promise.all(Array.from({ length: 5 }, (_, i) => upload(photo(FILE_BYTES + i), { async: status === 200 ? '0' : '1' })));
      const problems = answers.map((answer) => {
        if (answer.status !== status) return `${answer.status} ${answer.body.slice(0, 200)}${answer.timedOut ? ' (no answer within 10 s)' : ''}`;
        if (status !== 200 && codeOf(answer) !== code && codeOf(answer) !== early) return `${answer.status} ${answer.body.slice(0, 200)}`;
        if (!String(headerOf(answer, 'content-type')).startsWith('application/json')) return `content-type ${headerOf(answer, 'content-type')}`;
        if (headerOf(answer, 'cache-control') !== 'no-store') return `cache-control ${headerOf(answer, 'cache-control')}`;
        const leak = leakIn(answer.head + answer.body);
        return leak && `a secret in the answer (${leak})`;
      });
      expect(problems.filter(Boolean)).toEqual([]);
      // each reached ipernity, so the fault was met on the way up
      expect(upstream.uploads.length).toBe(from + 5);
      expect(await leftOpen(from, connections)).toEqual(NOTHING_OPEN);

      upstream.faults.clear();
      await expectUploadWorks();
      expect(server.child.exitCode).toBeNull();
      const resetFirst = answers.filter((answer) => early !== undefined && codeOf(answer) === early).length;
      faultsAnswered.push(`ipernity ${name}: ${status} ${code}${resetFirst ? ` (${resetFirst} of 5 ${early}, the reset met first)` : ''}`);
    });

    it(`it is slower than the upload idle timeout (${UPLOAD_IDLE_MS / 1000} s): a JSON 504 UPSTREAM_TIMEOUT soon after it, not a hang, and nothing is left open`, async () => {
      const from = upstream.uploads.length;
      const connections = await upstream.connections();
      upstream.faults.set({ delayMs: UPLOAD_IDLE_MS + 10_000, methods: ['upload.file'], times: 1 });
      // a file the socket's buffers hold whole: the server has sent it all, and waits for an answer
      const answer = await upload(photo(40_000), { timeoutMs: UPLOAD_IDLE_MS + 8000 });
      expect([answer.status, codeOf(answer), answer.timedOut]).toEqual([504, 'UPSTREAM_TIMEOUT', false]);
      expect(answer.ms).toBeGreaterThanOrEqual(UPLOAD_IDLE_MS - 100);
      expect(answer.ms).toBeLessThan(UPLOAD_IDLE_MS + 3000);
      // the server gave up on the request: the simulator, still waiting, sees it closed
      expect(await leftOpen(from, connections)).toEqual(NOTHING_OPEN);
      expect(upstream.uploads.slice(from).map((r) => r.complete)).toEqual([true]);
      await expectUploadWorks();
      figures['upload answered when ipernity is slower than the idle timeout, ms'] = Math.round(answer.ms);
      faultsAnswered.push(`ipernity slower than the upload idle timeout: 504 UPSTREAM_TIMEOUT after ${(answer.ms / 1000).toFixed(1)} s`);
    });
  });

  describe('when the visitor goes away mid-upload', () => {
    /**
     * Sends an upload's head and its body up to `sendBytes`, waits until
     * `until()` holds (at most `waitMs`), then destroys the connection.
     * Answers whatever came back before (nothing, for a visitor gone mid-body).
     */
    function goAway(body: Buffer, boundary: string, sendBytes: number, { until = () => false, waitMs = 3000, chunked = false }: { until?: () => boolean; waitMs?: number; chunked?: boolean } = {}): Promise<string> {
      const head = [
        'POST /api/ipernity/upload.file HTTP/1.1',
        `Host: 127.0.0.1:${server.port}`,
        ...uploadHeaders(boundary).map(([name, value]) => `${name}: ${value}`),
        chunked ? 'Transfer-Encoding: chunked' : `Content-Length: ${body.length}`,
        '',
        '',
      ].join('\r\n');
      const sent = body.subarray(0, sendBytes);
      return new Promise((resolve) => {
        let answer = '';
        const socket = net.connect(server.port, '127.0.0.1', () => {
          socket.write(head);
          socket.write(chunked ? Buffer.concat([Buffer.from(`${sent.length.toString(16)}\r\n`), sent, Buffer.from('\r\n')]) : sent);
          const deadline = Date.now() + waitMs;
          const check = (): void => {
            if (until() || Date.now() > deadline || socket.destroyed) socket.destroy();
            else setTimeout(check, 10);
          };
          check();
        });
        socket.on('data', (chunk: Buffer) => {
          answer += chunk.toString('latin1');
        });
        socket.on('error', () => undefined);
        socket.on('close', () => resolve(answer));
      });
    }

    function bodyOf(size: number): { boundary: string; body: Buffer } {
      const boundary = `----gone-${randomBytes(8).toString('hex')}`;
      return { boundary, body: multipart(boundary, [field('title', `Gone ${NAME_MARKER}`), filePart(photo(size))]) };
    }

    it.each([
      ['with a declared length', false],
      ['with a chunked body', true],
    ])('mid-file (%s): ipernity\'s request is aborted and its socket closed, and the next upload goes through', async (_label, chunked) => {
      const from = upstream.uploads.length;
      const connections = await upstream.connections();
      const docs = upstream.library.docsOf(visitor.userId, { userId: visitor.userId, canReadPrivate: true }).length;
      const { boundary, body } = bodyOf(FILE_BYTES);
      // a third of the body: the file has begun, so its upload to ipernity has too
      const answered = await goAway(body, boundary, Math.floor(body.length / 3), { until: () => upstream.uploads.length > from, chunked });
      expect(answered).toBe('');
      expect(upstream.uploads.length).toBe(from + 1);
      expect(await leftOpen(from, connections)).toEqual(NOTHING_OPEN);
      // ipernity saw the request end before its body did: nothing was uploaded
      expect(upstream.uploads[from]?.complete).toBe(false);
      await sleep(PROCESSING_MS * 2);
      expect(upstream.library.docsOf(visitor.userId, { userId: visitor.userId, canReadPrivate: true }).length).toBe(docs);
      await expectUploadWorks();
    });

    it('within the fields, before the file: nothing reaches ipernity, and the next upload goes through', async () => {
      const from = upstream.uploads.length;
      const { boundary, body } = bodyOf(FILE_BYTES);
      const answered = await goAway(body, boundary, body.indexOf('name="file"') - 20, { waitMs: 300 });
      expect(answered).toBe('');
      await sleep(200);
      expect(upstream.uploads.length).toBe(from);
      await expectUploadWorks();
    });

    it('while ipernity is slow to read it: ipernity\'s request is aborted and its socket closed', async () => {
      const from = upstream.uploads.length;
      const connections = await upstream.connections();
      upstream.faults.set({ delayMs: 2000, methods: ['upload.file'], times: 1 });
      const { boundary, body } = bodyOf(FILE_BYTES);
      const answered = await goAway(body, boundary, Math.floor(body.length / 2), { until: () => upstream.uploads.length > from });
      expect(answered).toBe('');
      expect(await leftOpen(from, connections)).toEqual(NOTHING_OPEN);
      expect(upstream.uploads[from]?.complete).toBe(false);
      await expectUploadWorks();
    });

    it('10 visitors at once, each gone at another point of the body: nothing is left open, and the next upload goes through', async () => {
      const from = upstream.uploads.length;
      const connections = await upstream.connections();
      const answers = await Promise.all(
        Array.from({ length: 10 }, (_, i) => {
          const { boundary, body } = bodyOf(FILE_BYTES);
          return goAway(body, boundary, Math.floor((body.length * (i + 1)) / 12), { waitMs: 500 });
        }),
      );
      // some went before their file began; none got an answer, being gone mid-body
      expect(answers.filter(Boolean)).toEqual([]);
      expect(await leftOpen(from, connections)).toEqual(NOTHING_OPEN);
      expect(upstream.uploads.slice(from).filter((r) => r.complete !== false)).toEqual([]);
      figures['visitors gone mid-upload, of which reached ipernity'] = `10, ${upstream.uploads.length - from}`;
      await expectUploadWorks();
    });
  });

  describe('hostile multipart bodies', () => {
    const BOUNDARY_CHARS = [..."abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'()+_,-./:=?"];
    const tokenBoundary = fc.string({ unit: fc.constantFrom(...BOUNDARY_CHARS.filter((c) => !"()/:=?".includes(c))), minLength: 1, maxLength: 70 });
    const quotedBoundary = fc.string({ unit: fc.constantFrom(...BOUNDARY_CHARS, ' '), minLength: 1, maxLength: 70 }).map((b) => `${b.trimEnd()}x`);
    const boundary = fc.oneof(
      { weight: 4, arbitrary: tokenBoundary },
      { weight: 2, arbitrary: quotedBoundary },
      { weight: 1, arbitrary: fc.integer({ min: 71, max: 4000 }).map((n) => 'b'.repeat(n)) },
      { weight: 1, arbitrary: fc.constantFrom('-', '--', 'a;b', 'é', 'a"b', '\u00ff\u00fe', 'x\ty') },
    );
    /** How the Content-Type header names (or misnames) the body's boundary. */
    const CONTENT_TYPES = [
      'plain', 'plain', 'plain', 'plain', 'plain', 'plain', 'quoted', 'quoted', 'missing', 'mismatch', 'empty', 'empty-quoted', 'twice', 'upper', 'charset',
      'mixed', 'related', 'octet-stream', 'text', 'form', 'png', 'absent',
    ] as const;
    type ContentTypeKind = (typeof CONTENT_TYPES)[number];
    function contentType(kind: ContentTypeKind, b: string): string | undefined {
      const param = /^[A-Za-z0-9'+_,.-]+$/.test(b) ? b : `"${b}"`;
      switch (kind) {
        case 'plain': return `multipart/form-data; boundary=${param}`;
        case 'quoted': return `multipart/form-data; boundary="${b}"`;
        case 'missing': return 'multipart/form-data';
        case 'mismatch': return `multipart/form-data; boundary=other${b}`;
        case 'empty': return 'multipart/form-data; boundary=';
        case 'empty-quoted': return 'multipart/form-data; boundary=""';
        case 'twice': return `multipart/form-data; boundary=${param}; boundary=second`;
        case 'upper': return `MULTIPART/FORM-DATA; BOUNDARY=${param}`;
        case 'charset': return `multipart/form-data; charset=utf-16; boundary=${param}`;
        case 'mixed': return `multipart/mixed; boundary=${param}`;
        case 'related': return `multipart/related; boundary=${param}`;
        case 'octet-stream': return 'application/octet-stream';
        case 'text': return 'text/plain';
        case 'form': return FORM;
        case 'png': return 'image/png';
        case 'absent': return undefined;
      }
    }

    const FIELD_NAMES = ['title', 'description', 'keywords', 'is_public', 'is_friend', 'is_family', 'async', 'license', 'safety', 'album_id', 'lat', 'lng', 'created_at'];
    const HOSTILE_NAMES = ['colour', 'auth_token', 'api_sig', 'api_key', 'frob', 'format', 'Title', '', '__proto__', 'constructor', 'title[]', 'file', 'a"b', 'é', '_csrf', 'photo'];
    const VALUES = ['0', '1', 'x', '', '-1', '1e309', 'NaN', '%FF', '\u0000', '🙂', '\uFFFD', '<script>', '../../etc/passwd', '\r\n--x', NAME_MARKER];
    const fieldName = fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...FIELD_NAMES) }, { weight: 2, arbitrary: fc.constantFrom(...HOSTILE_NAMES) }, { weight: 1, arbitrary: fc.string({ maxLength: 10 }) });
    const fieldValue = fc.oneof(
      { weight: 4, arbitrary: fc.constantFrom(...VALUES).map((v) => Buffer.from(v, 'utf8')) },
      { weight: 3, arbitrary: fc.string({ maxLength: 40 }).map((v) => Buffer.from(v, 'utf8')) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 40 }).map((bytes) => Buffer.from(bytes)) },
      { weight: 1, arbitrary: fc.integer({ min: 4000, max: 70_000 }).map((n) => Buffer.alloc(n, 'v')) },
    );
    const fieldPart = fc.tuple(fieldName, fieldValue).map(([name, body]): Part => ({ head: `Content-Disposition: form-data; name="${name}"`, body }));

    /** File-name parameters: path components, filename*, NUL, invalid UTF-8 (raw bytes), quotes, backslashes, lengths. */
    const FILE_NAMES = [
      `; filename="${NAME_MARKER}.png"`,
      `; filename="../../../etc/${NAME_MARKER}.png"`,
      `; filename="C:\\Users\\me\\${NAME_MARKER}.png"`,
      `; filename="/var/tmp/${NAME_MARKER}.png"`,
      `; filename*=UTF-8''%E2%82%AC%20${NAME_MARKER}.png`,
      `; filename*=utf-8''%FF%FE${NAME_MARKER}.png`,
      `; filename*=iso-8859-1'en'%A3${NAME_MARKER}.png`,
      `; filename*=x-unknown''${NAME_MARKER}`,
      `; filename*=UTF-8''..%2F..%2F${NAME_MARKER}.png`,
      `; filename="a.png"; filename*=UTF-8''${NAME_MARKER}.png`,
      `; filename="${NAME_MARKER}\0.png"`,
      `; filename="\xff\xfe\xc3(${NAME_MARKER}.png"`,
      `; filename="${Buffer.from(`été 日本 🙂 ${NAME_MARKER}.png`, 'utf8').toString('latin1')}"`,
      '; filename=""',
      `; filename=${NAME_MARKER}.png`,
      `; filename="${NAME_MARKER}`,
      `; filename="${NAME_MARKER}\\"`,
      `; filename="a\\"b${NAME_MARKER}.png"`,
      `; filename="${'x'.repeat(5000)}${NAME_MARKER}.png"`,
      `; filename="%0D%0A${NAME_MARKER}.png"`,
      `; filename="${NAME_MARKER}.png"; filename="second.png"`,
      '; filename=".."',
      '; filename="."',
      `; FILENAME="${NAME_MARKER}.png"`,
      '',
    ];
    const DISPOSITIONS = ['form-data; name="file"', 'form-data; name="file"', 'form-data; name="file"', 'form-data;name=file', 'FORM-DATA; NAME="file"', 'form-data; name="photo"', 'form-data; name="File"', 'attachment; name="file"', 'form-data'];
    const PART_TYPES = ['image/png', 'image/png', 'image/jpeg', 'application/octet-stream', 'text/plain; charset=utf-16', 'multipart/mixed; boundary=inner', 'image/png; name="x"', 'x/y/z', '\xff/\xfe', ''];
    const content = fc.oneof(
      { weight: 6, arbitrary: fc.integer({ min: 34, max: 4000 }).map((n) => photo(n)) },
      { weight: 2, arbitrary: fc.integer({ min: 1, max: 2000 }).map((n) => photo(n, false)) },
      { weight: 1, arbitrary: fc.constant(Buffer.alloc(0)) },
      { weight: 1, arbitrary: fc.constantFrom(MAX_BYTES - 10, MAX_BYTES + 10, MAX_BYTES + 70_000).map((n) => photo(n)) },
      // what looks like a delimiter inside the file
      { weight: 1, arbitrary: fc.constantFrom('\r\n--', '\r\n--inner\r\n', '--\r\n', '\r\n\r\n').map((s) => Buffer.concat([photo(200), Buffer.from(s), photo(200)])) },
    );
    const headerJunk = fc.oneof(
      fc.constantFrom('Content-Transfer-Encoding: base64', 'Content-Transfer-Encoding: quoted-printable', 'Content-Length: 3', 'Content-ID: <x>', 'no colon here', ': empty name', 'X-\xff: \xfe'),
      fc.integer({ min: 1000, max: 120_000 }).map((n) => `X-Junk: ${'j'.repeat(n)}`),
    );
    const filePartOf = fc
      .record({
        disposition: fc.constantFrom(...DISPOSITIONS),
        fileName: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...FILE_NAMES) }, { weight: 1, arbitrary: fc.string({ maxLength: 20 }).map((s) => `; filename="${s.replace(/[\r\n]/g, '')}"`) }),
        type: fc.option(fc.constantFrom(...PART_TYPES), { nil: undefined, freq: 5 }),
        junk: fc.array(headerJunk, { maxLength: 2 }),
        body: content,
      })
      .map(({ disposition, fileName, type, junk, body }): Part => ({
        head: Buffer.from([`Content-Disposition: ${disposition}${fileName}`, ...(type === undefined ? [] : [`Content-Type: ${type}`]), ...junk].join('\r\n'), 'latin1'),
        body,
      }));
    /** A file part that is itself a multipart/mixed body of two files (RFC 2388's several files in one field). */
    const nestedPart = fc.constant<Part>({
      head: `Content-Disposition: form-data; name="file"\r\nContent-Type: multipart/mixed; boundary=inner`,
      body: multipart('inner', [
        { head: `Content-Disposition: file; filename="${NAME_MARKER}-a.png"\r\nContent-Type: image/png`, body: photo(300) },
        { head: `Content-Disposition: file; filename="${NAME_MARKER}-b.png"\r\nContent-Type: image/png`, body: photo(300) },
      ]).subarray(0, -2),
    });
    const oddPart = fc.constantFrom<Part>(
      { head: '', body: photo(100) },
      { head: 'no colon here', body: photo(100) },
      { head: 'Content-Type: image/png', body: photo(100) },
      { head: `Content-Disposition: form-data; name="title"\r\n${'X-Many: 1\r\n'.repeat(2100)}X-Last: 1`, body: Buffer.from('t') },
      { head: `Content-Disposition: form-data; name="${'n'.repeat(90_000)}"`, body: Buffer.from('t') },
    );
    const part = fc.oneof({ weight: 5, arbitrary: fieldPart }, { weight: 4, arbitrary: filePartOf }, { weight: 1, arbitrary: nestedPart }, { weight: 1, arbitrary: oddPart });

    /** The fields a page's form sends: known ones with ordinary values (`async=0` among them, so that some wait for the document). */
    const plausibleFields = fc
      .tuple(fc.subarray(['title', 'description', 'keywords', 'is_public', 'is_friend', 'is_family', 'async']), fc.constantFrom(`Title ${NAME_MARKER}`, 'été 🙂', '', 'a,b , c'), fc.constantFrom('0', '1'))
      .map(([names, text, flag]): Part[] => names.map((name) => field(name, ['title', 'description', 'keywords'].includes(name) ? text : flag)));
    /** What a page's form sends: those fields, then one `file` part with an image. */
    const plausible = fc
      .tuple(plausibleFields, fc.integer({ min: 34, max: 20_000 }), fc.constantFrom(...FILE_NAMES.slice(0, 8)))
      .map(([fields, size, fileName]): Part[] => [...fields, { head: `Content-Disposition: form-data; name="file"${fileName}\r\nContent-Type: image/png`, body: photo(size) }]);
    const parts = fc.oneof(
      { weight: 3, arbitrary: plausible },
      // a page's fields, then a hostile file part: odd names, types, headers and contents reach ipernity
      { weight: 4, arbitrary: fc.tuple(plausibleFields, filePartOf).map(([fields, file]) => [...fields, file]) },
      { weight: 3, arbitrary: fc.array(part, { maxLength: 6 }) },
      { weight: 2, arbitrary: fc.tuple(plausible, fc.array(part, { minLength: 1, maxLength: 3 }), fc.boolean()).map(([good, more, first]) => (first ? [...more, ...good] : [...good, ...more])) },
      // many parts: over the fields' limit, or the same field over and over
      { weight: 1, arbitrary: fc.tuple(fc.integer({ min: 30, max: 300 }), fc.constantFrom(...FIELD_NAMES, 'x'), fc.boolean()).map(([n, name, same]) => Array.from({ length: n }, (_, i) => field(same ? name : `${name}${i}`, '1'))) },
    );

    /** A connected visitor's upload from the site's page, framed as a browser frames it: only its parts vary. */
    const framed = fc.record({
      boundary: tokenBoundary,
      contentType: fc.constant<ContentTypeKind>('plain'),
      parts,
      framing: fc.constant({ newline: '\r\n', preamble: '', epilogue: '' }),
      cut: fc.constant(undefined),
      csrf: fc.constantFrom('fetch-metadata', 'header', 'field'),
      connected: fc.constant(true),
    });
    /** Anything: boundaries, content types, framing, truncation, CSRF and the session vary too. */
    const anyRequest = fc.record({
      boundary,
      contentType: fc.constantFrom(...CONTENT_TYPES),
      parts,
      framing: fc.record({
        newline: fc.constantFrom('\r\n', '\r\n', '\r\n', '\n'),
        preamble: fc.constantFrom('', '', 'a preamble\r\n', `--not-the-boundary\r\n`),
        epilogue: fc.constantFrom('', '', 'an epilogue', '\r\n--again\r\n'),
      }),
      /** Where the body is cut (a fraction of it), if it is. */
      cut: fc.option(fc.double({ min: 0, max: 1, noNaN: true }), { nil: undefined, freq: 3 }),
      csrf: fc.constantFrom('fetch-metadata', 'fetch-metadata', 'header', 'field', 'none', 'cross-site'),
      connected: fc.oneof({ weight: 9, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
    });
    const request = fc.oneof(framed, anyRequest);

    /** The statuses the gateway documents for an upload it refuses (src/errors.ts), and 200; 431 is Node's own, to headers over its limit. */
    const EXPECTED = [200, 400, 401, 403, 413, 415, 422, 429, 431];

    // what the property found before, each kept as an example: a crash, two 502s for the visitor's own input, a hang
    it.each<[string, Part[], string]>([
      ['a file part with no name (the process crashed)', [field('title', 'x'), { head: `Content-Disposition: form-data; filename="${NAME_MARKER}.png"\r\nContent-Type: image/png`, body: photo(500) }], 'API_PARAMETER_INVALID'],
      ['a nameless text part after the file (the process crashed)', [filePart(photo(500)), { head: 'Content-Disposition: form-data', body: Buffer.from('x') }], 'API_PARAMETER_INVALID'],
      ['a text part named "file" before the file (signed and sent as a parameter: a 502)', [{ head: 'Content-Disposition: form-data; name="file"\r\nContent-Type: multipart/mixed; boundary=inner', body: Buffer.from('--inner--') }, filePart(photo(500))], 'API_PARAMETER_INVALID'],
      ['a form sent without a file, as browsers send it (filename="" and no bytes: ipernity\'s 1, a 502)', [field('title', 'x'), { head: 'Content-Disposition: form-data; name="file"; filename=""\r\nContent-Type: application/octet-stream', body: Buffer.alloc(0) }], 'IPERNITY_METHOD_ERROR 1'],
      ['a part that is not form-data over 16 KB (the parser stalled: no answer until the request timeout)', [field('title', 'x'), { head: `Content-Disposition: attachment; name="file"; filename="${NAME_MARKER}.png"`, body: photo(100_000) }, filePart(photo(500))], 'API_PARAMETER_INVALID'],
    ])('%s: a 400 with its code within a second or so, and the server goes on', async (_label, parts, code) => {
      const boundary = `----found-${randomBytes(8).toString('hex')}`;
      const answer = await rawRequest(server.port, { method: 'POST', target: '/api/ipernity/upload.file', headers: uploadHeaders(boundary), body: multipart(boundary, parts) });
      expect([answer.status, codeOf(answer), answer.timedOut]).toEqual([400, code, false]);
      expect(answer.ms).toBeLessThan(3000);
      expect(server.child.exitCode).toBeNull();
      await expectUploadWorks();
    });

    it(`${RUNS} hostile multipart bodies (boundaries, part headers, many and nested parts, odd file names, truncation, wrong types): only 200 or a documented 4xx, never a secret, and nothing left open`, async () => {
      const from = upstream.uploads.length;
      const connections = await upstream.connections();
      let runs = 0;
      const statuses: Record<number, number> = {};
      const codes: Record<string, number> = {};
      await fc.assert(
        fc.asyncProperty(request, async (input) => {
          runs += 1;
          const withToken = input.csrf === 'field' ? [field('_csrf', visitor.csrfToken), ...input.parts] : input.parts;
          const whole = multipart(input.boundary, withToken, input.framing);
          const body = input.cut === undefined ? whole : whole.subarray(0, Math.floor(whole.length * input.cut));
          const type = contentType(input.contentType, input.boundary);
          const headers: Array<[string, string]> = [];
          if (input.connected) headers.push(['Cookie', visitor.cookie]);
          if (type !== undefined) headers.push(['Content-Type', type]);
          if (input.csrf === 'fetch-metadata') headers.push(['Sec-Fetch-Site', 'same-origin']);
          if (input.csrf === 'cross-site') headers.push(['Sec-Fetch-Site', 'cross-site']);
          if (input.csrf === 'header') headers.push(['X-CSRF-Token', visitor.csrfToken]);
          const answer = await rawRequest(server.port, { method: 'POST', target: '/api/ipernity/upload.file', headers, body });
          statuses[answer.status] = (statuses[answer.status] ?? 0) + 1;
          const code = answer.status === 200 ? 'ok' : codeOf(answer);
          codes[code] = (codes[code] ?? 0) + 1;
          const say = (what: string): Error =>
            new Error(`${what}: ${answer.head.split('\r\n')[0] ?? ''} ${answer.body.slice(0, 300)} for Content-Type ${type?.slice(0, 100)}, csrf ${input.csrf}, ${body.length} bytes: ${body.subarray(0, 400).toString('latin1')}`);
          if (server.child.exitCode !== null) throw say(`the server exited with ${server.child.exitCode}; its last lines: ${fs.readFileSync(server.logFile, 'utf8').split('\n').filter((line) => !line.startsWith('{')).slice(-40).join('\n')}`);
          if (answer.status === 0) throw say(answer.timedOut ? 'no answer within 10 s' : 'the connection closed without an answer');
          if (!EXPECTED.includes(answer.status)) {
            const id = headerOf(answer, 'x-request-id')?.trim();
            const why = readLog(server.logFile).find((entry) => entry.reqId === id && entry.event === 'request_failed');
            throw say(`answered ${answer.status} (${JSON.stringify(why?.err ?? {}).slice(0, 300)})`);
          }
          const leak = leakIn(answer.head + answer.body);
          if (leak) throw say(`a secret or token in the answer (${leak})`);
          // (an answer without X-Request-Id is Node's own, to a request its parser refused)
          if (headerOf(answer, 'x-request-id') !== undefined && !String(headerOf(answer, 'content-type')).startsWith('application/json')) throw say('not JSON');
          if (answer.status === 200) {
            if (!input.connected || input.csrf === 'none' || input.csrf === 'cross-site') throw say('200 without a connected session and a CSRF proof');
            const ok = JSON.parse(answer.body) as { ticket?: string; doc_id?: string; api?: { status?: string } };
            if (ok.api?.status !== 'ok' || !(ok.ticket || ok.doc_id)) throw say('200 without a ticket or document');
          }
        }),
        { numRuns: RUNS, interruptAfterTimeLimit: TIME_LIMIT_MS },
      );
      figures['hostile upload bodies tried'] = runs;
      figures['hostile upload bodies, answers by status'] = Object.entries(statuses).map(([status, n]) => `${status} ${n}`).join('; ');
      figures['hostile upload bodies, answers by code'] = Object.entries(codes).sort(([, a], [, b]) => b - a).map(([code, n]) => `${code} ${n}`).join('; ');
      expect(runs).toBeGreaterThan(100);
      // some went through to ipernity, and many were refused, so both ways were tried
      expect(statuses[200]).toBeGreaterThan(runs / 20);
      expect(statuses[400]).toBeGreaterThan(runs / 5);
      expect(upstream.uploads.length - from).toBeGreaterThan(runs / 20);
      figures['hostile upload bodies, of which reached ipernity'] = upstream.uploads.length - from;
      expect(await leftOpen(from, connections)).toEqual(NOTHING_OPEN);
      expect(server.child.exitCode).toBeNull();
      expect((await exchange(server.origin, '/healthz')).status).toBe(200);
      await expectUploadWorks();
    });
  });

  it('leaves no file anywhere on disk: nothing new in the temporary folders holds an upload, and the data folder holds only the session store', async () => {
    const after = new Map<string, string>();
    for (const folder of watched) listFiles(folder, after);
    const created = [...after.keys()].filter((file) => !before.has(file));
    // the server's own temporary folder stays empty; its data folder has the SQLite store only
    expect([...after.keys()].filter((file) => file.startsWith(serverTmp + path.sep))).toEqual([]);
    expect([...after.keys()].filter((file) => file.startsWith(dataDir + path.sep)).map((file) => path.basename(file)).filter((name) => !/\.sqlite(-wal|-shm|-journal)?$/.test(name))).toEqual([]);
    // nothing new (or in the server's folders) is named after an upload or holds a piece of one
    const suspects = [...new Set([...created, ...[...after.keys()].filter((file) => file.startsWith(dataDir + path.sep))])];
    expect(suspects.filter((file) => file.includes(NAME_MARKER) || holdsMarker(file))).toEqual([]);
    figures['files new in the temporary folders during the upload suite (none an upload)'] = created.length;
  });

  it('then stops cleanly, with no token or secret in its log and no unexpected error line', async () => {
    expect(await server.stop()).toBe(0);
    const log = fs.readFileSync(server.logFile, 'utf8');
    expect(leakIn(log)).toBeUndefined();
    // no upload's content, title or file name is logged
    expect([log.includes(CONTENT_MARKER), log.includes(NAME_MARKER)]).toEqual([false, false]);
    expect(logTrouble(server.logFile, { statuses: [502, 504], codes: ['UPSTREAM_TIMEOUT', 'UPSTREAM_HTTP_STATUS', 'UPSTREAM_BAD_RESPONSE', 'UPSTREAM_NETWORK'] })).toEqual([]);
    const outcomes = new Set(readLog(server.logFile).filter((entry) => entry.res?.statusCode !== undefined).map((entry) => entry.res?.statusCode));
    expect([...outcomes]).toEqual(expect.arrayContaining([200, 400, 502, 504]));
  });
});
