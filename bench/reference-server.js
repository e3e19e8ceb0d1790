'use strict';
/** The reference: a bare Express 5 "hello" on PORT, nothing else (no logging, no middleware). */
const http = require('node:http');
const express = require('express');

const app = express();
app.get('/', function hello(_req, res) {
  res.send('hello');
});
const server = http.createServer(app);
server.keepAliveTimeout = 65_000;
server.listen(Number(process.env.PORT), '127.0.0.1');
process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
