'use strict';
/**
 * A floor for a browser's first view of the warning page: bare Express 5
 * doing only what that page must do, the plainest way. helmet with its
 * defaults, one pino line per request (request id, method, path, status,
 * time), and a page of the same size as the warning page, sent with
 * `res.send`. No CSRF token: a browser sending Fetch Metadata needs none.
 * No router, no session, no template engine, no redaction. On PORT.
 */
const { randomUUID } = require('node:crypto');
const express = require('express');
const helmet = require('helmet');
const pino = require('pino');
const { serve } = require('./serve');
const { page } = require('./page');

const logger = pino({ timestamp: pino.stdTimeFunctions.isoTime }, pino.destination({ dest: 1, sync: false }));

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
app.get('/', function warningPage(_req, res) {
  res.set('Cache-Control', 'no-store').type('html').send(page);
});
serve(app, () => logger.flush());
