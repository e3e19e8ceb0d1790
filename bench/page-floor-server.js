'use strict';
/**
 * A floor for the warning page without a cookie: bare Express 5 doing only
 * what that page must do, the plainest way. helmet with its defaults, one
 * pino line per request (request id, method, path, status, time), a random
 * value in an HttpOnly cookie and its HMAC in a page of the same size as
 * the warning page, sent with `res.send`. No router, no session, no
 * template engine, no redaction. On PORT.
 */
const { createHmac, randomBytes, randomUUID } = require('node:crypto');
const express = require('express');
const helmet = require('helmet');
const pino = require('pino');
const { serve } = require('./serve');

const logger = pino({ timestamp: pino.stdTimeFunctions.isoTime }, pino.destination({ dest: 1, sync: false }));
const secret = Buffer.from('floor-secret-floor-secret-floor-secret');
// about the warning page's 1.6 KB of HTML, with the token in a hidden field
const before = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Connect</title></head><body><main>${'<p>What the site asks for, in words.</p>'.repeat(33)}<form method="post" action="/connect"><input type="hidden" name="_csrf" value="`;
const after = '"><button type="submit">Continue</button></form></main></body></html>';

const app = express();
app.set('etag', false);
app.use(function requestLine(req, res, next) {
  const id = randomUUID();
  const started = performance.now();
  res.setHeader('X-Request-Id', id);
  res.once('close', () => logger.info({ reqId: id, req: { method: req.method, url: req.originalUrl }, res: { statusCode: res.statusCode }, responseTime: performance.now() - started }, 'request completed'));
  next();
});
app.use(helmet());
app.get('/', function page(_req, res) {
  const value = randomBytes(32).toString('base64url');
  res.cookie('csrf', value, { httpOnly: true, sameSite: 'lax', path: '/' });
  const token = createHmac('sha256', secret).update(value).digest('base64url');
  res.set('Cache-Control', 'no-store').type('html').send(before + token + after);
});
serve(app, () => logger.flush());
