'use strict';
/**
 * A floor for the session rows: bare Express 5 with express-session reading
 * a Redis session (connect-redis, no touch) and nothing else: no logging,
 * no headers, no template. On PORT, with REDIS_URL; `GET /make` creates a
 * session shaped like a connected visitor's, `GET /` reads it.
 */
const express = require('express');
const { serve } = require('./serve');
const session = require('express-session');
const { createClient } = require('redis');
const { RedisStore } = require('connect-redis');

const client = createClient({ url: process.env.REDIS_URL });
client.connect();
const app = express();
app.use(session({ secret: 'floor-secret', store: new RedisStore({ client, prefix: 'floor:', disableTouch: true }), resave: false, saveUninitialized: false, cookie: { httpOnly: true, maxAge: 3_600_000 } }));
app.get('/make', function make(req, res) {
  // about the size of a connected session (a sealed token, permissions, a user)
  req.session.connection = { sealedToken: 'x'.repeat(200), permissions: { doc: 'read' }, user: { userId: '1', username: 'floor', realname: 'Floor' }, connectedAt: Date.now() };
  res.send('made');
});
app.get('/', function hello(req, res) {
  res.send(req.session.connection ? 'hello' : 'none');
});
serve(app, () => client.destroy());
