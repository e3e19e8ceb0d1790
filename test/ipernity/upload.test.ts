import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { PassThrough, Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { IpernityClient } from '../../src/ipernity/client';
import {
  Codes,
  IpernityApiError,
  IpernityError,
  IpernityFileTooLargeError,
  IpernityQuotaError,
  IpernityRateLimitError,
  ParameterMissingError,
  TokenRequiredError,
  UploadInvalidError,
  UploadPendingError,
  UploadSourceError,
  UpstreamNetworkError,
  UpstreamTimeoutError,
} from '../../src/ipernity/errors';
import { createSimulatorApp, type SimulatorOptions } from '../../src/simulator/app';
import { renderPng } from '../../src/simulator/images';
import { API_KEY, API_SECRET, failure, listen } from '../support/harness';

/** One request the simulator received: where, when, and how its body was framed. */
interface Seen {
  path: string;
  at: number;
  contentLength?: string;
  chunked: boolean;
  tickets?: string[];
}

/** The simulator behind a server of ours that records every request (method and framing only) before handing it on. */
async function uploadSimulator(uploads: SimulatorOptions['uploads']) {
  const simulator = createSimulatorApp({ apps: [{ apiKey: API_KEY, apiSecret: API_SECRET, name: 'Test Site' }], openUsers: true, control: false, uploads });
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    seen.push({ path: req.url ?? '', at: Date.now(), chunked: req.headers['transfer-encoding'] === 'chunked', ...(req.headers['content-length'] ? { contentLength: req.headers['content-length'] } : {}) });
    simulator.app(req, res);
  });
  const url = await listen(server);
  const frob = simulator.state.createAuthorizedFrob(API_KEY, '1234', { doc: 'write' });
  const token = simulator.state.exchangeFrob(API_KEY, frob)?.token as string;
  return {
    ...simulator,
    url,
    server,
    seen,
    token,
    uploads: () => seen.filter((request) => request.path.startsWith('/api/upload.file/')),
    checks: () => seen.filter((request) => request.path.startsWith('/api/upload.checkTickets/')),
    connections: () => new Promise<number>((resolve, reject) => server.getConnections((error, count) => (error ? reject(error) : resolve(count)))),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
type UploadSimulator = Awaited<ReturnType<typeof uploadSimulator>>;

const md5 = (bytes: Buffer): string => createHash('md5').update(bytes).digest('hex');

/** A real PNG of about `minBytes` or more (noise does not compress). */
function png(width = 64, height = 48): Buffer {
  return renderPng({ pattern: 'rings', colour: [200, 40, 40], background: [245, 245, 240] }, width, height);
}

/** A stream giving `bytes` in chunks of `chunk`, each on its own turn of the event loop. */
function chunked(bytes: Buffer, chunk = 1000, delayMs = 0): Readable {
  return Readable.from(
    (async function* () {
      for (let start = 0; start < bytes.length; start += chunk) {
        if (delayMs) await sleep(delayMs);
        yield bytes.subarray(start, start + chunk);
      }
    })(),
    { objectMode: false },
  );
}

async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 2000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await sleep(20);
  }
}

const TITLE = 'Café & crème 🌅 à l’aube';

