import { createHash } from 'node:crypto';
import request from 'supertest';
import { IpernityClient } from '../../src/ipernity/client';
import { IpernityApiError, IpernityPermissionError, IpernityPostRequiredError, IpernityQuotaError, IpernityRateLimitError, DEFAULT_RETRY_AFTER_SECONDS } from '../../src/ipernity/errors';
import type { RequestedPermissions } from '../../src/ipernity/permissions';
import { sign } from '../../src/ipernity/signature';
import { imageFacts } from '../../src/simulator/images';
import { API_KEY, API_SECRET, startSimulator, type RunningSimulator } from '../support/harness';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- ipernity's JSON answers, read field by field in the assertions
type Json = Record<string, any>;

let sim: RunningSimulator;
let client: IpernityClient;

beforeAll(async () => {
  sim = await startSimulator({ users: [
    { userId: '1234', username: 'Superman', realname: 'Kal-El' },
    { userId: '5678', username: 'Lois', realname: 'Lois Lane' },
    { userId: '9999', username: 'Gone', realname: 'Closed Account', closed: true },
  ] });
  client = new IpernityClient({ apiUrl: `${sim.url}/api`, apiKey: API_KEY, apiSecret: API_SECRET, timeoutMs: 5000 });
});
afterAll(async () => {
  await client.close();
  await sim.close();
});
afterEach(() => sim.faults.clear());

/** A token the simulator issued for this user and grant, the way the authorization page would. */
function tokenFor(userId: string, permissions: RequestedPermissions): string {
  const frob = sim.state.createAuthorizedFrob(API_KEY, userId, permissions);
  return (sim.state.exchangeFrob(API_KEY, frob) as { token: string }).token;
}

/** A raw call to the simulator's API, signed unless told not to. */
async function raw(httpMethod: 'GET' | 'POST', method: string, params: Record<string, string>, { signed = true } = {}): Promise<Json> {
  const all = { api_key: API_KEY, ...params };
  const sent = signed ? { ...all, api_sig: sign(all, API_SECRET, method) } : all;
  const answer = httpMethod === 'GET'
    ? await request(sim.url).get(`/api/${method}/json?${new URLSearchParams(sent)}`).expect(200)
    : await request(sim.url).post(`/api/${method}/json`).type('form').send(sent).expect(200);
  return answer.body as Json;
}

function outcome(body: Json): string {
  return body.api.status === 'ok' ? 'ok' : String(body.api.code);
}

