import express from 'express';
import request from 'supertest';
import { renderPng } from '../../src/simulator/images';
import { buildApp, testConfig, walkFlow, startSimulator, type RunningSimulator, type TestApp } from '../support/harness';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- ipernity's JSON answers, read field by field in the assertions
type Json = Record<string, any>;

/**
 * The example of docs/using-the-connection.md: a site of its own that shows
 * the visitor's latest photos, and asks for doc:write only when the visitor
 * wants to upload.
 */
function photoSite(connect: TestApp): express.Express {
  const site = express();
  site.get('/photos', async (req, res) => {
    const ipernity = connect.ipernity(req);
    const me = await ipernity.connection();
    const answer = await ipernity.call('doc.getList', { user_id: me?.user.userId ?? '', per_page: '10' });
    const docs = ((answer.docs as Json).doc ?? []) as Json[];
    res.send(`<ul>${docs.map((doc) => `<li>${doc.title}</li>`).join('')}</ul>`);
  });
  site.get('/photo/:id', async (req, res) => {
    const answer = await connect.ipernity(req).call('doc.get', { doc_id: String(req.params.id) });
    res.send(String((answer.doc as Json).title));
  });
  // the upload page needs what upload.file needs: visitors who only granted doc:read are asked for doc:write here, not before
  site.get('/upload', connect.requirePermission({ methods: ['upload.file'] }), async (req, res) => {
    const quota = await connect.ipernity(req).call('account.getQuota');
    res.json({ left: ((quota.quota as Json).upload as Json).left.bytes });
  });
  // a script's call that needs more than the grant
  site.post('/rename', express.json(), async (req, res) => {
    await connect.ipernity(req).call('doc.set', { doc_id: String(req.body.doc_id), title: String(req.body.title) });
    res.json({ renamed: true });
  });
  // an upload from the site's own code (here a picture it made; a site passes the incoming file's stream)
  site.post('/upload/sample', async (req, res) => {
    const bytes = renderPng({ pattern: 'checks', colour: [200, 100, 0], background: [255, 255, 255] }, 64, 48);
    const answer = await connect.ipernity(req).upload({ stream: bytes, fileName: 'sample.png', contentType: 'image/png', size: bytes.length }, { title: 'From the site', async: '0' });
    res.json(answer);
  });
  site.use(connect.app);
  site.use(connect.answerConnectionErrors);
  return site;
}

