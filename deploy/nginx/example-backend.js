'use strict';
/**
 * A stand-in for the site behind deploy/nginx/site.conf: answers every request with JSON saying
 * which visitor nginx says it is serving (the X-Ipernity-* headers the forward-auth sub-request
 * gave) and every header it received. Plain Node, no dependencies:
 *   PORT=8080 HOST=127.0.0.1 node deploy/nginx/example-backend.js
 * A real backend reads the same three headers, and must be reachable only through the proxy:
 * whoever can send it requests directly can send it any identity (docs/forward-auth.md).
 */
const http = require('node:http');

const PORT = Number(process.env.PORT ?? 8080);
const HOST = process.env.HOST ?? '0.0.0.0';

/** A header's value, percent-decoded; undefined when absent or not valid percent-encoding. */
function decoded(value) {
  if (typeof value !== 'string' || value === '') return undefined;
  try {
    return decodeURIComponent(value);
  } catch {
    return undefined;
  }
}

/** The connected visitor the proxy vouches for, or null when it sent no identity (a page anyone may see). */
function visitorOf(headers) {
  const userId = decoded(headers['x-ipernity-user-id']);
  if (userId === undefined) return null;
  const permissions = {};
  for (const pair of String(headers['x-ipernity-permissions'] ?? '').split(',')) {
    const [item, level] = pair.split('=');
    if (item && level) permissions[item] = level;
  }
  return { userId, username: decoded(headers['x-ipernity-username']) ?? null, permissions };
}

const server = http.createServer((req, res) => {
  let bodyBytes = 0;
  req.on('data', (chunk) => {
    bodyBytes += chunk.length;
  });
  req.on('end', () => {
    const visitor = visitorOf(req.headers);
    const body = JSON.stringify({
      served: visitor ? `${visitor.username ?? visitor.userId} (ipernity user ${visitor.userId})` : 'a visitor nginx vouches for no identity of',
      visitor,
      method: req.method,
      url: req.url,
      bodyBytes,
      headers: req.headers,
    });
    res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(body) });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
});

server.listen(PORT, HOST, () => {
  const { address, port } = server.address();
  process.stdout.write(`${JSON.stringify({ event: 'listening', url: `http://${address.includes(':') ? `[${address}]` : address}:${port}` })}\n`);
});

// as a container's PID 1, node gets no default handler for these: stop at once, in-flight answers are tiny
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  });
}
