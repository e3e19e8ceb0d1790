import { createHash } from 'node:crypto';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import request from 'supertest';
import { renderPng } from '../../src/simulator/images';
import { csrfOf, useAppAgainstSimulator, walkFlow } from '../support/harness';

const METHODS = 'upload.file,upload.checkTickets,doc.get';
const PNG = renderPng({ pattern: 'rings', colour: [10, 120, 200], background: [250, 250, 250] }, 320, 240);
const md5 = (bytes: Buffer): string => createHash('md5').update(bytes).digest('hex');

describe('uploads through the gateway (POST /api/ipernity/upload.file)', () => {
  const fixture = useAppAgainstSimulator({ IPERNITY_API_METHODS: METHODS, UPLOAD_MAX_BYTES: '200000' }, { uploads: { processingMs: 100 } });

  async function connected(query = 'perm_doc=write'): Promise<ReturnType<typeof request.agent>> {
    const agent = request.agent(fixture.handle.app);
    await walkFlow(agent, fixture.simulator, { query });
    return agent;
  }

  const post = (agent: ReturnType<typeof request.agent>) => agent.post('/api/ipernity/upload.file').set('Sec-Fetch-Site', 'same-origin');

  it("streams the file to ipernity, signed without it, and answers ipernity's ticket or document", async () => {
    const agent = await connected();
    const ticket = await post(agent).field('title', 'Rings & co ☀').field('is_public', '0').attach('file', PNG, { filename: 'rings.png', contentType: 'image/png' }).expect(200);
    expect(ticket.body).toEqual({ ticket: expect.stringMatching(/^\d+$/), api: { status: 'ok' } });
    expect((await agent.get(`/api/ipernity/upload.checkTickets?tickets=${ticket.body.ticket}`).expect(200)).body.tickets).toMatchObject({ count: '1' });
    const done = await post(agent).field('title', 'Now').field('async', '0').attach('file', PNG, { filename: 'now.png', contentType: 'image/png' }).expect(200);
    const doc = fixture.simulator.library.doc(done.body.doc_id as string);
    expect(doc).toMatchObject({ title: 'Now', ownerId: '1234' });
    expect(md5(doc?.upload?.bytes as Buffer)).toBe(md5(PNG));
    const metrics = await fixture.handle.metrics.registry.getSingleMetricAsString('ipernity_connect_uploads_total');
    expect(metrics).toContain('outcome="ok"} 2');
  });

  it('says who may not upload before reading the body: not connected 401, no doc:write 403', async () => {
    expect((await request(fixture.handle.app).post('/api/ipernity/upload.file').set('Sec-Fetch-Site', 'same-origin').attach('file', PNG, 'a.png').expect(401)).body.error.code).toBe('NOT_CONNECTED');
    const reader = await connected('perm_doc=read');
    const refused = await post(reader).attach('file', PNG, 'a.png').expect(403);
    expect(refused.body.error).toMatchObject({ code: 'PERMISSION_MISSING', missing: { doc: 'write' } });
  });

  it('refuses an upload from another site, and takes the token from a field before the file', async () => {
    const agent = await connected();
    const before = fixture.simulator.library.docsOf('1234', { userId: '1234', canReadPrivate: true }).length;
    expect((await agent.post('/api/ipernity/upload.file').set('Sec-Fetch-Site', 'cross-site').attach('file', PNG, 'a.png').expect(403)).body.error.code).toBe('CSRF_INVALID');
    await agent.post('/api/ipernity/upload.file').attach('file', PNG, 'a.png').expect(403);
    const token = csrfOf((await agent.get('/connect').expect(200)).text);
    await agent.post('/api/ipernity/upload.file').field('_csrf', token).field('async', '0').attach('file', PNG, 'a.png').expect(200);
    expect(fixture.simulator.library.docsOf('1234', { userId: '1234', canReadPrivate: true }).length).toBe(before + 1);
  });

  it('answers a refused upload once the rest of its body has come: a connection closed on unread bytes is reset, and the answer with it', async () => {
    const agent = await connected();
    const server = http.createServer(fixture.handle.app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    try {
      const boundary = 'drain-boundary-1234';
      // refused at the file part's head (from another site); the rest of the file comes 40 ms later
      const first = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n${'x'.repeat(50_000)}`);
      const rest = Buffer.from(`${'y'.repeat(50_000)}\r\n--${boundary}--\r\n`);
      const head = [
        'POST /api/ipernity/upload.file HTTP/1.1',
        `Host: 127.0.0.1:${port}`,
        `Cookie: ${cookieOf(agent)}`,
        'Sec-Fetch-Site: cross-site',
        `Content-Type: multipart/form-data; boundary=${boundary}`,
        `Content-Length: ${first.length + rest.length}`,
        'Connection: close',
        '',
        '',
      ].join('\r\n');
      const seen = await new Promise<{ answer: string; answeredAt: number; restSentAt: number }>((resolve) => {
        let answer = '';
        let answeredAt = 0;
        let restSentAt = Infinity;
        const socket = net.connect(port, '127.0.0.1', () => {
          socket.write(head);
          socket.write(first);
          setTimeout(() => {
            restSentAt = performance.now();
            socket.write(rest);
          }, 40);
        });
        socket.on('data', (chunk: Buffer) => {
          answeredAt ||= performance.now();
          answer += chunk.toString('latin1');
        });
        socket.on('error', () => undefined);
        socket.on('close', () => resolve({ answer, answeredAt, restSentAt }));
      });
      expect(seen.answer).toMatch(/^HTTP\/1\.1 403 /);
      expect(seen.answer).toContain('CSRF_INVALID');
      expect(seen.answeredAt).toBeGreaterThanOrEqual(seen.restSentAt);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it.each([
    ['no file', (r: request.Test) => r.field('title', 'x'), 'file'],
    ['two files', (r: request.Test) => r.attach('file', PNG, 'a.png').attach('file', PNG, 'b.png'), 'file'],
    ['a part of another name', (r: request.Test) => r.attach('photo', PNG, 'a.png'), 'photo'],
    ['an unknown field', (r: request.Test) => r.field('colour', 'red').attach('file', PNG, 'a.png'), 'colour'],
    ['a reserved field', (r: request.Test) => r.field('auth_token', 'x').attach('file', PNG, 'a.png'), 'auth_token'],
    ['a field after the file', (r: request.Test) => r.attach('file', PNG, 'a.png').field('title', 'late'), 'title'],
  ])('answers 400 naming the problem for %s, and nothing reaches ipernity', async (_label, build, parameter) => {
    const agent = await connected();
    const before = fixture.simulator.library.docsOf('1234', { userId: '1234', canReadPrivate: true }).length;
    const answer = await build(post(agent));
    expect(answer.status).toBe(400);
    expect(answer.body.error).toMatchObject({ code: 'API_PARAMETER_INVALID', parameter });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(fixture.simulator.library.docsOf('1234', { userId: '1234', canReadPrivate: true }).length).toBe(before);
  });

  it('answers 400 to upload.file without a multipart body', async () => {
    const agent = await connected();
    expect((await post(agent).type('form').send({ title: 'x' }).expect(400)).body.error).toMatchObject({ code: 'API_PARAMETER_INVALID', parameter: 'file' });
  });

  it('answers 413 to a declared length over UPLOAD_MAX_BYTES, before anything is sent', async () => {
    const agent = await connected();
    const big = Buffer.alloc(300_000, 1);
    const answer = await post(agent).attach('file', big, 'big.png').expect(413);
    expect(answer.body.error.code).toBe('PAYLOAD_TOO_LARGE');
  });

  /** A chunked multipart upload over a raw connection, so no length is declared; answers the status and body. */
  async function chunked(cookie: string, fileBytes: number, { stopAfter }: { stopAfter?: number } = {}): Promise<{ status: number; body: string } | 'aborted'> {
    const server = http.createServer(fixture.handle.app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    try {
      return await new Promise((resolve, reject) => {
        const boundary = 'bench-boundary-1234';
        const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/api/ipernity/upload.file', headers: { cookie, 'sec-fetch-site': 'same-origin', 'content-type': `multipart/form-data; boundary=${boundary}`, 'transfer-encoding': 'chunked' } }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
        });
        req.on('error', (error) => (stopAfter !== undefined ? resolve('aborted') : reject(error)));
        req.write(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.png"\r\nContent-Type: image/png\r\n\r\n`);
        let sent = 0;
        const block = Buffer.alloc(16 * 1024, 7);
        const pump = (): void => {
          while (sent < fileBytes) {
            if (stopAfter !== undefined && sent >= stopAfter) {
              // once what was written has reached the server and its upload to ipernity has begun
              setTimeout(() => {
                req.destroy();
                setTimeout(() => resolve('aborted'), 100);
              }, 300);
              return;
            }
            sent += block.length;
            if (!req.write(block)) {
              req.once('drain', pump);
              return;
            }
          }
          req.end(`\r\n--${boundary}--\r\n`);
        };
        pump();
      });
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  }

  function cookieOf(agent: ReturnType<typeof request.agent>): string {
    return agent.jar.getCookies({ domain: '127.0.0.1', path: '/', secure: false, script: false }).toValueString();
  }

  it('cuts off a body that grows past UPLOAD_MAX_BYTES, aborts ipernity\'s request and answers 413', async () => {
    const agent = await connected();
    const before = fixture.simulator.library.docsOf('1234', { userId: '1234', canReadPrivate: true }).length;
    const answer = await chunked(cookieOf(agent), 2_000_000);
    expect(answer).not.toBe('aborted');
    expect((answer as { status: number }).status).toBe(413);
    expect(JSON.parse((answer as { body: string }).body).error.code).toBe('PAYLOAD_TOO_LARGE');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(fixture.simulator.library.docsOf('1234', { userId: '1234', canReadPrivate: true }).length).toBe(before);
  });

  it('aborts the request to ipernity when the visitor goes away mid-upload, and goes on serving', async () => {
    const agent = await connected();
    const before = fixture.simulator.library.docsOf('1234', { userId: '1234', canReadPrivate: true }).length;
    expect(await chunked(cookieOf(agent), 150_000, { stopAfter: 64 * 1024 })).toBe('aborted');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(fixture.simulator.library.docsOf('1234', { userId: '1234', canReadPrivate: true }).length).toBe(before);
    await request(fixture.handle.app).get('/healthz').expect(200);
    const metrics = await fixture.handle.metrics.registry.getSingleMetricAsString('ipernity_connect_uploads_total');
    expect(metrics).toMatch(/outcome="[a-z_]+"} 1/);
    expect(metrics).not.toContain('outcome="ok"');
  });
});
