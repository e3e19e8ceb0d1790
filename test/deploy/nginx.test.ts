import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { renderPng } from '../../src/simulator/images';
import { buildApp, decodeHtml, listen, startSimulator, testConfig, walkFlow, type RunningSimulator, type TestApp } from '../support/harness';

/**
 * deploy/nginx/ run by a real nginx, started privately on a free port, in front of the real server
 * (against the simulator) and the example backend: the forward-auth sub-request, the redirects to
 * the connect page, the identity headers the backend gets, and the ones a browser makes up.
 */

const ROOT = path.join(__dirname, '..', '..');
const DEPLOY = path.join(ROOT, 'deploy', 'nginx');
const USER = { userId: '1234', username: 'Clark Kent 🦸', realname: 'Kal-El' };
/** What a browser sends to pass as someone else. */
const SPOOFED = {
  'X-Ipernity-User-Id': '1',
  'x-ipernity-username': 'admin',
  'X-IPERNITY-PERMISSIONS': 'doc=delete,profile=write',
  // the same name to CGI and PHP ($_SERVER['HTTP_X_IPERNITY_USER_ID']): nginx drops names with underscores
  X_Ipernity_User_Id: '1',
};
/** The identity headers among a request's headers, however spelt. */
const identityHeaders = (headers: object): string[] => Object.keys(headers).filter((name) => /^x[-_]ipernity[-_]/i.test(name));
/** Chromium's Fetch Metadata for a form of the page itself (the server's CSRF check). */
const FROM_THE_PAGE = { 'Sec-Fetch-Site': 'same-origin', 'Sec-Fetch-Mode': 'navigate', 'Sec-Fetch-Dest': 'document', 'Sec-Fetch-User': '?1' };

/** The nginx binary: on PATH, else Debian's /usr/sbin/nginx (not on a non-root PATH). */
function findNginx(): string | undefined {
  const onPath = spawnSync('sh', ['-c', 'command -v nginx'], { encoding: 'utf8' }).stdout.trim();
  if (onPath) return onPath;
  return fs.existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : undefined;
}

const NGINX = findNginx();
if (!NGINX && !process.env.CI) {
  console.warn('test/deploy/nginx.test.ts: skipped, nginx is not installed (Debian: apt-get install nginx); under CI it runs, and fails without it');
}
const describeWithNginx = NGINX || process.env.CI ? describe : describe.skip;

/** A port free a moment ago on loopback. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once `port` accepts connections; rejects when `child` exits first or `ms` pass. */
function acceptsConnections(port: number, child: ChildProcess, output: () => string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null) => reject(new Error(`nginx exited (${code}) before it listened:\n${output()}`));
    child.once('exit', onExit);
    const attempt = (): void => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        child.off('exit', onExit);
        resolve();
      });
      socket.once('error', () => {
        socket.destroy();
        if (child.exitCode !== null) return;
        if (Date.now() > deadline) {
          child.off('exit', onExit);
          reject(new Error(`nginx did not listen on ${port} within ${ms} ms:\n${output()}`));
          return;
        }
        setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

/** Sends `signal` and waits for the exit, with SIGKILL after `ms`. */
function stopProcess(child: ChildProcess | undefined, signal: NodeJS.Signals, ms = 5000): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill(signal);
  });
}

/** The example backend as its own process (as in Compose), on a free loopback port. */
async function startBackend(): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [path.join(DEPLOY, 'example-backend.js')], {
    env: { PATH: process.env.PATH, PORT: '0', HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    let output = '';
    child.once('exit', (code) => reject(new Error(`the example backend exited (${code}): ${output}`)));
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const line = /^(\{.*\})\n/m.exec(output)?.[1];
      if (line) resolve(Number(new URL((JSON.parse(line) as { url: string }).url).port));
    });
  });
  child.removeAllListeners('exit');
  return { child, port };
}

