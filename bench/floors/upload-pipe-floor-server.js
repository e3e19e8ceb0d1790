'use strict';
/**
 * A floor for the gateway upload rows (bench/gateway-upload.js): a bare
 * node:http proxy that pipes each request's body, as it comes, into one
 * http.request to the simulator's upload endpoint, and the answer back.
 * Nothing else: no session, no CSRF, no parsing, no signing (the bench's
 * client sends a body already signed with the visitor's token, the bytes
 * the gateway would send). Like the gateway it sends upstream without a
 * Content-Length (chunked), on a connection of its own per upload.
 * On PORT, with UPSTREAM_URL (`<simulator>/api/upload.file/json`).
 */
const http = require('node:http');
const { serve } = require('./serve');

const upstreamUrl = process.env.UPSTREAM_URL;

serve(function pipeUpload(req, res) {
  const upstream = http.request(upstreamUrl, { method: 'POST', agent: false, headers: { 'content-type': req.headers['content-type'], accept: 'application/json' } }, (answer) => {
    res.writeHead(answer.statusCode ?? 502, { 'content-type': answer.headers['content-type'] ?? 'application/json' });
    answer.pipe(res);
  });
  upstream.on('error', () => res.destroy());
  req.pipe(upstream);
});
