import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { sign } from '../../src/ipernity/signature';
import { renderPng } from '../../src/simulator/images';
import { Tickets } from '../../src/simulator/upload';
import { API_KEY, API_SECRET, startSimulator, type RunningSimulator } from '../support/harness';

type Json = Record<string, unknown>;

const md5 = (bytes: Buffer): string => createHash('md5').update(bytes).digest('hex');
const image = (): Buffer => renderPng({ pattern: 'checks', colour: [30, 80, 190], background: [245, 245, 240] }, 40, 30);

/** A multipart/form-data body written by hand: the fields, then (when given) the file part. */
function multipart(fields: Record<string, string>, file?: { bytes: Buffer; name?: string; fileName?: string }): { body: Buffer; type: string } {
  const boundary = `test-${randomBytes(8).toString('hex')}`;
  const parts: Buffer[] = [];
  for (const [name, value] of Object.entries(fields)) parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`));
  if (file) {
    parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${file.name ?? 'file'}"; filename="${file.fileName ?? 'photo.png'}"\r\nContent-Type: application/octet-stream\r\n\r\n`), file.bytes, Buffer.from('\r\n'));
  }
  parts.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(parts), type: `multipart/form-data; boundary=${boundary}` };
}

/** POSTs a body to the simulator; answers the JSON, and how many body bytes had been written when the answer came. */
function post(url: string, body: Buffer, type: string, { chunked = false } = {}): Promise<{ json: Json; writtenBeforeAnswer: number }> {
  return new Promise((resolve, reject) => {
    let written = 0;
    const request = http.request(url, { method: 'POST', headers: { 'content-type': type, ...(chunked ? {} : { 'content-length': body.length }) } }, (response) => {
      const answeredAt = written;
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ json: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Json, writtenBeforeAnswer: answeredAt }));
    });
    request.on('error', reject);
    // in pieces, so that an answer before the end would show
    const piece = 64 * 1024;
    const next = (start: number): void => {
      if (start >= body.length) {
        request.end();
        return;
      }
      request.write(body.subarray(start, start + piece), () => {
        written = Math.min(body.length, start + piece);
        next(start + piece);
      });
    };
    next(0);
  });
}