/** site.conf with the addresses Compose gives replaced by loopback ports; each replaced line must be there exactly once. */
function siteConf(ports: { nginx: number; app: number; backend: number }): string {
  let text = fs.readFileSync(path.join(DEPLOY, 'site.conf'), 'utf8');
  for (const [line, replacement] of [
    ['    listen 80;', `    listen 127.0.0.1:${ports.nginx};`],
    ['    server app:3000;', `    server 127.0.0.1:${ports.app};`],
    ['    server example-backend:8080;', `    server 127.0.0.1:${ports.backend};`],
  ] as const) {
    const lines = text.split('\n');
    if (lines.filter((each) => each === line).length !== 1) throw new Error(`deploy/nginx/site.conf: expected the line "${line.trim()}" once`);
    text = lines.map((each) => (each === line ? replacement : each)).join('\n');
  }
  return text;
}

interface Stack {
  origin: string;
  simulator: RunningSimulator;
  app: TestApp;
  appServer: http.Server;
  /** The forward-auth sub-requests the server received, as they came. */
  subRequests: Array<{ method: string; url: string; headers: http.IncomingHttpHeaders }>;
  backend: ChildProcess;
  nginx: ChildProcess;
  nginxOutput: () => string;
  prefix: string;
}

/**
 * nginx in a private prefix: the official image's layout (files in conf.d/, included from the http
 * block), its temp paths, pid file and logs in the prefix, in the foreground, never the machine's
 * own configuration.
 */
