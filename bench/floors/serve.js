'use strict';
/** Serves an Express app for the benchmark: on loopback at PORT, kept-alive connections, stopped by SIGTERM. */
const http = require('node:http');

function serve(app, onStop = () => undefined) {
  const server = http.createServer(app);
  server.keepAliveTimeout = 65_000;
  server.listen(Number(process.env.PORT), '127.0.0.1');
  process.on('SIGTERM', () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
    onStop();
  });
  return server;
}

module.exports = { serve };