describe('IpernityClient.upload against the simulator', () => {
  let sim: UploadSimulator;
  let client: IpernityClient;

  beforeAll(async () => {
    sim = await uploadSimulator({ processingMs: 100, maxFileBytes: 2 * 1024 * 1024, maxTotalBytes: 64 * 1024 * 1024 });
  });
  afterAll(async () => {
    await sim.close();
  });
  beforeEach(() => {
    sim.seen.length = 0;
    sim.faults.clear();
    client = new IpernityClient({ apiUrl: `${sim.url}/api`, apiKey: API_KEY, apiSecret: API_SECRET, timeoutMs: 1000 });
  });
  afterEach(async () => {
    await client.close();
  });

  it('uploads a Buffer, signed without the file, with a title of reserved and non-ASCII characters, and the bytes arrive intact', async () => {
    const bytes = png();
    const answer = await client.upload(
      { stream: bytes, fileName: 'Crème brûlée "1".png', contentType: 'image/png' },
      { title: TITLE, description: 'line one\nline two & more', keywords: 'été, mer', is_public: '0', license: '3', async: '0' },
      sim.token,
    );
    expect(answer).toEqual({ ticket: expect.stringMatching(/^\d+$/), docId: expect.stringMatching(/^\d+$/) });
    const doc = sim.library.doc(answer.docId);
    expect(doc).toMatchObject({ ownerId: '1234', title: TITLE, description: 'line one\nline two & more', tags: ['été', 'mer'], isPublic: false, license: 3 });
    // as browsers send it: UTF-8, with a double quote percent-encoded
    expect(doc?.upload?.fileName).toBe('Crème brûlée %221%22.png');
    expect(md5(doc?.upload?.bytes as Buffer)).toBe(md5(bytes));
    // ipernity's own duplicate check finds it by the client's md5
    const found = await client.call('doc.checkMD5', { md5: md5(bytes) }, sim.token);
    expect(found).toMatchObject({ docs: { total: '1', doc: [{ md5: md5(bytes), doc_id: answer.docId }] } });
    // one request, with an exact Content-Length (a Buffer's size is known)
    expect(sim.uploads()).toEqual([expect.objectContaining({ chunked: false, contentLength: expect.stringMatching(/^\d+$/) })]);
  });

  it('streams a file of known size with an exact Content-Length, and one of unknown size chunked', async () => {
    const bytes = png(300, 200);
    const known = await client.upload({ stream: chunked(bytes), fileName: 'known.png', contentType: 'image/png', size: bytes.length }, { title: 'known', async: '0' }, sim.token);
    const unknown = await client.upload({ stream: chunked(bytes, 777), fileName: 'unknown.png', contentType: 'image/png' }, { title: 'unknown', async: '0' }, sim.token);
    for (const { docId } of [known, unknown]) expect(md5(sim.library.doc(docId)?.upload?.bytes as Buffer)).toBe(md5(bytes));
    const [first, second] = sim.uploads();
    expect(first).toMatchObject({ chunked: false });
    expect(Number(first?.contentLength)).toBeGreaterThan(bytes.length);
    expect(second).toMatchObject({ chunked: true });
    expect(second?.contentLength).toBeUndefined();
  });

  it('sends the signed parameters as parts before the file part, in a body exactly as long as its Content-Length', async () => {
    let received: { length: string | undefined; body: Buffer } | undefined;
    const recorder = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        received = { length: req.headers['content-length'], body: Buffer.concat(chunks) };
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"ticket":"77","api":{"status":"ok"}}');
      });
    });
    const recorderUrl = await listen(recorder);
    const direct = new IpernityClient({ apiUrl: `${recorderUrl}/api`, apiKey: API_KEY, apiSecret: API_SECRET, timeoutMs: 1000 });
    try {
      const bytes = png();
      expect(await direct.upload({ stream: chunked(bytes), fileName: 'a.png', contentType: 'image/png', size: bytes.length }, { title: TITLE }, 'tok')).toEqual({ ticket: '77' });
      const text = received?.body.toString('latin1') ?? '';
      expect(Number(received?.length)).toBe(received?.body.length);
      const at = (name: string): number => text.indexOf(`Content-Disposition: form-data; name="${name}"`);
      expect(at('api_key')).toBeGreaterThanOrEqual(0);
      expect([at('api_key'), at('auth_token'), at('api_sig'), at('title')].every((position) => position >= 0 && position < at('file'))).toBe(true);
      expect(received?.body.includes(Buffer.from(`\r\n\r\n${TITLE}\r\n`, 'utf8'))).toBe(true);
      expect(received?.body.includes(bytes)).toBe(true);
    } finally {
      await direct.close();
      await new Promise<void>((resolve) => recorder.close(() => resolve()));
    }
  });

  it('answers a ticket without async=0, and waitForTickets gives its document', async () => {
    const bytes = png(20, 20);
    const { ticket, docId } = await client.upload({ stream: bytes, fileName: 'a.png', contentType: 'image/png' }, { title: 'ticketed' }, sim.token);
    expect(docId).toBeUndefined();
    const [result] = await client.waitForTickets([ticket as string], sim.token, { deadline: Date.now() + 5000 });
    expect(result).toEqual({ ticket, docId: expect.any(String) });
    expect(sim.library.doc(result?.docId as string)?.title).toBe('ticketed');
  });

  it('is not cut by the call timeout while bytes still flow', async () => {
    const bytes = png(100, 100);
    const slow = new IpernityClient({ apiUrl: `${sim.url}/api`, apiKey: API_KEY, apiSecret: API_SECRET, timeoutMs: 100, uploadIdleTimeoutMs: 400 });
    try {
      const started = Date.now();
      const answer = await slow.upload({ stream: chunked(bytes, Math.ceil(bytes.length / 10), 60), fileName: 'slow.png', contentType: 'image/png' }, { async: '0' }, sim.token);
      expect(Date.now() - started).toBeGreaterThan(500);
      expect(md5(sim.library.doc(answer.docId)?.upload?.bytes as Buffer)).toBe(md5(bytes));
    } finally {
      await slow.close();
    }
  });

  it('fails with UpstreamTimeoutError when nothing moves for the idle timeout, and destroys the stream', async () => {
    const stalled = new PassThrough();
    stalled.write(Buffer.alloc(1000));
    const started = Date.now();
    const error = await failure(client.upload({ stream: stalled, fileName: 'stalled.png' }, {}, sim.token, { idleTimeoutMs: 300 }));
    expect(error).toBeInstanceOf(UpstreamTimeoutError);
    expect(error).toMatchObject({ code: Codes.UPSTREAM_TIMEOUT, method: 'upload.file', timeoutMs: 300 });
    expect(Date.now() - started).toBeLessThan(2000);
    expect(stalled.destroyed).toBe(true);
    await eventually(async () => (await sim.connections()) === 0);
  });

  it('refuses before sending anything an upload without a token, an empty file, and a stream already read', async () => {
    const stream = chunked(png());
    const error = await failure(client.upload({ stream, fileName: 'a.png' }, {}, undefined));
    expect(error).toBeInstanceOf(TokenRequiredError);
    expect(error).toMatchObject({ code: Codes.IPERNITY_TOKEN_REQUIRED, method: 'upload.file' });
    expect(stream.destroyed).toBe(true);
    const empty = await failure(client.upload({ stream: Buffer.alloc(0), fileName: 'empty.png' }, {}, sim.token));
    expect(empty).toBeInstanceOf(ParameterMissingError);
    expect(empty).toMatchObject({ code: Codes.IPERNITY_PARAMETER_MISSING, parameter: 'file' });
    const spent = Readable.from([Buffer.from('x')], { objectMode: false });
    spent.resume();
    await new Promise((resolve) => spent.on('end', resolve));
    expect(await failure(client.upload({ stream: spent, fileName: 'spent.png' }, {}, sim.token))).toBeInstanceOf(UploadSourceError);
    expect(sim.seen).toHaveLength(0);
  });

  it('fails with IpernityFileTooLargeError (ipernity 2) over the file limit, after sending it all', async () => {
    const big = randomBytes(3 * 1024 * 1024);
    for (const stream of [big, chunked(big, 64 * 1024)]) {
      const error = await failure(client.upload({ stream, fileName: 'big.jpg', contentType: 'image/jpeg' }, {}, sim.token));
      expect(error).toBeInstanceOf(IpernityFileTooLargeError);
      expect(error).toMatchObject({ code: Codes.IPERNITY_FILE_TOO_LARGE, status: 413, apiCode: 2, method: 'upload.file' });
    }
  });

  it('gives the typed quota and rate-limit errors for 112 and 113', async () => {
    sim.faults.set({ apiError: 112, methods: ['upload.file'], times: 1 });
    const quota = await failure(client.upload({ stream: png(), fileName: 'a.png' }, {}, sim.token));
    expect(quota).toBeInstanceOf(IpernityQuotaError);
    expect(quota).toMatchObject({ code: Codes.IPERNITY_QUOTA_REACHED, apiCode: 112 });
    sim.faults.set({ apiError: 113, methods: ['upload.file'], times: 1 });
    const limited = await failure(client.upload({ stream: chunked(png()), fileName: 'a.png' }, {}, sim.token));
    expect(limited).toBeInstanceOf(IpernityRateLimitError);
    expect(limited).toMatchObject({ code: Codes.IPERNITY_RATE_LIMITED, apiCode: 113, retryAfterSeconds: 60 });
  });

  it('gives UpstreamNetworkError when ipernity cuts the upload halfway (the cutUpload fault), for a known and an unknown size', async () => {
    const bytes = randomBytes(1024 * 1024);
    sim.faults.set({ cutUpload: true, methods: ['upload.file'] });
    const known = await failure(client.upload({ stream: bytes, fileName: 'cut.jpg' }, {}, sim.token));
    expect(known).toBeInstanceOf(UpstreamNetworkError);
    expect(known).toMatchObject({ code: Codes.UPSTREAM_NETWORK, method: 'upload.file' });
    const stream = chunked(bytes, 16 * 1024);
    const unknown = await failure(client.upload({ stream, fileName: 'cut.jpg' }, {}, sim.token));
    expect(unknown).toBeInstanceOf(UpstreamNetworkError);
    expect(stream.destroyed).toBe(true);
    await eventually(async () => (await sim.connections()) === 0);
  });

  it('aborts the request with UploadSourceError when the file stream fails or gives another length than announced', async () => {
    const docs = sim.library.docsOf('1234', { userId: '1234', canReadPrivate: true }).length;
    const failing = Readable.from(
      (async function* () {
        yield Buffer.alloc(64 * 1024, 1);
        await sleep(50);
        throw new Error('disk gone');
      })(),
      { objectMode: false },
    );
    const broken = await failure(client.upload({ stream: failing, fileName: 'broken.png' }, {}, sim.token));
    expect(broken).toBeInstanceOf(UploadSourceError);
    expect(broken).toMatchObject({ code: Codes.UPLOAD_SOURCE_FAILED, status: 400, method: 'upload.file' });
    expect((broken.cause as Error).message).toBe('disk gone');
    const bytes = png();
    const short = await failure(client.upload({ stream: chunked(bytes), fileName: 'short.png', size: bytes.length + 10 }, {}, sim.token));
    expect(short).toBeInstanceOf(UploadSourceError);
    const long = await failure(client.upload({ stream: chunked(bytes), fileName: 'long.png', size: bytes.length - 10 }, {}, sim.token));
    expect(long).toBeInstanceOf(UploadSourceError);
    await eventually(async () => (await sim.connections()) === 0);
    expect(sim.library.docsOf('1234', { userId: '1234', canReadPrivate: true })).toHaveLength(docs);
  });

  it('closes everything when the stream is a visitor request that aborts', async () => {
    let outcome: Promise<IpernityError> | undefined;
    const front = http.createServer((req) => {
      outcome = failure(client.upload({ stream: req, fileName: 'visitor.png', size: Number(req.headers['content-length']) }, {}, sim.token));
    });
    const frontUrl = await listen(front);
    try {
      const visitor = http.request(`${frontUrl}/upload`, { method: 'POST', headers: { 'content-length': 4 * 1024 * 1024 } });
      visitor.on('error', () => undefined);
      visitor.write(randomBytes(512 * 1024));
      await eventually(async () => outcome !== undefined && (await sim.connections()) === 1);
      visitor.destroy();
      const error = await (outcome as Promise<IpernityError>);
      expect(error).toBeInstanceOf(UploadSourceError);
      await eventually(async () => (await sim.connections()) === 0);
    } finally {
      front.closeAllConnections();
      await new Promise<void>((resolve) => front.close(() => resolve()));
    }
  });

  it('reports every upload to onCall with its outcome', async () => {
    const calls: Array<[string, string]> = [];
    const observed = new IpernityClient({ apiUrl: `${sim.url}/api`, apiKey: API_KEY, apiSecret: API_SECRET, timeoutMs: 1000, onCall: (method, _ms, outcome) => calls.push([method, outcome]) });
    try {
      await observed.upload({ stream: png(), fileName: 'a.png' }, {}, sim.token);
      await failure(observed.upload({ stream: randomBytes(3 * 1024 * 1024), fileName: 'big.png' }, {}, sim.token));
      expect(calls).toEqual([
        ['upload.file', 'ok'],
        ['upload.file', 'api_error'],
      ]);
    } finally {
      await observed.close();
    }
  });
});