async function startNginx(prefix: string, ports: { nginx: number; app: number; backend: number }): Promise<{ child: ChildProcess; output: () => string }> {
  const confd = path.join(prefix, 'conf.d');
  fs.mkdirSync(confd, { recursive: true });
  fs.writeFileSync(path.join(confd, 'default.conf'), siteConf(ports));
  for (const file of ['return-to.conf', 'ipernity-auth.inc']) fs.copyFileSync(path.join(DEPLOY, file), path.join(confd, file));
  const temp = (name: string): string => path.join(prefix, 'temp', name);
  fs.mkdirSync(path.join(prefix, 'temp')); // nginx makes the folders inside, not this one
  fs.writeFileSync(
    path.join(prefix, 'nginx.conf'),
    [
      'worker_processes 1;',
      'events { worker_connections 128; }',
      'http {',
      `  access_log ${path.join(prefix, 'access.log')};`,
      ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((name) => `  ${name}_temp_path ${temp(name)};`),
      '  include conf.d/*.conf;',
      '}',
      '',
    ].join('\n'),
  );
  // workers run as nobody when the master is root: they must reach the temp paths
  fs.chmodSync(prefix, 0o755);
  const child = spawn(NGINX as string, ['-p', prefix, '-e', 'stderr', '-c', path.join(prefix, 'nginx.conf'), '-g', `daemon off; pid ${path.join(prefix, 'nginx.pid')}; error_log stderr;`], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  await acceptsConnections(ports.nginx, child, () => output);
  return { child, output: () => output };
}

/** The whole stack; a port taken between its choice and nginx's bind starts it all again on another. */
async function startStack(): Promise<Stack> {
  if (!NGINX) throw new Error('nginx is not installed: under CI this test must run (.ci/run installs Debian\'s nginx)');
  for (let tries = 1; ; tries += 1) {
    const port = await freePort();
    const origin = `http://127.0.0.1:${port}`;
    // PUBLIC_URL is nginx's address: the cookies, the CSRF origin and the callback all name it
    const simulator = await startSimulator({ callbackUrl: `${origin}/connect/callback`, users: [USER] });
    const app = buildApp(testConfig(simulator.url, { PUBLIC_URL: origin, TRUST_PROXY: '1', IPERNITY_API_METHODS: 'doc.get,upload.file' }));
    const subRequests: Stack['subRequests'] = [];
    const appServer = http.createServer((req, res) => {
      if (req.url?.startsWith('/connect/auth')) subRequests.push({ method: req.method as string, url: req.url, headers: req.headers });
      void app.app(req, res);
    });
    const appPort = Number(new URL(await listen(appServer)).port);
    const backend = await startBackend();
    const prefix = fs.mkdtempSync(path.join(os.tmpdir(), 'ipernity-nginx-'));
    try {
      const nginx = await startNginx(prefix, { nginx: port, app: appPort, backend: backend.port });
      return { origin, simulator, app, appServer, subRequests, backend: backend.child, nginx: nginx.child, nginxOutput: nginx.output, prefix };
    } catch (error) {
      await Promise.all([stopProcess(backend.child, 'SIGTERM'), closeServer(appServer), app.close(), simulator.close()]);
      fs.rmSync(prefix, { recursive: true, force: true });
      if (tries >= 3 || !/Address already in use/.test(String(error))) throw error;
    }
  }
}

function closeServer(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
}

/** The pids of a process's children (nginx's workers), from ps. */
function childrenOf(pid: number): number[] {
  const ps = spawnSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' });
  return ps.stdout
    .split('\n')
    .map((line) => Number(line.trim()))
    .filter((each) => each > 0);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** What the example backend says it received. */
interface Echo {
  visitor: { userId: string; username: string | null; permissions: Record<string, string> } | null;
  method: string;
  url: string;
  bodyBytes: number;
  headers: Record<string, string | string[] | undefined>;
}

const echoOf = (answer: request.Response): Echo => JSON.parse(answer.text) as Echo;

/** The hidden fields of the warning page's form. */
const hiddenFields = (html: string): Record<string, string> =>
  Object.fromEntries([...html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)].map((m) => [m[1] as string, decodeHtml(m[2] as string)]));

describeWithNginx('deploy/nginx/ in front of the server and the example backend (a real nginx)', () => {
  let stack: Stack | undefined;
  const origin = (): string => (stack as Stack).origin;
  const browser = () => request(origin());

  beforeAll(async () => {
    stack = await startStack();
  }, 30_000);

  afterAll(async () => {
    if (!stack) return;
    const { nginx, backend, appServer, app, simulator, prefix } = stack;
    const workers = nginx.pid ? childrenOf(nginx.pid) : [];
    // fast shutdown: the master stops its workers, then exits
    await stopProcess(nginx, 'SIGTERM');
    await Promise.all([stopProcess(backend, 'SIGTERM'), closeServer(appServer), app.close(), simulator.close()]);
    const output = stack.nginxOutput();
    fs.rmSync(prefix, { recursive: true, force: true });
    const leftover = workers.filter(alive);
    if (leftover.length > 0) throw new Error(`nginx workers still running: ${leftover.join(', ')}`);
    if (/\[(emerg|alert|crit)\]/.test(output)) throw new Error(`nginx logged:\n${output}`);
  });

  /** The route a redirect to the connect page names, its `return_to` and its other parameters. */
  function connectTarget(answer: request.Response): { path: string; returnTo: string | null; params: Record<string, string> } {
    expect(answer.status).toBe(303);
    const location = answer.headers.location as string;
    expect(location).toMatch(/^\/connect\?/); // relative: right whatever address the visitor used
    const url = new URL(location, origin());
    const params = Object.fromEntries(url.searchParams);
    delete params.return_to;
    return { path: url.pathname, returnTo: url.searchParams.get('return_to'), params };
  }

  it('proxies the server\'s routes, passing the host, the client\'s address and the scheme', async () => {
    const warning = await browser().get('/connect').expect(200); // no 308 to PUBLIC_URL: the Host was passed
    expect(warning.text).toContain('name="return_to"');
    expect((await browser().get('/connection').expect(200)).body).toEqual({ connected: false });
    expect((await browser().get('/static/does-not-exist.css')).status).toBe(404); // the server's own 404
    expect((await browser().get('/connect/auth')).status).toBe(401);
    // the server's every answer carries its X-Request-Id, the backend's never: which one answered
    for (const route of ['/connect', '/connect/callback', '/connect/complete', '/connection', '/disconnect', '/api/ipernity/doc.get', '/static/app.css', '/sandbox/ipernity/apps/authorize']) {
      const answer = await browser().get(route);
      expect({ route, server: typeof answer.headers['x-request-id'] }).toEqual({ route, server: 'string' });
    }
    for (const route of ['/', '/connected', '/connect-me', '/statics', '/api/other']) {
      const answer = await browser().get(route).expect(200);
      expect({ route, server: answer.headers['x-request-id'], url: echoOf(answer).url }).toEqual({ route, server: undefined, url: route });
    }
    // the internal sub-request locations are not for browsers
    expect((await browser().get('/_ipernity/auth')).status).toBe(404);
    const echo = echoOf(await browser().get('/about').set('X-Forwarded-For', '203.0.113.9').expect(200));
    expect(echo.url).toBe('/about');
    expect(echo.headers.host).toBe('127.0.0.1');
    expect(echo.headers['x-forwarded-proto']).toBe('http');
    expect(echo.headers['x-forwarded-for']).toBe('203.0.113.9, 127.0.0.1'); // TRUST_PROXY=1 takes the last
  });

  it('sends a visitor who is not connected to the connect page, with the page URL-encoded in return_to', async () => {
    for (const page of ['/members/', '/members/a%20b/caf%C3%A9?x=1&y=a+b&z=%25', `/members/${'%41'.repeat(16)}`]) {
      for (const method of ['get', 'head', 'post'] as const) {
        const target = connectTarget(await browser()[method](page));
        expect({ page, method, ...target }).toEqual({ page, method, path: '/connect', returnTo: page, params: {} });
      }
    }
    // more characters to encode than return-to.conf's maps handle: back to the home page after connecting
    expect(connectTarget(await browser().get(`/members/${'%41'.repeat(17)}`)).returnTo).toBe('/');
    // the warning page keeps the page to come back to
    const page = '/members/a%20b/caf%C3%A9?x=1&y=a+b&z=%25';
    const warning = await browser().get((await browser().get(page)).headers.location as string).expect(200);
    expect(hiddenFields(warning.text).return_to).toBe(page);
  });

  it('never lets an identity header a browser sends reach the backend, on any location', async () => {
    for (const page of ['/', '/about?x=1', '/members-only-in-name']) {
      const echo = echoOf(await browser().get(page).set(SPOOFED).expect(200));
      expect({ page, visitor: echo.visitor }).toEqual({ page, visitor: null });
      expect(identityHeaders(echo.headers)).toEqual([]);
    }
    // not connected: the guarded location never reaches the backend, whatever the headers say
    expect(connectTarget(await browser().get('/members/').set(SPOOFED)).returnTo).toBe('/members/');
  });

  describe('a connected visitor', () => {
    const agent = () => request.agent(origin());

    /** Connects through nginx from a guarded page's redirect, as a browser would, and answers the page it comes back to. */
    async function connectFrom(visitor: ReturnType<typeof agent>, page: string): Promise<string> {
      const redirect = await visitor.get(page);
      const location = redirect.headers.location as string;
      const query = location.slice(location.indexOf('?') + 1);
      const callback = await walkFlow(visitor, (stack as Stack).simulator, { query, userId: USER.userId });
      expect(callback.status).toBe(303);
      return callback.headers.location as string;
    }

    it('comes back to the page, and the backend sees their id, username and permissions, not what the browser sent', async () => {
      const visitor = agent();
      const page = '/members/welcome?tab=photos&sort=new';
      expect(await connectFrom(visitor, page)).toBe(page);
      const answer = await visitor.get(page).set(SPOOFED).expect(200);
      const echo = echoOf(answer);
      expect(echo.url).toBe(page);
      expect(echo.visitor).toEqual({ userId: '1234', username: 'Clark Kent 🦸', permissions: { doc: 'read', profile: 'read' } });
      // one value each, the server's: the browser's were replaced, not added to
      expect(echo.headers['x-ipernity-user-id']).toBe('1234');
      expect(echo.headers['x-ipernity-username']).toBe(encodeURIComponent('Clark Kent 🦸'));
      expect(echo.headers['x-ipernity-permissions']).toBe('doc=read,profile=read');
      expect(identityHeaders(echo.headers).sort()).toEqual(['x-ipernity-permissions', 'x-ipernity-user-id', 'x-ipernity-username']);
      // the identity is for the backend only, never sent back to the browser
      expect(identityHeaders(answer.headers)).toEqual([]);
    });

    it('keeps the method and body of the request; the sub-request carries neither, only the cookie and the original URI', async () => {
      const visitor = agent();
      await connectFrom(visitor, '/members/');
      const { subRequests } = stack as Stack;
      subRequests.splice(0);
      const echo = echoOf(await visitor.post('/members/comments?page=2').set(SPOOFED).type('form').send({ text: 'x'.repeat(5000) }).expect(200));
      expect(echo).toMatchObject({ method: 'POST', url: '/members/comments?page=2', bodyBytes: 'text='.length + 5000, visitor: { userId: '1234' } });
      expect(subRequests).toHaveLength(1);
      const [sub] = subRequests as [Stack['subRequests'][number]];
      expect({ method: sub.method, url: sub.url }).toEqual({ method: 'GET', url: '/connect/auth' });
      expect(sub.headers).toMatchObject({ host: '127.0.0.1', 'x-original-uri': '/members/comments?page=2', 'x-original-method': 'POST', 'x-forwarded-proto': 'http' });
      expect(sub.headers.cookie).toContain('ipernity-connect.sid=');
      expect(Object.keys(sub.headers).filter((name) => /^(content-length|transfer-encoding|x-ipernity-)/.test(name))).toEqual([]);
    });

    it('is not vouched for on locations without auth_request, and the browser\'s headers are dropped there too', async () => {
      const visitor = agent();
      await connectFrom(visitor, '/members/');
      const echo = echoOf(await visitor.get('/').set(SPOOFED).expect(200));
      expect(echo.visitor).toBeNull();
      expect(identityHeaders(echo.headers)).toEqual([]);
    });

    it('lacking what a location requires, is sent to the warning page asking for it, and passes once granted', async () => {
      const visitor = agent();
      await connectFrom(visitor, '/members/'); // doc:read, profile:read
      const upload = '/members/upload/new?album=7&title=a+b';
      const refused = await visitor.get(upload).set(SPOOFED);
      expect(connectTarget(refused)).toEqual({ path: '/connect', returnTo: upload, params: { perm_doc: 'write' } });
      const warning = await visitor.get(refused.headers.location as string).expect(200);
      expect(hiddenFields(warning.text)).toMatchObject({ perm_doc: 'write', return_to: upload });
      expect(await connectFrom(visitor, upload)).toBe(upload);
      const echo = echoOf(await visitor.get(upload).set(SPOOFED).expect(200));
      expect(echo.visitor).toEqual({ userId: '1234', username: 'Clark Kent 🦸', permissions: { doc: 'write', profile: 'read' } });
    });

    it('sent there straight from the requiring location when not connected, asks for what it needs at once', async () => {
      const target = connectTarget(await browser().get('/members/upload/'));
      expect(target).toEqual({ path: '/connect', returnTo: '/members/upload/', params: { perm_doc: 'write' } });
    });

    it('uploads a photo larger than nginx\'s default body limit through the gateway, streamed on to ipernity whole', async () => {
      const visitor = agent();
      await connectFrom(visitor, '/members/upload/');
      const photo = renderPng({ pattern: 'rings', colour: [200, 40, 40], background: [255, 255, 255] }, 64, 48);
      // past nginx's 1 MB default: a PNG with 3 MB of trailing bytes, which readers ignore
      const big = Buffer.concat([photo, Buffer.alloc(3 * 1024 * 1024, 7)]);
      const answer = await visitor.post('/api/ipernity/upload.file').set({ 'Sec-Fetch-Site': 'same-origin', Origin: origin() }).field('async', '0').attach('file', big, { filename: 'big.png', contentType: 'image/png' });
      expect([answer.status, answer.body.error]).toEqual([200, undefined]);
      expect(answer.body.doc_id).toEqual(expect.any(String));
    });

    it('is no longer vouched for once disconnected', async () => {
      const visitor = agent();
      await connectFrom(visitor, '/members/');
      await visitor.get('/members/').expect(200);
      await visitor.post('/disconnect').set({ ...FROM_THE_PAGE, Origin: origin() }).type('form').send({}).expect(200);
      expect(connectTarget(await visitor.get('/members/')).returnTo).toBe('/members/');
    });
  });
});
