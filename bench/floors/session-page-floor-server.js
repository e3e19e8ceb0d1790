'use strict';
/**
 * A floor for the warning page with a Redis session: bare Express 5 doing
 * only what that page must do for a connected visitor, the plainest way.
 * helmet with its defaults, one pino line per request, express-session
 * reading a Redis session (connect-redis, no touch), and the page floor's
 * 1.6 KB of HTML. No CSRF token, no template engine, no session check.
 * On PORT, with REDIS_URL; `GET /make` creates a session shaped like a
 * connected visitor's, `GET /` reads it and sends the page.
 */
const express = require('express');
const helmet = require('helmet');
const pino = require('pino');
const session = require('express-session');
const { createClient } = require('redis');
const { RedisStore } = require('connect-redis');
const { serve } = require('./serve');
const { page } = require('./page');
const { requestLine } = require('./upstream');

const logger = pino({ timestamp: pino.stdTimeFunctions.isoTime }, pino.destination({ dest: 1, sync: false }));
const client = createClient({ url: process.env.REDIS_URL });
client.connect();
const app = express();
app.set('etag', false);
app.use(requestLine(logger));
app.use(helmet());
app.use(session({ secret: 'floor-secret', store: new RedisStore({ client, prefix: 'floor:', disableTouch: true }), resave: false, saveUninitialized: false, cookie: { httpOnly: true, maxAge: 3_600_000 } }));
app.get('/make', function make(req, res) {
  // about the size of a connected session (a sealed token, permissions, a user)
  req.session.connection = { sealedToken: 'x'.repeat(200), permissions: { doc: 'read' }, user: { userId: '1', username: 'floor', realname: 'Floor' }, connectedAt: Date.now() };
  res.send('made');
});
app.get('/', function warningPage(req, res) {
  if (!req.session.connection) {
    res.status(404).send('no session');
    return;
  }
  res.set('Cache-Control', 'no-store').type('html').send(page);
});
serve(app, () => {
  client.destroy();
  logger.flush();
});