describe('IpernityClient.waitForTickets', () => {
  let client: IpernityClient;
  const sims: UploadSimulator[] = [];
  const start = async (processingMs: number): Promise<UploadSimulator> => {
    const sim = await uploadSimulator({ processingMs });
    sims.push(sim);
    client = new IpernityClient({ apiUrl: `${sim.url}/api`, apiKey: API_KEY, apiSecret: API_SECRET, timeoutMs: 1000 });
    return sim;
  };
  afterEach(async () => {
    await client.close();
    await Promise.all(sims.splice(0).map((sim) => sim.close()));
  });

  it('asks once at once, then not before the eta ipernity gave', async () => {
    const sim = await start(1200);
    const { ticket } = await client.upload({ stream: png(), fileName: 'a.png' }, {}, sim.token);
    const results = await client.waitForTickets([ticket as string], sim.token, { deadline: Date.now() + 10_000 });
    expect(results).toEqual([{ ticket, docId: expect.any(String) }]);
    const checks = sim.checks();
    // eta: 1.2 s left, rounded up to 2 s: the second poll is the last, 2 s after the first
    expect(checks).toHaveLength(2);
    expect((checks[1]?.at as number) - (checks[0]?.at as number)).toBeGreaterThanOrEqual(2000);
  });

  it('fails with UploadPendingError naming the tickets still pending when the next poll would pass the deadline', async () => {
    const sim = await start(3000);
    const { ticket } = await client.upload({ stream: png(), fileName: 'a.png' }, {}, sim.token);
    const started = Date.now();
    const error = await failure(client.waitForTickets([ticket as string], sim.token, { deadline: new Date(Date.now() + 1000) }));
    expect(error).toBeInstanceOf(UploadPendingError);
    expect(error).toMatchObject({ code: Codes.IPERNITY_UPLOAD_PENDING, status: 504, pending: [ticket], settled: [] });
    // it did not sleep until the deadline to find out
    expect(Date.now() - started).toBeLessThan(500);
    expect(sim.checks()).toHaveLength(1);
  });

  it('gives an UploadInvalidError for a file that is not an image, beside the documents of the others, in the order asked', async () => {
    const sim = await start(50);
    const good = await client.upload({ stream: png(), fileName: 'good.png' }, {}, sim.token);
    const bad = await client.upload({ stream: Buffer.from('not an image at all'), fileName: 'bad.png', contentType: 'image/png' }, {}, sim.token);
    const results = await client.waitForTickets([bad.ticket as string, good.ticket as string], sim.token, { deadline: Date.now() + 5000 });
    expect(results[0]?.ticket).toBe(bad.ticket);
    expect(results[0]?.error).toBeInstanceOf(UploadInvalidError);
    expect(results[0]?.error).toMatchObject({ code: Codes.IPERNITY_UPLOAD_INVALID, status: 422, ticket: bad.ticket });
    expect(results[1]).toEqual({ ticket: good.ticket, docId: expect.any(String) });
    // with async=0, the simulator answers its code 3 for a file it cannot process
    const waited = await failure(client.upload({ stream: Buffer.from('still not an image'), fileName: 'bad.png' }, { async: '0' }, sim.token));
    expect(waited).toBeInstanceOf(IpernityApiError);
    expect(waited).toMatchObject({ code: Codes.IPERNITY_API_ERROR, apiCode: 3 });
  });

  it('asks about 50 tickets a call at most', async () => {
    const sim = await start(0);
    const tickets: string[] = [];
    const bytes = png(2, 2);
    for (let i = 0; i < 51; i += 1) tickets.push((await client.upload({ stream: bytes, fileName: `${i}.png` }, {}, sim.token)).ticket as string);
    await sleep(20);
    const results = await client.waitForTickets(tickets, sim.token, { deadline: Date.now() + 5000 });
    expect(results.map((result) => result.ticket)).toEqual(tickets);
    expect(results.every((result) => typeof result.docId === 'string')).toBe(true);
    expect(sim.checks()).toHaveLength(2);
  });
});
