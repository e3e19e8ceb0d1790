import request from 'supertest';
import { authorizeAtSimulator, csrfOf, useAppAgainstSimulator, walkFlow, API_SECRET, type RunningSimulator } from '../support/harness';

describe('the web connect flow', () => {
  const fx = useAppAgainstSimulator();

  it('connects a visitor and shows who is connected with what', async () => {
    const agent = request.agent(fx.handle.app);
    const callback = await walkFlow(agent, fx.simulator, { query: 'perm_doc=write&return_to=%2Fafter' });
    expect(callback.status).toBe(303);
    expect(callback.headers.location).toBe('/after');

    const connection = await agent.get('/connection').expect(200);
    expect(connection.body).toMatchObject({
      connected: true,
      user: { userId: '1234', username: 'Superman', realname: 'Kal-El' },
      permissions: { doc: 'write', blog: 'none' },
    });
    expect(JSON.stringify(connection.body)).not.toMatch(/token/i);

    const home = await agent.get('/').expect(200);
    expect(home.text).toContain('Kal-El');
    expect(home.text).toContain('data-item="doc" data-level="write"');
  });

  it('never puts the secret, the token or the frob in a response or a log line', async () => {
    const agent = request.agent(fx.handle.app);
    const warning = await agent.get('/connect');
    const start = await agent.post('/connect').type('form').send({ _csrf: csrfOf(warning.text), perm_doc: 'read' }).expect(303);
    const callbackUrl = await authorizeAtSimulator(fx.simulator, start.headers.location as string);
    const frob = callbackUrl.searchParams.get('frob') as string;
    const done = await agent.get(callbackUrl.pathname + callbackUrl.search).expect(303);
    // the flow's redirects carry no body, so nothing about the link or the frob can be in one
    for (const answer of [start, done]) expect(answer.headers['content-length']).toBe('0');
    const tokens = [...simulatorTokens(fx.simulator)];
    expect(tokens.length).toBeGreaterThan(0);
    const pages = [warning.text, JSON.stringify(start.headers), JSON.stringify(done.headers), (await agent.get('/')).text, (await agent.get('/connection')).text];
    const logs = fx.handle.logs.text();
    for (const secret of [API_SECRET, frob, ...tokens]) {
      for (const page of pages) expect(page).not.toContain(secret);
      expect(logs).not.toContain(secret);
    }
    expect(fx.handle.logs.events().map((e) => e.event)).toEqual(expect.arrayContaining(['flow_started', 'connected']));
    // the callback's line says how long ipernity took, beside the request's own time
    const connected = fx.handle.logs.events().find((e) => e.event === 'connected') as { upstreamMs: number; responseTime: number };
    expect(connected.upstreamMs).toBeGreaterThan(0);
    expect(connected.upstreamMs).toBeLessThanOrEqual(connected.responseTime);
  });
});

function simulatorTokens(simulator: RunningSimulator): Set<string> {
  return new Set(simulator.state.issuedTokens());
}
