'use strict';
/**
 * What each HTTP client costs in memory: a process that makes 50 form POSTs
 * to a loopback server with one of them, then reports its RSS and heap.
 *
 *   for c in http fetch undici; do node --expose-gc bench/transport-memory.js $c; done
 *
 * http: node:http with a keep-alive Agent (what IpernityClient uses);
 * fetch: Node's global fetch; undici: the undici package's request and Agent.
 */
const http = require('node:http');

const which = process.argv[2] ?? 'http';
const server = http.createServer((_req, res) => res.end('{"api":{"status":"ok"}}'));

/** One POST with the chosen client, its answer read to the end. */
async function post(url, state) {
  if (which === 'fetch') return (await fetch(url, { method: 'POST', body: 'a=b' })).text();
  if (which === 'undici') {
    state.undici ??= require('undici');
    state.agent ??= new state.undici.Agent({ connections: 128 });
    return (await state.undici.request(url, { method: 'POST', body: 'a=b', dispatcher: state.agent })).body.text();
  }
  state.agent ??= new http.Agent({ keepAlive: true });
  return new Promise((resolve, reject) => {
    const request = http.request(url, { method: 'POST', agent: state.agent }, (response) => {
      response.resume();
      response.on('end', resolve);
    });
    request.on('error', reject);
    request.end('a=b');
  });
}

server.listen(0, '127.0.0.1', async () => {
  const url = `http://127.0.0.1:${server.address().port}/`;
  const state = {};
  for (let i = 0; i < 50; i += 1) await post(url, state);
  global.gc?.();
  global.gc?.();
  setTimeout(() => {
    const { rss, heapUsed } = process.memoryUsage();
    console.log(`${which}: rss ${(rss / 1048576).toFixed(1)} MiB, heap used ${(heapUsed / 1048576).toFixed(2)} MiB`);
    process.exit(0);
  }, 200);
});
