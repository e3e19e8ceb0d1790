import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import request from 'supertest';
import { createLogger, createRequestLogger, flowEvent, requestLog } from '../../src/web/logging';
import { LogCapture } from '../support/harness';

/** An app with only the request logger and a few routes answering what the test asks. */
function loggedApp() {
  const logs = new LogCapture();
  const logger = createLogger('info', logs.destination);
  const app = express();
  app.use(createRequestLogger(logger));
  app.get('/ok', (_req, res) => void res.send('ok'));
  app.get('/missing', (_req, res) => void res.status(404).send('no'));
  app.get('/broken', (_req, res) => void res.status(500).send('broken'));
  app.get('/away', (_req, res) => void res.status(503).send('away'));
  app.get('/event', (req, res) => {
    flowEvent(req, logger, 'connected', { userId: '7' }, 'ipernity account connected');
    flowEvent(req, logger, 'second', {}, 'a second event gets a line of its own');
    requestLog(req, logger).warn({ event: 'note' }, 'a line bound to the request');
    res.send('ok');
  });
  app.get('/careless', (req, res) => {
    // a flow event given a secret by mistake: the request line still hides it
    flowEvent(req, logger, 'careless', { token: 'tok-secret-1', frob: 'frob-secret-2', userId: '7' });
    res.send('ok');
  });
  app.get('/slow', () => undefined); // never answers: the client gives up
  return { app, logs };
}

interface Line {
  req?: { url?: string };
}

const lineFor = (logs: LogCapture, url: string) => logs.lines.map((line) => JSON.parse(line) as Line).find((entry) => entry.req?.url === url);

describe('the request log', () => {
  it('writes one line per request, at a level that follows the status', async () => {
    const { app, logs } = loggedApp();
    for (const path of ['/ok', '/missing', '/broken', '/away', '/ok?frob=4242-feedface&x=1']) await request(app).get(path);
    expect(lineFor(logs, '/ok')).toMatchObject({ level: 30, msg: 'request completed', res: { statusCode: 200 } });
    expect(lineFor(logs, '/missing')).toMatchObject({ level: 40, res: { statusCode: 404 } });
    expect(lineFor(logs, '/broken')).toMatchObject({ level: 50, res: { statusCode: 500 } });
    expect(lineFor(logs, '/away')).toMatchObject({ level: 40, res: { statusCode: 503 } });
    expect(lineFor(logs, '/ok?frob=%5Bredacted%5D&x=1')).toMatchObject({ level: 30 });
    expect(logs.text()).not.toContain('feedface');
    for (const line of logs.lines) expect(JSON.parse(line)).toEqual(expect.objectContaining({ reqId: expect.any(String), responseTime: expect.any(Number) }));
  });

  it('puts the first flow event on the request line, and later lines carry the request id', async () => {
    const { app, logs } = loggedApp();
    const answer = await request(app).get('/event').set('X-Request-Id', 'visit-42').expect(200);
    expect(answer.headers['x-request-id']).toBe('visit-42');
    const entries = logs.lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(entries).toEqual([
      expect.objectContaining({ reqId: 'visit-42', event: 'second', msg: 'a second event gets a line of its own' }),
      expect.objectContaining({ reqId: 'visit-42', event: 'note', level: 40 }),
      expect.objectContaining({ reqId: 'visit-42', event: 'connected', userId: '7', msg: 'ipernity account connected', res: { statusCode: 200 } }),
    ]);
  });

  it('redacts secret-named fields that reach the request line', async () => {
    const { app, logs } = loggedApp();
    await request(app).get('/careless').expect(200);
    expect(lineFor(logs, '/careless')).toMatchObject({ event: 'careless', token: '[redacted]', frob: '[redacted]', userId: '7' });
    expect(logs.text()).not.toMatch(/tok-secret-1|frob-secret-2/);
  });

  it('logs a request the client abandoned as a warning', async () => {
    const { app, logs } = loggedApp();
    const server = http.createServer(app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      await new Promise<void>((resolve) => {
        const req = http.get({ port, host: '127.0.0.1', path: '/slow' });
        req.on('error', () => resolve());
        setTimeout(() => req.destroy(), 100);
      });
      for (let i = 0; i < 50 && !lineFor(logs, '/slow'); i += 1) await new Promise((resolve) => setTimeout(resolve, 10));
      expect(lineFor(logs, '/slow')).toMatchObject({ level: 40, msg: 'request aborted' });
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