describe('a site of its own, calling ipernity for the connected visitor', () => {
  let simulator: RunningSimulator;
  let connect: TestApp;
  let site: express.Express;
  beforeAll(async () => {
    simulator = await startSimulator();
  });
  afterAll(() => simulator.close());
  beforeEach(() => {
    connect = buildApp(testConfig(simulator.url, { IPERNITY_PERMISSIONS: 'doc:read' }));
    site = photoSite(connect);
  });
  afterEach(async () => {
    simulator.faults.clear();
    await connect.close();
  });

  it('sends a visitor who is not connected to the warning page, coming back to the page', async () => {
    await request(site).get('/photos').expect(303).expect('Location', '/connect?return_to=%2Fphotos');
  });

  it('tells a script that the visitor is not connected, with the link, never a redirect', async () => {
    const answer = await request(site).get('/photos').set('Accept', 'application/json').expect(401);
    expect(answer.body.error).toMatchObject({ code: 'NOT_CONNECTED', status: 401, connectUrl: '/connect?return_to=%2F' });
    const fetched = await request(site).post('/rename').set('Sec-Fetch-Mode', 'cors').set('Accept', '*/*').set('Referer', 'http://127.0.0.1/albums?page=2').send({ doc_id: 1, title: 'x' }).expect(401);
    expect(fetched.body.error.connectUrl).toBe('/connect?return_to=%2Falbums%3Fpage%3D2');
  });

  it("shows the connected visitor's latest photos, private ones included with doc:read", async () => {
    const agent = request.agent(site);
    await walkFlow(agent, simulator, { query: 'perm_doc=read' });
    const page = await agent.get('/photos').expect(200);
    expect(page.text).toContain('<li>Red harbour at dawn</li>');
    expect(page.text).toContain('<li>My new flat</li>'); // private
  });

  it('asks for doc:write only when the visitor wants to upload, and lets them through once granted', async () => {
    const agent = request.agent(site);
    await walkFlow(agent, simulator, { query: 'perm_doc=read' });
    const asked = await agent.get('/upload').expect(303);
    const link = new URL(asked.headers.location as string, 'http://127.0.0.1');
    expect(link.pathname).toBe('/connect');
    expect(Object.fromEntries(link.searchParams)).toEqual({ perm_doc: 'write', return_to: '/upload' });
    await walkFlow(agent, simulator, { query: link.search.slice(1) });
    expect((await agent.get('/upload').expect(200)).body.left).toMatch(/^\d+$/);
  });

  it('refuses, before any request, a call the grant does not cover: 403 JSON naming what is missing', async () => {
    const agent = request.agent(site);
    await walkFlow(agent, simulator, { query: 'perm_doc=read&perm_profile=read' });
    const answer = await agent.post('/rename').set('Accept', 'application/json').send({ doc_id: 1, title: 'x' }).expect(403);
    expect(answer.body.error).toMatchObject({ code: 'PERMISSION_MISSING', status: 403, method: 'doc.set', missing: { doc: 'write' } });
    // the link asks for what is granted and what is missing, together
    const upgrade = new URL(answer.body.error.upgradeUrl as string, 'http://127.0.0.1');
    expect(Object.fromEntries(upgrade.searchParams)).toEqual({ perm_doc: 'write', perm_profile: 'read', return_to: '/' });
  });

  it("uploads for the visitor once doc:write is granted, and asks for it before", async () => {
    const agent = request.agent(site);
    await walkFlow(agent, simulator, { query: 'perm_doc=read' });
    const asked = await agent.post('/upload/sample').set('Accept', 'application/json').expect(403);
    expect(asked.body.error).toMatchObject({ code: 'PERMISSION_MISSING', method: 'upload.file', missing: { doc: 'write' } });
    await walkFlow(agent, simulator, { query: 'perm_doc=write' });
    const uploaded = await agent.post('/upload/sample').expect(200);
    expect(uploaded.body.docId).toMatch(/^\d+$/);
    expect(simulator.library.doc(uploaded.body.docId as string)).toMatchObject({ title: 'From the site', ownerId: '1234' });
  });

  it("treats ipernity's own 110 like a missing permission", async () => {
    const agent = request.agent(site);
    await walkFlow(agent, simulator, { query: 'perm_doc=read' });
    const doc = simulator.library.docsOf('1234', undefined)[0]?.docId as string;
    simulator.faults.set({ apiError: 110, times: 1 });
    const answer = await agent.get(`/photo/${doc}`).expect(303);
    const link = new URL(answer.headers.location as string, 'http://127.0.0.1');
    expect(Object.fromEntries(link.searchParams)).toEqual({ perm_doc: 'read', return_to: `/photo/${doc}` });
    // a 110 for a method that needs no permission names nothing to ask for: ipernity's own refusal stands
    simulator.faults.set({ apiError: 110, times: 1 });
    await agent.get('/photos').expect(403);
  });

  it('clears a connection ipernity revoked, and says so', async () => {
    const agent = request.agent(site);
    await walkFlow(agent, simulator, { query: 'perm_doc=read' });
    simulator.state.revoke();
    const answer = await agent.get('/photos').set('Accept', 'application/json').expect(401);
    expect(answer.body.error).toMatchObject({ code: 'CONNECTION_REVOKED', connectUrl: expect.stringContaining('/connect?') });
    expect((await agent.get('/connection').expect(200)).body).toEqual({ connected: false });
    expect(connect.logs.events().map((entry) => entry.event)).toContain('token_revoked');
  });
});