describe('the simulator receives upload.file', () => {
  let simulator: RunningSimulator;
  let token: string;
  let otherToken: string;
  const url = (method: string): string => `${simulator.url}/api/${method}/json`;
  const signed = (method: string, params: Record<string, string>, auth = token): Record<string, string> => {
    const all = { ...params, api_key: API_KEY, auth_token: auth };
    return { ...all, api_sig: sign(all, API_SECRET, method) };
  };
  const upload = (params: Record<string, string>, bytes: Buffer, options: { auth?: string; chunked?: boolean } = {}) => {
    const { body, type } = multipart(signed('upload.file', params, options.auth), { bytes });
    return post(url('upload.file'), body, type, options);
  };
  const checkTickets = async (tickets: string, auth = token): Promise<Json> => {
    const form = new URLSearchParams(signed('upload.checkTickets', { tickets }, auth));
    const response = await fetch(url('upload.checkTickets'), { method: 'POST', body: form });
    return (await response.json()) as Json;
  };
  const errorCode = (json: Json): string | undefined => (json.api as { status: string; code?: string }).code;

  beforeAll(async () => {
    simulator = await startSimulator({ callbackUrl: null, uploads: { processingMs: 100, maxFileBytes: 256 * 1024, maxTotalBytes: 4 * 1024 * 1024 } });
    const grant = (userId: string): string => simulator.state.exchangeFrob(API_KEY, simulator.state.createAuthorizedFrob(API_KEY, userId, { doc: 'write' }))?.token as string;
    token = grant('1234');
    otherToken = grant('5678');
  });
  afterAll(async () => {
    await simulator.close();
  });
  afterEach(() => {
    simulator.faults.clear();
  });

  it('keeps the bytes intact and maps the fields onto the document, its album included', async () => {
    const bytes = image();
    const album = simulator.library.albumsOf('1234')[0];
    const { json } = await upload({ title: 'Tom & Jerry 🎬 é', keywords: 'a, b ,c', is_public: '0', is_family: '1', license: '9', album_id: album?.albumId ?? '', async: '0' }, bytes);
    expect(json).toMatchObject({ api: { status: 'ok' }, ticket: expect.stringMatching(/^\d+$/), doc_id: expect.stringMatching(/^\d+$/) });
    const doc = simulator.library.doc(json.doc_id as string);
    expect(doc).toMatchObject({ ownerId: '1234', title: 'Tom & Jerry 🎬 é', tags: ['a', 'b', 'c'], isPublic: false, isFamily: true, isFriend: false, license: 9 });
    expect(md5(doc?.upload?.bytes as Buffer)).toBe(md5(bytes));
    expect(simulator.library.album(album?.albumId ?? '')?.docIds).toContain(doc?.docId);
  });

  it('refuses a signature made over the file part with 105, and an unsigned upload with 104', async () => {
    const bytes = image();
    const params = { api_key: API_KEY, auth_token: token, title: 'x' };
    const overFile = { ...params, api_sig: sign({ ...params, file: bytes.toString('latin1') }, API_SECRET, 'upload.file') };
    const withSig = multipart(overFile, { bytes });
    expect(errorCode((await post(url('upload.file'), withSig.body, withSig.type)).json)).toBe('105');
    const unsigned = multipart(params, { bytes });
    expect(errorCode((await post(url('upload.file'), unsigned.body, unsigned.type)).json)).toBe('104');
  });

  it('answers 1 without a file part, for an empty file, and for a POST that is not multipart', async () => {
    const noFile = multipart(signed('upload.file', {}));
    expect((await post(url('upload.file'), noFile.body, noFile.type)).json).toMatchObject({ api: { status: 'error', code: '1' } });
    expect(errorCode((await upload({}, Buffer.alloc(0))).json)).toBe('1');
    const form = new URLSearchParams(signed('upload.file', {}));
    const answer = (await (await fetch(url('upload.file'), { method: 'POST', body: form })).json()) as Json;
    expect(errorCode(answer)).toBe('1');
  });

  it('answers 1 for a multipart body that does not parse (no boundary, cut before its end), and 105 for a repeated field', async () => {
    const { body, type } = multipart(signed('upload.file', {}), { bytes: image() });
    expect(errorCode((await post(url('upload.file'), body, 'multipart/form-data')).json)).toBe('1');
    expect(errorCode((await post(url('upload.file'), body.subarray(0, body.length - 40), type)).json)).toBe('1');
    const fields = signed('upload.file', { title: 'one' });
    const repeated = multipart(fields, { bytes: image() });
    const twice = Buffer.from(repeated.body.toString('latin1').replace('Content-Disposition: form-data; name="title"', 'Content-Disposition: form-data; name="title"\r\n\r\ntwo\r\n--' + repeated.type.split('boundary=')[1] + '\r\nContent-Disposition: form-data; name="title"'), 'latin1');
    expect(errorCode((await post(url('upload.file'), twice, repeated.type)).json)).toBe('105');
  });

  it('answers 2 over the file limit, only after reading the whole body (sized or chunked)', async () => {
    const big = randomBytes(1024 * 1024);
    for (const chunked of [false, true]) {
      const { body, type } = multipart(signed('upload.file', {}), { bytes: big });
      const { json, writtenBeforeAnswer } = await post(url('upload.file'), body, type, { chunked });
      expect(errorCode(json)).toBe('2');
      expect(writtenBeforeAnswer).toBe(body.length);
    }
  });

  it('answers 2 when the library would pass its total limit', async () => {
    const limited = await startSimulator({ callbackUrl: null, uploads: { processingMs: 0, maxFileBytes: 1024 * 1024, maxTotalBytes: 1024 * 1024 } });
    try {
      const auth = limited.state.exchangeFrob(API_KEY, limited.state.createAuthorizedFrob(API_KEY, '1234', { doc: 'write' }))?.token as string;
      const send = (bytes: Buffer) => {
        const all = { api_key: API_KEY, auth_token: auth, async: '0' };
        const { body, type } = multipart({ ...all, api_sig: sign(all, API_SECRET, 'upload.file') }, { bytes });
        return post(`${limited.url}/api/upload.file/json`, body, type);
      };
      const jpeg = (size: number): Buffer => Buffer.concat([Buffer.from([0xff, 0xd8]), randomBytes(size - 4), Buffer.from([0xff, 0xd9])]);
      expect((await send(jpeg(600 * 1024))).json).toMatchObject({ api: { status: 'ok' } });
      expect(limited.library.storedBytes).toBe(600 * 1024);
      expect(errorCode((await send(jpeg(600 * 1024))).json)).toBe('2');
    } finally {
      await limited.close();
    }
  });

  it('checks the token and permission before the file (106, 110), and plays apiError after them', async () => {
    const bytes = image();
    const anonymous = { api_key: API_KEY };
    const noToken = multipart({ ...anonymous, api_sig: sign(anonymous, API_SECRET, 'upload.file') }, { bytes });
    expect(errorCode((await post(url('upload.file'), noToken.body, noToken.type)).json)).toBe('106');
    const reader = simulator.state.exchangeFrob(API_KEY, simulator.state.createAuthorizedFrob(API_KEY, '1234', { doc: 'read' }))?.token as string;
    expect(errorCode((await upload({}, bytes, { auth: reader })).json)).toBe('110');
    simulator.faults.set({ apiError: 112, methods: ['upload.file'] });
    expect(errorCode((await post(url('upload.file'), noToken.body, noToken.type)).json)).toBe('106');
    expect(errorCode((await upload({}, bytes)).json)).toBe('112');
  });

  it('cuts the connection halfway without answering under the cutUpload fault', async () => {
    simulator.faults.set({ cutUpload: true, methods: ['upload.file'] });
    await expect(upload({}, randomBytes(512 * 1024))).rejects.toThrow();
    await expect(upload({}, randomBytes(512 * 1024), { chunked: true })).rejects.toThrow();
  });

  it('answers tickets in ipernity\'s shape, with the seconds left, only to their owner', async () => {
    const slow = await startSimulator({ callbackUrl: null, uploads: { processingMs: 1500 } });
    try {
      const grant = (userId: string): string => slow.state.exchangeFrob(API_KEY, slow.state.createAuthorizedFrob(API_KEY, userId, { doc: 'write' }))?.token as string;
      const [mine, theirs] = [grant('1234'), grant('5678')];
      const sendTo = (auth: string, bytes: Buffer) => {
        const all = { api_key: API_KEY, auth_token: auth };
        const { body, type } = multipart({ ...all, api_sig: sign(all, API_SECRET, 'upload.file') }, { bytes });
        return post(`${slow.url}/api/upload.file/json`, body, type);
      };
      const check = async (tickets: string, auth: string): Promise<Json> => {
        const all = { api_key: API_KEY, auth_token: auth, tickets };
        const form = new URLSearchParams({ ...all, api_sig: sign(all, API_SECRET, 'upload.checkTickets') });
        return (await (await fetch(`${slow.url}/api/upload.checkTickets/json`, { method: 'POST', body: form })).json()) as Json;
      };
      const good = (await sendTo(mine, image())).json.ticket as string;
      const bad = (await sendTo(mine, Buffer.from('no image'))).json.ticket as string;
      const other = (await sendTo(theirs, image())).json.ticket as string;
      expect(await check(`${good}, ${bad},${other}`, mine)).toMatchObject({
        tickets: {
          count: '3',
          done: '0',
          invalid: '1',
          left: '2',
          eta: '2',
          ticket: [
            { id: good, done: '0', invalid: '0', eta: '2' },
            { id: bad, done: '0', invalid: '0', eta: '2' },
            // someone else's ticket is unknown to this token: reported invalid
            { id: other, done: '0', invalid: '1', eta: '0' },
          ],
        },
      });
      await new Promise((resolve) => setTimeout(resolve, 1600));
      const after = (await check(`${good},${bad}`, mine)) as { tickets: { ticket: Json[] } & Json };
      expect(after.tickets).toMatchObject({ count: '2', done: '1', invalid: '1', left: '0', eta: '0' });
      expect(after.tickets.ticket[0]).toEqual({ id: good, done: '1', invalid: '0', doc_id: expect.stringMatching(/^\d+$/), eta: '0' });
      expect(after.tickets.ticket[1]).toEqual({ id: bad, done: '0', invalid: '1', eta: '0' });
      const tooMany = Array.from({ length: 51 }, (_, i) => String(i + 1)).join(',');
      expect(errorCode(await check(tooMany, mine))).toBe('1');
    } finally {
      await slow.close();
    }
  });

  it('checks upload.checkTickets like every method: signed, with a token', async () => {
    const form = new URLSearchParams({ api_key: API_KEY, auth_token: otherToken, tickets: '1' });
    expect(errorCode((await (await fetch(url('upload.checkTickets'), { method: 'POST', body: form })).json()) as Json)).toBe('104');
    expect(await checkTickets('1', otherToken)).toMatchObject({ tickets: { count: '1', invalid: '1' } });
  });
});

describe('Tickets', () => {
  it('forgets the oldest tickets beyond its capacity, and processes each after processingMs', async () => {
    const tickets = new Tickets(10, 3);
    const owner = { userId: '1', apiKey: 'k' };
    const made = Array.from({ length: 5 }, (_, i) => tickets.create(owner, 100, () => String(i)));
    expect(tickets.find(made[0]?.id as string, '1', 'k')).toBeUndefined();
    expect(tickets.find(made[1]?.id as string, '1', 'k')).toBeUndefined();
    expect(tickets.find(made[4]?.id as string, '1', 'k')).toBe(made[4]);
    expect(tickets.find(made[4]?.id as string, '2', 'k')).toBeUndefined();
    expect(tickets.pendingBytes).toBe(300);
    await made[4]?.processed;
    expect(made[4]).toMatchObject({ settled: true, docId: '4', invalid: false, pendingBytes: 0 });
  });
});
