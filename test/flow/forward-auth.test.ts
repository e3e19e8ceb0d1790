import request from 'supertest';
import { useAppAgainstSimulator, walkFlow } from '../support/harness';

describe('GET /connect/auth (the reverse proxy\'s forward-auth sub-request)', () => {
  const fixture = useAppAgainstSimulator({}, { users: [{ userId: '1234', username: 'Clark Kent 🦸', realname: 'Kal-El' }] });

  function expectBare(answer: request.Response, status: number): void {
    expect(answer.status).toBe(status);
    expect(answer.text).toBe('');
    expect(answer.headers['cache-control']).toBe('no-store');
    expect(answer.headers['set-cookie']).toBeUndefined();
    expect(answer.headers.location).toBeUndefined();
  }

  it('answers 401 without a session, and without a connected one', async () => {
    expectBare(await request(fixture.handle.app).get('/connect/auth'), 401);
    const agent = request.agent(fixture.handle.app);
    await agent.get('/connect').expect(200); // an attempts cookie, no connection
    expectBare(await agent.get('/connect/auth'), 401);
    expectBare(await request(fixture.handle.app).get('/connect/auth').set('Cookie', 'ipernity-connect.sid=s%3Aforged.sig'), 401);
  });

  it('answers 200 with the identity headers for a connected browser, and writes nothing', async () => {
    const agent = request.agent(fixture.handle.app);
    await walkFlow(agent, fixture.simulator, { query: 'perm_doc=write&perm_profile=read' });
    const answer = await agent.get('/connect/auth');
    expectBare(answer, 200);
    expect(answer.headers['x-ipernity-user-id']).toBe('1234');
    expect(decodeURIComponent(answer.headers['x-ipernity-username'] as string)).toBe('Clark Kent 🦸');
    expect(answer.headers['x-ipernity-permissions']).toBe('doc=write,profile=read');
    // HEAD too, for proxies that ask that way
    expect((await agent.head('/connect/auth')).status).toBe(200);
  });

  it('answers 403 when the grant does not cover what the location requires, by permission or by method', async () => {
    const agent = request.agent(fixture.handle.app);
    await walkFlow(agent, fixture.simulator, { query: 'perm_doc=read' });
    expectBare(await agent.get('/connect/auth?require=doc:read'), 200);
    expectBare(await agent.get('/connect/auth?require=doc:write'), 403);
    expectBare(await agent.get('/connect/auth?methods=doc.getList,doc.get'), 200);
    expectBare(await agent.get('/connect/auth?methods=upload.file'), 403);
    expectBare(await agent.get('/connect/auth?require=doc:read&methods=account.getQuota'), 403);
  });

  it('answers 400 to a location that requires something unknown, connected or not', async () => {
    const agent = request.agent(fixture.handle.app);
    await walkFlow(agent, fixture.simulator);
    for (const query of ['require=doc:admin', 'require=photos:read', 'methods=doc.teleport', 'require=doc:read&require=doc:write']) {
      expectBare(await agent.get(`/connect/auth?${query}`), 400);
    }
  });

  it('does not let the visitor\'s session expire later than it would have', async () => {
    const agent = request.agent(fixture.handle.app);
    await walkFlow(agent, fixture.simulator);
    const stored = JSON.stringify(await new Promise((resolve) => fixture.handle.sessions.store.all?.((_e, all) => resolve(all))));
    for (let i = 0; i < 3; i += 1) await agent.get('/connect/auth').expect(200);
    expect(JSON.stringify(await new Promise((resolve) => fixture.handle.sessions.store.all?.((_e, all) => resolve(all))))).toBe(stored);
  });

  it('answers a sub-request naming an internal host, or a very long address, with a bare status, never a redirect or a page', async () => {
    const agent = request.agent(fixture.handle.app);
    await walkFlow(agent, fixture.simulator);
    expectBare(await agent.get('/connect/auth').set('Host', 'app:3000'), 200);
    expectBare(await agent.get(`/connect/auth?require=${'doc:read,'.repeat(600)}`), 400);
  });

  it('allows GET and HEAD only', async () => {
    const answer = await request(fixture.handle.app).post('/connect/auth').expect(405);
    expect(answer.headers.allow).toBe('GET, HEAD');
  });
});