describe('the simulator applies ipernity\'s rules to every listed method', () => {
  const levels: Array<[string, RequestedPermissions | undefined]> = [
    ['no token', undefined],
    ['doc:none (profile:read)', { profile: 'read' }],
    ['doc:read', { doc: 'read' }],
    ['doc:write', { doc: 'write' }],
    ['doc:delete', { doc: 'delete' }],
  ];

  // method, its parameters (a document of the token's own user where one is needed), then the answer at each level above
  const privateDoc = () => sim.library.docsOf('1234', { userId: '1234', canReadPrivate: true }).find((doc) => !doc.isPublic)?.docId as string;
  const table: Array<[string, () => Record<string, string>, [string, string, string, string, string]]> = [
    // none, no token: anyone; private photos only with doc:read
    ['doc.getList', () => ({ user_id: '1234' }), ['ok', 'ok', 'ok', 'ok', 'ok']],
    // doc:read, no token needed: without the permission it answers what an anonymous visitor sees (no such document)
    ['doc.get', () => ({ doc_id: privateDoc() }), ['1', '1', 'ok', 'ok', 'ok']],
    ['doc.getMedias', () => ({ doc_id: privateDoc() }), ['1', '1', 'ok', 'ok', 'ok']],
    // doc:read with a token
    ['doc.checkMD5', () => ({ md5: '0'.repeat(32) }), ['106', '110', 'ok', 'ok', 'ok']],
    // doc:write with a token
    ['account.getQuota', () => ({}), ['106', '110', '110', 'ok', 'ok']],
    ['doc.set', () => ({ doc_id: privateDoc(), title: 'Renamed' }), ['106', '110', '110', 'ok', 'ok']],
    ['album.create', () => ({ title: 'New album' }), ['106', '110', '110', 'ok', 'ok']],
    ['upload.checkTickets', () => ({ tickets: '1' }), ['106', '110', '110', 'ok', 'ok']],
    // doc:delete
    ['doc.delete', () => ({ doc_id: '1' }), ['106', '110', '110', '110', '1']],
  ];

  it.each(table)('%s', async (method, params, expected) => {
    const answers: string[] = [];
    for (const [, permissions] of levels) {
      const token = permissions ? tokenFor('1234', permissions) : undefined;
      answers.push(outcome(await raw('POST', method, { ...params(), ...(token ? { auth_token: token } : {}) })));
    }
    expect(answers).toEqual(expected);
  });

  it('answers 103 to a method not in the list, and says so for a listed one it does not implement', async () => {
    expect(outcome(await raw('POST', 'doc.teleport', {}))).toBe('103');
    const unimplemented = await raw('POST', 'group.getList', {});
    expect(outcome(unimplemented)).toBe('103');
    expect(unimplemented.api.message).toContain('the simulator does not implement it');
  });

  it('answers 120 to a POST-only method sent by GET, and serves the others by GET', async () => {
    const token = tokenFor('1234', { doc: 'write' });
    expect(outcome(await raw('GET', 'doc.set', { doc_id: privateDoc(), auth_token: token }))).toBe('120');
    expect(outcome(await raw('GET', 'account.getQuota', { auth_token: token }))).toBe('ok');
  });

  it('asks a signed method for its signature (104, 105), and lets an unsigned one go without', async () => {
    const token = tokenFor('1234', { doc: 'write' });
    expect(outcome(await raw('POST', 'account.getQuota', { auth_token: token }, { signed: false }))).toBe('104');
    expect(outcome(await raw('POST', 'account.getQuota', { auth_token: token, api_sig: 'wrong' }, { signed: false }))).toBe('105');
    expect(outcome(await raw('POST', 'doc.getList', { user_id: '1234' }, { signed: false }))).toBe('ok');
    // a signature given to an unsigned method is still checked
    expect(outcome(await raw('POST', 'doc.getList', { user_id: '1234', api_sig: 'wrong' }, { signed: false }))).toBe('105');
  });

  it('answers 107 to a revoked token and 108 to a closed account, on any method that is given one', async () => {
    const token = tokenFor('1234', { doc: 'read' });
    sim.state.revoke(token);
    expect(outcome(await raw('POST', 'doc.getList', { user_id: '1234', auth_token: token }))).toBe('107');
    expect(outcome(await raw('POST', 'account.getQuota', { auth_token: token }))).toBe('107');
    const closed = tokenFor('9999', { doc: 'write' });
    expect(outcome(await raw('POST', 'account.getQuota', { auth_token: closed }))).toBe('108');
  });

  it('names a missing required parameter (1)', async () => {
    const answer = await raw('POST', 'doc.get', {});
    expect(answer.api).toMatchObject({ status: 'error', code: '1', message: 'Required parameter missing: doc_id' });
  });
});

