'use strict';
/**
 * A floor for the gateway rows: bare Express 5 doing only what any gateway
 * must do to call ipernity for a visitor and pass the answer on, the
 * plainest way. The visitor's express-session session read from Redis
 * (connect-redis, no touch) for their token, one signed `doc.getList` POST
 * over a keep-alive agent, ipernity's bytes passed on, and one pino line per
 * request carrying the request id and `upstreamMs`, as the server's line
 * does. No permission check, no parameter check, no encryption, no CSRF, no
 * helmet, no error pages. `GET /connect/callback?frob=` makes a session (its
 * token from auth.getToken), so the bench can give the floor its visitors.
 * On PORT, with REDIS_URL, IPERNITY_API_URL, IPERNITY_API_KEY and IPERNITY_API_SECRET.
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

const app = express();
app.set('etag', false);
app.use(requestLine(logger));
app.use(session({ secret: 'floor-secret', store: new RedisStore({ client, prefix: 'floor-gateway:', disableTouch: true }), resave: false, saveUninitialized: false, cookie: { httpOnly: true, sameSite: 'lax', maxAge: 3_600_000 } }));
app.get('/connect/callback', async function callback(req, res) {
  const answer = JSON.parse((await signedCall('auth.getToken', { frob: String(req.query.frob) })).body.toString('utf8'));
  req.session.token = answer.auth.token;
  req.session.userId = answer.auth.user.user_id;
  req.session.save((error) => res.status(error ? 503 : 204).end());
});
app.get('/api/ipernity/doc.getList', async function gateway(req, res) {
  if (!req.session.token) {
    res.status(401).end();
    return;
  }
  const asked = performance.now();
  const answer = await signedCall('doc.getList', { ...req.query, auth_token: req.session.token });
  res.locals.upstreamMs = performance.now() - asked;
  res.status(answer.status).type('json').set('Cache-Control', 'no-store').end(answer.body);
});
// listens once Redis is connected, so no request meets a store that is not there yet
client.connect().then(() =>
  serve(app, () => {
    logger.flush();
    client.destroy();
  }),
);
