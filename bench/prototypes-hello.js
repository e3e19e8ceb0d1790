'use strict';
/**
 * Bare Express 5 "hello", served by Node's plain server or by one whose
 * requests are made from the app's prototypes (the prototype construction of
 * src/http-server.ts, forced on whatever the Node), for the decision in
 * docs/decisions/app-prototypes-on-node-20-only.md:
 *
 *   npm run build
 *   for kind in plain prototypes; do
 *     taskset -c 1 node bench/prototypes-hello.js $kind 4555 & sleep 1
 *     taskset -c 0 npx autocannon -c 50 -d 4 http://127.0.0.1:4555/; kill %1
 *   done
 */
const http = require('node:http');
const express = require('express');

const app = express();
app.disable('x-powered-by');
app.set('etag', false);
app.get('/', (_req, res) => res.send('hello'));

/** A server whose request and response constructors have the app's prototypes. */
function prototypeServer() {
  function AppRequest(socket) {
    http.IncomingMessage.call(this, socket);
  }
  AppRequest.prototype = app.request;
  function AppResponse(req, options) {
    http.ServerResponse.call(this, req, options);
  }
  AppResponse.prototype = app.response;
  return http.createServer({ IncomingMessage: AppRequest, ServerResponse: AppResponse }, app);
}

const server = process.argv[2] === 'prototypes' ? prototypeServer() : http.createServer(app);
server.listen(Number(process.argv[3] ?? 4555), '127.0.0.1');
