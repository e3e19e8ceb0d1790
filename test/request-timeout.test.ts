import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { createHttpServer, requestTimeoutFor, SERVER_TIMEOUTS } from '../src/http-server';
import { buildApp, listen, testConfig, type TestApp } from './support/harness';

/** No flow runs here: nothing calls the API. */
const NO_UPSTREAM = 'http://127.0.0.1:9';

/** Sends `head` on a raw socket and waits at most `waitMs`: what came back, and when the server answered or closed. */
function sendAndWait(port: number, head: string, waitMs: number): Promise<{ answer: string; closedAfterMs?: number }> {
  return new Promise((resolve) => {
    const started = Date.now();
    let answer = '';
    const socket = net.connect(port, '127.0.0.1', () => socket.write(head));
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ answer });
    }, waitMs);
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString()));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ answer, closedAfterMs: Date.now() - started });
    });
  });
}

describe('a request whose body stalls', () => {
  let handle: TestApp;
  let server: http.Server | undefined;
  beforeEach(() => {
    handle = buildApp(testConfig(NO_UPSTREAM));
  });
  afterEach(async () => {
    if (server?.listening) {
      server.closeAllConnections();
      await new Promise((resolve) => server?.close(resolve));
    }
    server = undefined;
    await handle.close();
  });

  it('is answered 408 and closed within the request timeout plus one check of the connections, not held for long after', async () => {
    // only the request timeout is made small: how often Node checks it is what production gets from createHttpServer
    const requestTimeout = 600;
    server = createHttpServer(handle.app, { requestTimeout });
    await listen(server);
    const { port } = server.address() as AddressInfo;
    const head = ['POST /connect HTTP/1.1', `Host: 127.0.0.1:${port}`, 'Content-Type: application/x-www-form-urlencoded', 'Content-Length: 100', '', ''].join('\r\n');
    // what must hold: the timeout, one check of the connections (at most a second), a margin for a busy machine
    const { answer, closedAfterMs } = await sendAndWait(port, head, requestTimeout + 1_000 + 1_500);
    expect(closedAfterMs).toBeDefined();
    expect(closedAfterMs).toBeGreaterThanOrEqual(requestTimeout - 50); // the body was waited for, until the timeout
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
  });

  it('meets the timeouts production gets: 30 s per request, checked every second, keep-alive longer than common proxies', () => {
    server = createHttpServer(handle.app);
    expect(SERVER_TIMEOUTS).toMatchObject({ requestTimeout: 30_000, keepAliveTimeout: 65_000 });
    expect(server.requestTimeout).toBe(30_000);
    expect(server.keepAliveTimeout).toBe(65_000);
    expect(server.headersTimeout).toBeLessThanOrEqual(server.requestTimeout);
    expect((server as http.Server & { connectionsCheckingInterval: number }).connectionsCheckingInterval).toBeLessThanOrEqual(1_000);
  });
});

describe('the request timeout of a server that takes uploads', () => {
  it('waits for a whole UPLOAD_MAX_BYTES file at 256 KiB/s, and never less than 30 s', () => {
    expect(requestTimeoutFor(undefined)).toBe(30_000);
    expect(requestTimeoutFor(100 * 1024 * 1024)).toBe(400_000);
    expect(requestTimeoutFor(1024 * 1024)).toBe(30_000);
  });
});
