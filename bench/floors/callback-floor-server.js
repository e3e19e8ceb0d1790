'use strict';
/**
 * A floor for the callback rows: bare Express 5 doing only what any server
 * must do when ipernity sends a visitor back with a frob, the plainest way.
 * One signed `auth.getToken` POST over a keep-alive agent, the answer parsed,
 * the token kept in a new express-session session in Redis (connect-redis,
 * no touch), a 303, and one pino line per request carrying the request id
 * and `upstreamMs`, as the server's own line does. No attempt check, no
 * encryption, no helmet, no router, no error pages. On PORT, with REDIS_URL,
 * IPERNITY_API_URL, IPERNITY_API_KEY and IPERNITY_API_SECRET.
 */
const http = require('node:http');
const { randomUUID } = require('node:crypto');
const express = require('express');
const session = require('express-session');
const pino = require('pino');
const { createClient } = require('redis');
const { RedisStore } = require('connect-redis');
const { sign } = require('../../dist/ipernity/signature');
const { serve } = require('./serve');

const logger = pino({ timestamp: pino.stdTimeFunctions.isoTime }, pino.destination({ dest: 1, sync: false }));
const client = createClient({ url: process.env.REDIS_URL });
const agent = new http.Agent({ keepAlive: true, maxSockets: 128 });
const apiUrl = `${process.env.IPERNITY_API_URL}/auth.getToken/json`;
const apiKey = process.env.IPERNITY_API_KEY;
const apiSecret = process.env.IPERNITY_API_SECRET;

/** auth.getToken for a frob: the parsed JSON answer. */
function getToken(frob) {
  const params = { api_key: apiKey, frob };
  const body = new URLSearchParams({ ...params, api_sig: sign(params, apiSecret, 'auth.getToken') }).toString();
  return new Promise((resolve, reject) => {
    const request = http.request(apiUrl, { method: 'POST', agent, headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) } }, (response) => {
      const chunks = [];
      response.on('data', (chunk) => chunks.push(chunk));
      response.on('end', () => {
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        } catch (error) {
          reject(error);
        }
      });
      response.on('error', reject);
    });
    request.on('error', reject);
    request.end(body);
  });
}

const app = express();
app.set('etag', false);
app.use(function requestLine(req, res, next) {
  const id = req.headers['x-request-id'] ?? randomUUID();
  const started = performance.now();
  res.setHeader('X-Request-Id', id);
  res.once('close', () => logger.info({ reqId: id, req: { method: req.method, url: req.originalUrl }, res: { statusCode: res.statusCode }, responseTime: Math.round((performance.now() - started) * 100) / 100, upstreamMs: res.locals.upstreamMs && Math.round(res.locals.upstreamMs * 100) / 100 }, 'request completed'));
  next();
});
app.use(session({ secret: 'floor-secret', store: new RedisStore({ client, prefix: 'floor-callback:', disableTouch: true }), resave: false, saveUninitialized: false, cookie: { httpOnly: true, sameSite: 'lax', maxAge: 3_600_000 } }));
app.get('/connect/callback', async function callback(req, res) {
  const asked = performance.now();
  const answer = await getToken(String(req.query.frob));
  res.locals.upstreamMs = performance.now() - asked;
  const auth = answer.auth;
  req.session.connection = { token: auth.token, permissions: auth.permissions, user: { userId: auth.user.user_id, username: auth.user.username }, connectedAt: Date.now() };
  req.session.save((error) => {
    if (error) res.status(503).send('store unavailable');
    else res.redirect(303, '/after');
  });
});
// listens once Redis is connected, so no request meets a store that is not there yet
client.connect().then(() =>
  serve(app, () => {
    logger.flush();
    client.destroy();
  }),
);
