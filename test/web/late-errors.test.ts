import session from 'express-session';
import request from 'supertest';
import { buildApp, startSimulator, testConfig, walkFlow, type RunningSimulator } from '../support/harness';

/** A memory store whose writes can be made to fail, as Redis does when it goes away. */
class FlakyStore extends session.MemoryStore {
  failing = false;
  override set(sid: string, sess: session.SessionData, callback?: (error?: unknown) => void): void {
    if (this.failing) {
      callback?.(new Error('store down'));
      return;
    }
    super.set(sid, sess, callback);
  }
}

describe('an error after the response has started', () => {
  let simulator: RunningSimulator;
  beforeAll(async () => {
    simulator = await startSimulator();
  });
  afterAll(async () => {
    jest.restoreAllMocks();
    await simulator.close();
  });

  it('is logged as a warning on our logger, not printed as a stack trace by Express', async () => {
    const store = new FlakyStore();
    const handle = buildApp(testConfig(simulator.url), { sessionStore: store });
    const stderr = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      const agent = request.agent(handle.app);
      await walkFlow(agent, simulator);
      // twenty minutes later the visit refreshes `seenAt`, which express-session saves after answering
      const later = Date.now() + 20 * 60 * 1000;
      jest.spyOn(Date, 'now').mockReturnValue(later);
      store.failing = true;
      await agent.get('/connection').expect(200);
      await new Promise((resolve) => setImmediate(resolve));
      expect(stderr).not.toHaveBeenCalled();
      expect(handle.logs.events().find((e) => e.event === 'late_error')).toMatchObject({ level: 40 });
    } finally {
      await handle.close();
    }
  });
});
