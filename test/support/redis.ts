import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/** A free TCP port on loopback. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export function redisServerAvailable(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

/** A private redis-server on a free loopback port, with its own folder. */
export interface PrivateRedis {
  url: string;
  port: number;
  process: ChildProcess;
  dir: string;
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.end();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`redis-server did not listen on ${port} within ${timeoutMs} ms`);
}

/** Starts redis-server on `port` (a free one when not given); the same port can be reused to restart it. */
export async function startRedis(port?: number, dir?: string): Promise<PrivateRedis> {
  const chosen = port ?? (await freePort());
  const folder = dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'ipernity-connect-redis-'));
  const child = spawn('redis-server', ['--port', String(chosen), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', folder, '--loglevel', 'warning'], {
    stdio: 'ignore',
  });
  await waitForPort(chosen, 10_000);
  return { url: `redis://127.0.0.1:${chosen}`, port: chosen, process: child, dir: folder };
}

export async function stopRedis(redis: PrivateRedis): Promise<void> {
  if (redis.process.exitCode !== null) return;
  await new Promise<void>((resolve) => {
    redis.process.once('exit', () => resolve());
    redis.process.kill('SIGTERM');
  });
}
