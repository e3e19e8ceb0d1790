import session from 'express-session';
import request from 'supertest';
import { buildApp, testConfig, type TestApp } from '../support/harness';

/** No flow runs here: nothing calls the API. */
const NO_UPSTREAM = 'http://127.0.0.1:9';

/** A store that does not answer: `/readyz` says 503. */
class UnreachableStore extends session.MemoryStore {
  override get(_sid: string, callback: (error: unknown) => void): void {
    callback(Object.assign(new Error('connection refused'), { code: 'ECONNREFUSED' }));
  }
}

/** For supertest's `.expect()`: the answer is never sniffed into another type, nor cached. */
function plainAnswer(answer: request.Response): void {
  expect(answer.headers['x-content-type-options']).toBe('nosniff');
  expect(answer.headers['cache-control']).toBe('no-store');
}

describe('health and metrics answers, served before helmet', () => {
  let handle: TestApp;
  afterEach(() => handle.close());

  describe('with the store answering', () => {
    beforeEach(() => {
      handle = buildApp(testConfig(NO_UPSTREAM));
    });

    it.each([
      { method: 'get', path: '/healthz', status: 200 },
      { method: 'head', path: '/healthz', status: 200 },
      { method: 'get', path: '/readyz', status: 200 },
      { method: 'get', path: '/metrics', status: 200 },
    ] as const)('$method $path answers $status with nosniff', async ({ method, path, status }) => {
      await request(handle.app)[method](path).expect(status).expect(plainAnswer);
    });
  });

  it('GET /readyz answers 503 with nosniff when the store does not answer', async () => {
    handle = buildApp(testConfig(NO_UPSTREAM), { sessionStore: new UnreachableStore() });
    await request(handle.app).get('/readyz').expect(503).expect(plainAnswer);
  });

  it('GET /metrics answers 401 with nosniff without the token, and 200 with it', async () => {
    handle = buildApp(testConfig(NO_UPSTREAM, { METRICS_TOKEN: 'metrics-secret' }));
    await request(handle.app).get('/metrics').expect(401).expect(plainAnswer);
    await request(handle.app).get('/metrics').set('Authorization', 'Bearer metrics-secret').expect(200).expect(plainAnswer);
  });
});
