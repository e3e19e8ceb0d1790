'use strict';
/**
 * A floor for POST /connect: bare Express 5 doing only what starting a flow
 * must do, the plainest way. helmet with its defaults, one pino line per
 * request, the form parsed (express.urlencoded), its token checked against
 * the CSRF cookie (HMAC-SHA256, compared in constant time), the attempt (a
 * random nonce, the permissions, where to return) sealed into a cookie with
 * AES-256-GCM, and a 303 to the authorization page's signed link (md5, as
 * ipernity signs). No session, no Origin or Fetch Metadata check, no
 * permission parsing, no error pages. On PORT; `GET /csrf` answers a CSRF
 * cookie and, as its body, the form's token for it.
 */
const { createCipheriv, createHmac, randomBytes, timingSafeEqual } = require('node:crypto');
const express = require('express');
const helmet = require('helmet');
const pino = require('pino');
const { parse: parseCookies } = require('cookie');
const { serve } = require('./serve');
const { requestLine } = require('./upstream');
const { sign } = require('../../dist/ipernity/signature');

const logger = pino({ timestamp: pino.stdTimeFunctions.isoTime }, pino.destination({ dest: 1, sync: false }));
const csrfSecret = randomBytes(32);
const sealKey = randomBytes(32);
const apiKey = 'floor-api-key';
const apiSecret = 'floor-api-secret';
const tokenFor = (value) => createHmac('sha256', csrfSecret).update(value).digest();

function seal(text) {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', sealKey, iv);
  const sealed = Buffer.concat([cipher.update(text, 'utf8'), cipher.final()]);
  return `${iv.toString('base64url')}.${sealed.toString('base64url')}.${cipher.getAuthTag().toString('base64url')}`;
}

const app = express();
app.set('etag', false);
app.use(requestLine(logger));
app.use(helmet());
app.get('/csrf', function csrf(_req, res) {
  const value = randomBytes(32).toString('base64url');
  res.cookie('csrf', value, { httpOnly: true, sameSite: 'lax' }).send(tokenFor(value).toString('base64url'));
});
app.post('/connect', express.urlencoded({ extended: false }), function startFlow(req, res) {
  const value = parseCookies(req.headers.cookie ?? '').csrf;
  const given = Buffer.from(String(req.body._csrf ?? ''), 'base64url');
  const expected = value && tokenFor(value);
  if (!expected || given.length !== expected.length || !timingSafeEqual(given, expected)) {
    res.status(403).send('bad token');
    return;
  }
  const attempt = { nonce: randomBytes(32).toString('base64url'), permissions: { doc: String(req.body.perm_doc) }, returnTo: String(req.body.return_to), startedAt: Date.now() };
  res.cookie('attempts', seal(JSON.stringify([attempt])), { httpOnly: true, sameSite: 'lax', maxAge: 600_000 });
  const params = { api_key: apiKey, perm_doc: attempt.permissions.doc };
  res.redirect(303, `https://www.ipernity.com/apps/authorize?${new URLSearchParams({ ...params, api_sig: sign(params, apiSecret) })}`);
});
serve(app, () => logger.flush());
