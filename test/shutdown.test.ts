import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { authorizeAtSimulator, csrfOf, startSimulator, API_KEY, API_SECRET, SESSION_SECRET, type RunningSimulator } from './support/harness';
import { freePort } from './support/redis';

const SERVER = path.join(__dirname, '..', 'dist', 'server.js');

async function untilHealthy(url: string): Promise<void> {
  for (let i = 0; i < 100; i += 1) {
    try {
      if ((await fetch(`${url}/healthz`)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error('the server did not start');
}

describe('graceful shutdown', () => {
  let simulator: RunningSimulator;
  let child: ChildProcess | undefined;
  let dataDir: string;

  beforeAll(async () => {
    if (!fs.existsSync(SERVER)) throw new Error('dist/server.js is missing: npm test builds it before jest');
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ipernity-connect-shutdown-'));
  });
  afterEach(async () => {
    child?.kill('SIGKILL');
    await simulator?.close();
  });
  afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));

  it('finishes the request in flight on SIGTERM, exits 0, and the visitor is still connected after a restart', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    simulator = await startSimulator({ callbackUrl: `${url}/connect/callback` });
    const env = {
      ...process.env,
      NODE_ENV: 'production',
      PORT: String(port),
      PUBLIC_URL: url,
      SESSION_SECRET,
      IPERNITY_API_KEY: API_KEY,
      IPERNITY_API_SECRET: API_SECRET,
      IPERNITY_API_URL: `${simulator.url}/api`,
      IPERNITY_AUTHORIZE_URL: `${simulator.url}/apps/authorize`,
      SESSION_STORE: 'sqlite',
      DATA_DIR: dataDir,
      LOG_LEVEL: 'info',
    };
    const start = (): ChildProcess => spawn(process.execPath, [SERVER], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    child = start();
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    await untilHealthy(url);

    const agent = request.agent(url);
    const warning = await agent.get('/connect');
    const started = await agent.post('/connect').type('form').send({ _csrf: csrfOf(warning.text), perm_doc: 'read' }).expect(303);
    const callback = await authorizeAtSimulator(simulator, started.headers.location as string);
    simulator.faults.set({ delayMs: 800, methods: ['auth.getToken'] });
    const inFlight = agent.get(callback.pathname + callback.search);
    const exited = new Promise<number | null>((resolve) => child?.once('exit', (code) => resolve(code)));
    const responded = inFlight.then((response) => response.status);
    await new Promise((resolve) => setTimeout(resolve, 300));
    child.kill('SIGTERM');
    expect(await responded).toBe(303);
    expect(await exited).toBe(0);
    expect(output).toContain('"event":"shutdown"');
    expect(output).toContain('"event":"stopped"');
    expect(output).not.toContain('unhandled_rejection');

    simulator.faults.clear();
    child = start();
    await untilHealthy(url);
    expect((await agent.get('/connection').expect(200)).body.connected).toBe(true);
  });

  it('refuses to start in production without its secrets, naming them', async () => {
    simulator = await startSimulator();
    const result = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const proc = spawn(process.execPath, [SERVER], { env: { PATH: process.env.PATH, NODE_ENV: 'production' }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      proc.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      proc.on('exit', (code) => resolve({ code, stderr }));
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('IPERNITY_API_KEY');
    expect(result.stderr).toContain('SESSION_SECRET');
  });
});
