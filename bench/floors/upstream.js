'use strict';
/**
 * What the floors that call ipernity share, the plainest way: one signed
 * POST over a keep-alive agent (IPERNITY_API_URL, IPERNITY_API_KEY,
 * IPERNITY_API_SECRET), and the pino request line the replayed rows read
 * (request id, responseTime, and `upstreamMs` from `res.locals`), as the
 * server's own line carries them.
 */
const http = require('node:http');
const { randomUUID } = require('node:crypto');
const { sign } = require('../../dist/ipernity/signature');

const agent = new http.Agent({ keepAlive: true, maxSockets: 128 });
const apiUrl = process.env.IPERNITY_API_URL;
const apiKey = process.env.IPERNITY_API_KEY;
const apiSecret = process.env.IPERNITY_API_SECRET;

/** One signed call: ipernity's status and body, as they came. */
function signedCall(method, params) {
  const signed = { ...params, api_key: apiKey };
  const body = new URLSearchParams({ ...signed, api_sig: sign(signed, apiSecret, method) }).toString();
  return new Promise((resolve, reject) => {
    const request = http.request(`${apiUrl}/${method}/json`, { method: 'POST', agent, headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) } }, (response) => {
      const chunks = [];
      response.on('data', (chunk) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode, body: Buffer.concat(chunks) }));
      response.on('error', reject);
    });
    request.on('error', reject);
    request.end(body);
  });
}

/** The request line, one per request, written when the response closes. */
function requestLine(logger) {
  return function requestLine(req, res, next) {
    const id = req.headers['x-request-id'] ?? randomUUID();
    const started = performance.now();
    res.setHeader('X-Request-Id', id);
    res.once('close', () => logger.info({ reqId: id, req: { method: req.method, url: req.originalUrl }, res: { statusCode: res.statusCode }, responseTime: Math.round((performance.now() - started) * 100) / 100, upstreamMs: res.locals.upstreamMs && Math.round(res.locals.upstreamMs * 100) / 100 }, 'request completed'));
    next();
  };
}

module.exports = { signedCall, requestLine };