describe('the photo library', () => {
  it('gives every user photos, some private, that a token without doc:read does not see', async () => {
    const withRead = await client.call('doc.getList', { user_id: '1234' }, tokenFor('1234', { doc: 'read' }));
    const anonymous = await client.call('doc.getList', { user_id: '1234' });
    const withoutRead = await client.call('doc.getList', { user_id: '1234' }, tokenFor('1234', { profile: 'read' }));
    const all = (withRead.docs as Json).doc as Json[];
    expect(all.length).toBeGreaterThanOrEqual(6);
    expect(all.some((doc) => doc.is_public === '0')).toBe(true);
    expect(((anonymous.docs as Json).doc as Json[]).every((doc) => doc.is_public === '1')).toBe(true);
    expect((withoutRead.docs as Json).doc).toEqual((anonymous.docs as Json).doc);
    expect((anonymous.docs as Json).total).toBe(String(all.filter((doc) => doc.is_public === '1').length));
  });

  it('never shows another user\'s private photos, whatever the token grants', async () => {
    const asLois = await client.call('doc.getList', { user_id: '1234' }, tokenFor('5678', { doc: 'delete' }));
    expect(((asLois.docs as Json).doc as Json[]).every((doc) => doc.is_public === '1')).toBe(true);
    const hidden = sim.library.docsOf('1234', { userId: '1234', canReadPrivate: true }).find((doc) => !doc.isPublic);
    await expect(client.call('doc.get', { doc_id: hidden?.docId as string }, tokenFor('5678', { doc: 'read' }))).rejects.toMatchObject({ apiCode: 1 });
  });

  it('answers ipernity\'s shapes: strings for attributes, arrays for repeated elements, pages', async () => {
    const list = await client.call('doc.getList', { user_id: '1234', per_page: '2', page: '2' }, tokenFor('1234', { doc: 'read' }));
    expect(list.docs).toMatchObject({ page: '2', per_page: '2', pages: '3', total: '6' });
    const doc = ((list.docs as Json).doc as Json[])[0] as Json;
    expect(doc).toMatchObject({ doc_id: expect.stringMatching(/^\d+$/), media: 'photo', title: expect.any(String), thumb: { label: '75x', w: '75', h: '75', url: expect.stringContaining('/media/') } });
    const titles: string[] = [];
    for await (const item of client.paginate<Json>('doc.getList', { user_id: '1234', per_page: '4' })) titles.push(item.title as string);
    expect(titles).toHaveLength(4); // the public ones
    const one = await client.call('doc.get', { doc_id: doc.doc_id as string });
    expect(one.doc).toMatchObject({ doc_id: doc.doc_id, owner: { user_id: '1234', username: 'Superman' }, visibility: { ispublic: '1' }, tags: { tag: expect.any(Array) }, thumbs: { thumb: expect.any(Array) } });
  });

  it('searches by text and tags, lists and fills albums', async () => {
    const found = await client.call('doc.search', { user_id: '1234', text: 'harbour' });
    expect(((found.docs as Json).doc as Json[]).map((d) => d.title)).toEqual(['Red harbour at dawn']);
    const tagged = await client.call('doc.search', { user_id: '1234', tags: 'green,nothing' });
    expect(((tagged.docs as Json).doc as Json[]).map((d) => d.title)).toEqual(['Ripples in the pond']);
    const token = tokenFor('1234', { doc: 'write' });
    const albums = await client.call('album.getList', { user_id: '1234' });
    expect(((albums.albums as Json).album as Json[]).map((a) => a.title)).toEqual(['Holidays', 'Garden']);
    const created = await client.call('album.create', { title: 'Best of' }, token);
    const albumId = (created.album as Json).album_id as string;
    const docId = (((found.docs as Json).doc as Json[])[0] as Json).doc_id as string;
    await client.call('album.docs.add', { album_id: albumId, doc_id: docId }, token);
    const inside = await client.call('album.docs.getList', { album_id: albumId });
    expect(((inside.album as Json).doc as Json[]).map((d) => d.doc_id)).toEqual([docId]);
    // someone else's photo cannot be put in one's album, nor edited
    const lois = sim.library.docsOf('5678', undefined)[0]?.docId as string;
    await expect(client.call('album.docs.add', { album_id: albumId, doc_id: lois }, token)).rejects.toMatchObject({ apiCode: 2 });
    await expect(client.call('doc.set', { doc_id: lois, title: 'Mine now' }, token)).rejects.toMatchObject({ apiCode: 2 });
  });

  it('edits, tags and deletes a photo of one\'s own', async () => {
    const token = tokenFor('1234', { doc: 'delete' });
    const doc = sim.library.docsOf('1234', undefined)[0]?.docId as string;
    await client.call('doc.set', { doc_id: doc, title: 'Été & co 🌅' }, token);
    const tags = await client.call('doc.tags.add', { doc_id: doc, keywords: 'sea, summer' }, token);
    expect((tags.tags as Json).tag).toEqual(expect.arrayContaining(['sea', 'summer']));
    expect(((await client.call('doc.get', { doc_id: doc })).doc as Json).title).toBe('Été & co 🌅');
    await client.call('doc.delete', { doc_id: doc }, token);
    await expect(client.call('doc.get', { doc_id: doc })).rejects.toMatchObject({ apiCode: 1 });
  });

  it('finds a photo by the MD5 of its original', async () => {
    const token = tokenFor('1234', { doc: 'read' });
    const doc = (((await client.call('doc.getMedias', { doc_id: sim.library.docsOf('1234', undefined)[0]?.docId as string })).medias as Json).media as Json[]).find((m) => m.label === 'original') as Json;
    const bytes = (await request(doc.url as string).get('').buffer(true).expect(200)).body as Buffer;
    const md5 = createHash('md5').update(bytes).digest('hex');
    const answer = await client.call('doc.checkMD5', { md5: `${md5},${'f'.repeat(32)}` }, token);
    expect((answer.docs as Json).doc).toEqual([{ md5, doc_id: expect.any(String) }]);
  });

  it('answers account.getQuota, user.get, test.echo and the method list', async () => {
    const quota = await client.call('account.getQuota', {}, tokenFor('1234', { doc: 'write' }));
    expect(quota.quota).toMatchObject({ user_id: '1234', upload: { max: { bytes: expect.stringMatching(/^\d+$/) } }, maxfilesize: { photo: { bytes: String(20 * 1024 * 1024) } } });
    expect(((await client.call('user.get', { user_id: '1234' })).user as Json).count).toMatchObject({ docs: String(sim.library.docsOf('1234', undefined).length) });
    expect((await client.call('test.echo', { echo: 'a & b' })).echo).toBe('a & b');
    const methods = (await client.call('api.methods.getList')).methods as Json;
    expect(methods.total).toBe('102');
  });
});

