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
const express = require('express');
const session = require('express-session');
const pino = require('pino');
const { createClient } = require('redis');
const { RedisStore } = require('connect-redis');
const { serve } = require('./serve');
const { requestLine, signedCall } = require('./upstream');

const logger = pino({ timestamp: pino.stdTimeFunctions.isoTime }, pino.destination({ dest: 1, sync: false }));
const client = createClient({ url: process.env.REDIS_URL });

/** auth.getToken for a frob: the parsed JSON answer. */
async function getToken(frob) {
  const answer = await signedCall('auth.getToken', { frob });
  return JSON.parse(answer.body.toString('utf8'));
}

const app = express();
app.set('etag', false);
app.use(requestLine(logger));
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
