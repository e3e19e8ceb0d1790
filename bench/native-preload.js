'use strict';
/**
 * Preloaded (`-r`) into server processes that run on another Node than the
 * one node_modules was built for: `require('better-sqlite3')` resolves to the
 * copy compiled for this Node (bench/node.js), named by BENCH_BETTER_SQLITE3.
 */
const Module = require('node:module');

const copy = process.env.BENCH_BETTER_SQLITE3;
if (copy) {
  const resolve = Module._resolveFilename;
  Module._resolveFilename = function resolveBetterSqlite3(request, ...rest) {
    return resolve.call(this, request === 'better-sqlite3' ? copy : request, ...rest);
  };
}