describe('the photos themselves', () => {
  it('serves every size as a real image with its content type and a cache lifetime, at the addresses the API gives', async () => {
    const doc = sim.library.docsOf('1234', undefined)[0]?.docId as string;
    const medias = ((await client.call('doc.getMedias', { doc_id: doc })).medias as Json).media as Json[];
    expect(medias.map((m) => m.label)).toEqual(['75x', '240', '500', 'original']);
    for (const media of medias) {
      const answer = await request(media.url as string).get('').buffer(true).expect(200);
      expect(answer.headers['content-type']).toBe('image/png');
      expect(answer.headers['cache-control']).toBe('public, max-age=86400');
      expect(imageFacts(answer.body as Buffer)).toMatchObject({ width: Number(media.w), height: Number(media.h) });
    }
    // the address carries the photo's secret: without it, nothing
    const url = new URL(medias[0]?.url as string);
    await request(sim.url).get(url.pathname.replace(/\/media\/(\d+)\/[^/]+\//, '/media/$1/0000000000/')).expect(404);
  });

  it('gives distinct photos distinct pictures', async () => {
    const docs = sim.library.docsOf('1234', { userId: '1234', canReadPrivate: true });
    const sums = new Set(docs.map((doc) => sim.library.md5(doc)));
    expect(sums.size).toBe(docs.length);
  });

  it('serves each public photo\'s page, and keeps a private one to its owner', async () => {
    const docs = sim.library.docsOf('1234', { userId: '1234', canReadPrivate: true });
    const open = docs.find((doc) => doc.isPublic);
    const hidden = docs.find((doc) => !doc.isPublic);
    const page = await request(sim.url).get(`/doc/1234/${open?.docId}`).expect(200);
    expect(page.text).toContain(`<img src="${sim.url}/media/${open?.docId}/`);
    await request(sim.url).get(`/doc/1234/${hidden?.docId}`).expect(403);
    await request(sim.url).get('/doc/1234/1').expect(404);
  });
});

describe('fault switches for what a real connection meets', () => {
  it('quota reached (112) and too many requests (113) become typed errors', async () => {
    const token = tokenFor('1234', { doc: 'write' });
    sim.faults.set({ apiError: 112, times: 1 });
    await expect(client.call('account.getQuota', {}, token)).rejects.toBeInstanceOf(IpernityQuotaError);
    sim.faults.set({ apiError: 113, times: 1 });
    const limited = await client.call('account.getQuota', {}, token).catch((error: unknown) => error);
    expect(limited).toBeInstanceOf(IpernityRateLimitError);
    // ipernity gives no delay: the client's default
    expect((limited as IpernityRateLimitError).retryAfterSeconds).toBe(DEFAULT_RETRY_AFTER_SECONDS);
    await expect(client.call('account.getQuota', {}, token)).resolves.toHaveProperty('quota');
  });

  it('POST required (120) becomes its typed error', async () => {
    sim.faults.set({ apiError: 120, times: 1 });
    await expect(client.call('test.echo', { echo: 'x' })).rejects.toBeInstanceOf(IpernityPostRequiredError);
  });

  it('a token without the permission is ipernity\'s 110, typed, naming what the method needs', async () => {
    const error = await client.call('account.getQuota', {}, tokenFor('1234', { doc: 'read' })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IpernityPermissionError);
    expect(error).toMatchObject({ apiCode: 110, permission: { item: 'doc', level: 'write' } });
    expect(error).toBeInstanceOf(IpernityApiError);
  });

  it('can be set over HTTP', async () => {
    await request(sim.url).post('/__simulator/faults').send({ apiError: 113, methods: ['test.echo'], times: 1 }).expect(204);
    await expect(client.call('test.echo', { echo: 'x' })).rejects.toBeInstanceOf(IpernityRateLimitError);
    await request(sim.url).post('/__simulator/faults').send({ apiError: 'soon' }).expect(400);
  });
});
