import request from 'supertest';
import type TestAgent from 'supertest/lib/agent';
import { ConfigError, loadConfig } from '../../src/config';
import { renderPng } from '../../src/simulator/images';
import { csrfOf, decodeHtml, useAppAgainstSimulator, walkFlow } from '../support/harness';

const PNG = renderPng({ pattern: 'checks', colour: [200, 90, 20], background: [250, 250, 245] }, 120, 90);

/** The `<img>` tags of the photo list, as `{ src, alt }`. */
function thumbnails(html: string): Array<{ src: string; alt: string }> {
  const list = /<ul class="photo-list" id="photo-list">([\s\S]*?)<\/ul>/.exec(html)?.[1] ?? '';
  return [...list.matchAll(/<img src="([^"]*)" alt="([^"]*)"/g)].map((match) => ({ src: decodeHtml(match[1] as string), alt: decodeHtml(match[2] as string) }));
}

/** The upload form: its attributes and the names of its fields, in order. */
function uploadForm(html: string): { tag: string; fields: string[] } | undefined {
  const match = /(<form[^>]*id="upload-form"[^>]*>)([\s\S]*?)<\/form>/.exec(html);
  if (!match) return undefined;
  return { tag: match[1] as string, fields: [...(match[2] as string).matchAll(/<input [^>]*name="([^"]+)"/g)].map((field) => field[1] as string) };
}

describe('the photo page (HOME_PAGE=photos): the example site of docs/using-the-connection.md', () => {
  const fixture = useAppAgainstSimulator(
    { HOME_PAGE: 'photos', IPERNITY_API_METHODS: 'doc.getList,doc.getMedias,upload.file,upload.checkTickets' },
    { uploads: { processingMs: 100 } },
  );
  // a user of their own for each test, so that one test's uploads or deletions never show in another's list
  let nextUser = 7100;

  async function connected(query: string): Promise<{ agent: TestAgent; userId: string }> {
    const userId = String(nextUser++);
    const agent = request.agent(fixture.handle.app);
    await walkFlow(agent, fixture.simulator, { query, userId });
    return { agent, userId };
  }

  const all = (userId: string) => fixture.simulator.library.docsOf(userId, { userId, canReadPrivate: true });

  it('shows a visitor who is not connected the page of today, with the connect button', async () => {
    const page = await request(fixture.handle.app).get('/').expect(200);
    expect(page.text).toContain('id="connect"');
    expect(page.text).not.toContain('photos-title');
    expect(page.text).not.toContain('upload-form');
  });

  it('shows the latest photos with doc:read, a private one through the server, and asks for doc:write to upload', async () => {
    const { agent, userId } = await connected('perm_doc=read');
    const docs = all(userId);
    const untitled = docs.find((doc) => doc.title === 'Blue tiles');
    if (untitled) untitled.title = '';
    const page = await agent.get('/').expect(200);
    // today's page is all still there
    for (const id of ['connected-user', 'granted-permissions', 'request-more', 'disconnect']) expect(page.text).toContain(`id="${id}"`);
    expect(page.text).toContain('<h2 id="photos-title">Your latest photos on ipernity</h2>');

    const shown = thumbnails(page.text);
    expect(shown.map((thumb) => thumb.alt).sort()).toEqual(['Evening field', 'Family picnic', 'My new flat', 'Red harbour at dawn', 'Ripples in the pond', 'Untitled photo'].sort());
    const harbour = docs.find((doc) => doc.title === 'Red harbour at dawn');
    expect(shown.find((thumb) => thumb.alt === 'Red harbour at dawn')?.src).toBe(`${fixture.simulator.url}/media/${harbour?.docId}/${harbour?.secret}/240.png`);
    // each links to the photo's page on ipernity
    expect(page.text).toContain(`<a href="${fixture.simulator.url}/doc/${userId}/${harbour?.docId}">`);

    // a private photo's address carries its secret: the page has the server's address instead, never the secret
    const flat = docs.find((doc) => doc.title === 'My new flat');
    expect(shown.find((thumb) => thumb.alt === 'My new flat')?.src).toBe(`/api/ipernity/media/${flat?.docId}/240`);
    expect(page.text).not.toContain(flat?.secret);
    const image = await agent.get(`/api/ipernity/media/${flat?.docId}/240`).expect(200);
    expect(image.headers['content-type']).toBe('image/png');

    // no doc:write: a link to the warning page asking for it on top of what is granted, coming back home
    expect(uploadForm(page.text)).toBeUndefined();
    const link = /<a class="button secondary" id="upload-permission" href="([^"]+)">Allow uploads<\/a>/.exec(page.text)?.[1];
    const url = new URL(decodeHtml(link as string), 'http://127.0.0.1');
    expect(url.pathname).toBe('/connect');
    expect(Object.fromEntries(url.searchParams)).toEqual({ perm_doc: 'write', return_to: '/' });
    // and the upload route itself sends such a visitor to the warning page, coming back home too
    const refused = await agent.post('/photos/upload').field('_csrf', csrfOf(page.text)).attach('file', PNG, { filename: 'a.png', contentType: 'image/png' }).expect(303);
    expect(Object.fromEntries(new URL(refused.headers.location as string, 'http://127.0.0.1').searchParams)).toEqual({ perm_doc: 'write', return_to: '/' });
  });

  it('asks for doc:write on top of everything granted', async () => {
    const { agent } = await connected('perm_doc=read&perm_profile=read');
    const page = await agent.get('/').expect(200);
    const link = /id="upload-permission" href="([^"]+)"/.exec(page.text)?.[1];
    expect(Object.fromEntries(new URL(decodeHtml(link as string), 'http://127.0.0.1').searchParams)).toEqual({ perm_doc: 'write', perm_profile: 'read', return_to: '/' });
  });

  it('uploads a photo with doc:write through the form, says it is being processed, and lists it once processed', async () => {
    const { agent, userId } = await connected('perm_doc=write');
    const page = await agent.get('/').expect(200);
    const form = uploadForm(page.text);
    expect(form?.tag).toBe('<form method="post" action="/photos/upload" enctype="multipart/form-data" id="upload-form">');
    // the token first (read before the file), the file last (a form sends its fields in this order)
    expect(form?.fields).toEqual(['_csrf', 'title', 'is_public', 'file']);
    expect(page.text).toContain('<input type="checkbox" id="upload-public" name="is_public" value="1">');
    expect(page.text).toContain('<input type="file" id="upload-file" name="file" accept="image/*" required>');
    expect(page.text).toContain('<label for="upload-file">Photo</label>');

    const before = all(userId).length;
    const answer = await agent
      .post('/photos/upload')
      .field('_csrf', csrfOf(page.text))
      .field('title', 'Orange checks')
      .attach('file', PNG, { filename: 'checks.png', contentType: 'image/png' })
      .expect(303);
    expect(answer.headers.location).toBe('/?uploaded=1');
    const notice = await agent.get('/?uploaded=1').expect(200);
    expect(notice.text).toContain('Your photo is being processed; it appears in the list in a few seconds.');

    let listed: Array<{ src: string; alt: string }> = [];
    for (let tries = 0; tries < 40 && !listed.some((thumb) => thumb.alt === 'Orange checks'); tries += 1) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      listed = thumbnails((await agent.get('/').expect(200)).text);
    }
    const uploaded = all(userId).find((doc) => doc.title === 'Orange checks');
    expect(all(userId)).toHaveLength(before + 1);
    // the box was left unchecked: private, so its thumbnail comes through the server (an upload has only its original)
    expect(uploaded?.isPublic).toBe(false);
    expect(listed.find((thumb) => thumb.alt === 'Orange checks')?.src).toBe(`/api/ipernity/media/${uploaded?.docId}/original`);
    expect((await agent.get('/').expect(200)).text).not.toContain('Your photo is being processed');
  });

  it('uploads a public photo when the box is checked', async () => {
    const { agent, userId } = await connected('perm_doc=write');
    const page = await agent.get('/').expect(200);
    await agent.post('/photos/upload').field('_csrf', csrfOf(page.text)).field('title', 'Out in the open').field('is_public', '1').attach('file', PNG, { filename: 'open.png', contentType: 'image/png' }).expect(303);
    for (let tries = 0; tries < 40 && !all(userId).some((doc) => doc.title === 'Out in the open'); tries += 1) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(all(userId).find((doc) => doc.title === 'Out in the open')?.isPublic).toBe(true);
  });

  it('answers the upload route with pages: a bad form, a token missing', async () => {
    const { agent } = await connected('perm_doc=write');
    const page = await agent.get('/').expect(200);
    const noFile = await agent.post('/photos/upload').field('_csrf', csrfOf(page.text)).field('title', 'x').expect(400);
    expect(noFile.headers['content-type']).toMatch(/^text\/html/);
    expect(noFile.text).toContain('The form or address could not be read');
    const forged = await agent.post('/photos/upload').field('title', 'x').attach('file', PNG, 'a.png').expect(403);
    expect(forged.text).toContain('CSRF_INVALID');
  });

  it('counts the page\'s uploads against API_RATE_LIMIT_PER_MINUTE, as gateway calls, and says so on a page when it is spent', async () => {
    fixture.rebuild({ API_RATE_LIMIT_PER_MINUTE: '2' });
    const { agent, userId } = await connected('perm_doc=write');
    const token = csrfOf((await agent.get('/').expect(200)).text);
    await agent.get(`/api/ipernity/doc.getList?user_id=${userId}`).expect(200);
    await agent.post('/photos/upload').field('_csrf', token).attach('file', PNG, { filename: 'a.png', contentType: 'image/png' }).expect(303);
    const refused = await agent.post('/photos/upload').field('_csrf', token).attach('file', PNG, { filename: 'b.png', contentType: 'image/png' }).expect(429);
    expect(refused.headers['content-type']).toMatch(/^text\/html/);
    expect(refused.text).toContain('Too many requests in a short time');
    expect(refused.text).toContain('API_RATE_LIMITED');
  });

  it('says so calmly when the library is empty', async () => {
    const { agent, userId } = await connected('perm_doc=write');
    for (const doc of all(userId)) fixture.simulator.library.delete(doc);
    const page = await agent.get('/').expect(200);
    expect(page.text).toContain('<p class="calm" id="photos-empty">You have no photos on ipernity yet.</p>');
    expect(thumbnails(page.text)).toEqual([]);
    expect(uploadForm(page.text)).toBeDefined();
  });

  it('says so calmly when ipernity fails, and still shows the page', async () => {
    const { agent } = await connected('perm_doc=read');
    fixture.simulator.faults.set({ status: 500, methods: ['doc.getList'] });
    const page = await agent.get('/').expect(200);
    expect(page.text).toContain('id="photos-failed"');
    expect(page.text).toContain('ipernity did not send your photos just now.');
    expect(page.text).toContain('id="connected-user"');
    expect(page.text).toContain('id="upload-permission"');
    expect(fixture.handle.logs.events().map((entry) => entry.event)).toContain('photos_unavailable');
  });

  it('treats a token ipernity revoked as the token check does: the notice, and the page for a visitor not connected', async () => {
    const { agent } = await connected('perm_doc=read');
    fixture.simulator.state.revoke();
    const page = await agent.get('/').expect(200);
    expect(page.text).toContain('Your ipernity connection was withdrawn or has expired.');
    expect(page.text).toContain('id="connect"');
    expect(page.text).not.toContain('photos-title');
    expect((await agent.get('/connection').expect(200)).body).toEqual({ connected: false });
  });

  it('speaks French and German', async () => {
    const { agent } = await connected('perm_doc=read');
    const fr = await agent.get('/').set('Accept-Language', 'fr').expect(200);
    expect(fr.text).toContain('Vos dernières photos sur ipernity');
    expect(fr.text).toContain('Envoyer une photo');
    expect(fr.text).toContain('Autoriser l’envoi de photos');
    const de = await agent.get('/').set('Accept-Language', 'de').expect(200);
    expect(de.text).toContain('Ihre neuesten Fotos auf ipernity');
    expect(de.text).toContain('Ein Foto hochladen');
    expect(de.text).toContain('Hochladen erlauben');
    const { agent: writer } = await connected('perm_doc=write');
    expect((await writer.get('/').set('Accept-Language', 'fr').expect(200)).text).toContain('<label for="upload-file">Photo</label>');
    expect((await writer.get('/').set('Accept-Language', 'de').expect(200)).text).toContain('>Hochladen</button>');
  });

  it('keeps the connection page alone with HOME_PAGE=connection', async () => {
    fixture.rebuild({ HOME_PAGE: 'connection' });
    const { agent } = await connected('perm_doc=write');
    const page = await agent.get('/').expect(200);
    expect(page.text).toContain('id="connected-user"');
    expect(page.text).not.toContain('photos-title');
    expect(page.text).not.toContain('upload-form');
    await agent.post('/photos/upload').field('_csrf', csrfOf(page.text)).attach('file', PNG, 'a.png').expect(404);
  });
});

describe('HOME_PAGE', () => {
  it('is photos in sandbox mode and connection with a key, unless set', () => {
    expect(loadConfig({}).homePage).toBe('photos');
    expect(loadConfig({ HOME_PAGE: 'connection' }).homePage).toBe('connection');
    const key = { IPERNITY_API_KEY: 'key', IPERNITY_API_SECRET: 'secret' };
    expect(loadConfig(key).homePage).toBe('connection');
    expect(loadConfig({ ...key, HOME_PAGE: 'photos' }).homePage).toBe('photos');
  });

  it('stops start-up naming the variable for a wrong value', () => {
    let problems: string[] = [];
    try {
      loadConfig({ HOME_PAGE: 'gallery' });
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      problems = error.problems;
    }
    expect(problems).toEqual([expect.stringMatching(/^HOME_PAGE: HOME_PAGE must be photos .* or connection/)]);
  });
});
