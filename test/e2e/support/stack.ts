import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../support/redis';

/** The repository's root, where `dist/` and `test-output/` live. */
export const ROOT = path.resolve(__dirname, '..', '..', '..');
/** Screenshots, page HTML and server logs of the browser tests (git-ignored). */
export const OUTPUT_DIR = path.join(ROOT, 'test-output', 'e2e');

export const API_KEY = 'e2e-api-key-0123456789abcdef';
export const API_SECRET = 'e2e-api-secret-fedcba9876543210';
const SESSION_SECRET = 'e2e-session-secret-that-is-long-enough-0123456789';
/** Not ASCII on purpose: the name must survive the pages' encoding. */
export const APP_NAME = 'Club photo Lumière';

/**
 * Builds `dist/` when it is missing, so the suite can run alone (`npx jest test/e2e`);
 * `npm test` builds before Jest, and a build that exists is used as it is.
 */
export function ensureBuilt(): void {
  const built = ['server.js', path.join('simulator', 'server.js')].every((file) => fs.existsSync(path.join(ROOT, 'dist', file)));
  if (built) return;
  const result = spawnSync('npm', ['run', 'build'], { cwd: ROOT, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`npm run build failed:\n${result.stdout}\n${result.stderr}`);
}

/** One child process (the app or the simulator) and the file its output goes to. */
class NodeProcess {
  private readonly child: ChildProcess;
  private readonly killOnExit = (): void => {
    this.child.kill('SIGKILL');
  };

  constructor(
    readonly name: string,
    script: string,
    env: Record<string, string>,
    readonly logFile: string,
  ) {
    const log = fs.openSync(logFile, 'w');
    // the child's own environment only: nothing leaks in from the test run (REDIS_URL, IPERNITY_*)
    this.child = spawn(process.execPath, [path.join(ROOT, 'dist', script)], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: os.tmpdir(), ...env },
      stdio: ['ignore', log, log],
    });
    fs.closeSync(log);
    // a Jest worker that dies must not leave servers behind
    process.once('exit', this.killOnExit);
  }

  get exited(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  logTail(lines = 30): string {
    try {
      return fs.readFileSync(this.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }

  /** SIGTERM (the servers shut down gracefully), SIGKILL after five seconds. */
  async stop(): Promise<void> {
    process.removeListener('exit', this.killOnExit);
    if (this.exited) return;
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => this.child.kill('SIGKILL'), 5000);
      this.child.once('exit', () => {
        clearTimeout(force);
        resolve();
      });
      this.child.kill('SIGTERM');
    });
  }
}

/** Polls `url` until `ready` accepts the answer; fails early when the process exits. */
async function waitUntilReady(proc: NodeProcess, url: string, ready: (status: number) => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.exited) throw new Error(`${proc.name} exited before answering ${url}:\n${proc.logTail()}`);
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await response.arrayBuffer();
      if (ready(response.status)) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${proc.name} did not answer ${url} within ${timeoutMs} ms:\n${proc.logTail()}`);
}

export interface StackOptions {
  /** `oauth`: OAuth 1.0a against the simulator's `/apps/oauth` (its key has no callback URL: each request token brings its own). */
  mode?: 'web' | 'desktop' | 'oauth';
  countdownSeconds?: number;
  /** More variables for the app. */
  env?: Record<string, string>;
}

/** The real server (`node dist/server.js`) in front of the standalone simulator, both on loopback. */
export interface Stack {
  /** The site, as visitors reach it: `http://127.0.0.1:<port>`. */
  appUrl: string;
  /** The simulated ipernity: `http://127.0.0.1:<port>`. */
  simulatorUrl: string;
  stop(): Promise<void>;
}

/**
 * Starts the standalone simulator and the server as `npm start` runs it,
 * on free loopback ports, and waits for the simulator to answer and for `/healthz`.
 * Logs go to `test-output/e2e/<name>-{app,simulator}.log`.
 */
export async function startStack(name: string, options: StackOptions = {}): Promise<Stack> {
  fs.mkdirSync(OUTPUT_DIR, { recursive: true });
  const [appPort, simulatorPort] = [await freePort(), await freePort()];
  const appUrl = `http://127.0.0.1:${appPort}`;
  const simulatorUrl = `http://127.0.0.1:${simulatorPort}`;
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ipernity-connect-e2e-'));
  const mode = options.mode ?? 'web';
  const started: NodeProcess[] = [];
  const stop = async (): Promise<void> => {
    await Promise.allSettled(started.map((proc) => proc.stop()));
    fs.rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    const simulator = new NodeProcess(`${name} simulator`, path.join('simulator', 'server.js'), {
      SIMULATOR_PORT: String(simulatorPort),
      SIMULATOR_API_KEY: API_KEY,
      SIMULATOR_API_SECRET: API_SECRET,
      // a desktop key has no registered callback; an OAuth one needs none (the callback goes with each request token)
      SIMULATOR_CALLBACK_URL: mode === 'web' ? `${appUrl}/connect/callback` : '',
      SIMULATOR_APP_NAME: APP_NAME,
    }, path.join(OUTPUT_DIR, `${name}-simulator.log`));
    started.push(simulator);
    const app = new NodeProcess(`${name} app`, 'server.js', {
      NODE_ENV: 'test',
      PORT: String(appPort),
      PUBLIC_URL: appUrl,
      SESSION_SECRET,
      IPERNITY_API_KEY: API_KEY,
      IPERNITY_API_SECRET: API_SECRET,
      IPERNITY_API_URL: `${simulatorUrl}/api`,
      IPERNITY_AUTHORIZE_URL: `${simulatorUrl}/apps/authorize`,
      IPERNITY_AUTH_MODE: mode,
      IPERNITY_APP_NAME: APP_NAME,
      SESSION_STORE: 'sqlite',
      DATA_DIR: dataDir,
      LOG_LEVEL: 'info',
      CONNECT_COUNTDOWN_SECONDS: String(options.countdownSeconds ?? 0),
      ...(mode === 'oauth' ? { IPERNITY_OAUTH_URL: `${simulatorUrl}/apps/oauth` } : {}),
      ...options.env,
    }, path.join(OUTPUT_DIR, `${name}-app.log`));
    started.push(app);
    await Promise.all([
      // the simulator has no health route: any HTTP answer (its 404) means it listens
      waitUntilReady(simulator, `${simulatorUrl}/`, (status) => status === 404),
      waitUntilReady(app, `${appUrl}/healthz`, (status) => status === 200),
    ]);
  } catch (error) {
    await stop();
    throw error;
  }
  return { appUrl, simulatorUrl, stop };
}
