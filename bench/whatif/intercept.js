'use strict';
/** Replaces what `require(name)` answers in the server process (used by the what-if preloads). */
const Module = require('node:module');

function intercept(name, replace) {
  const load = Module._load;
  let replaced;
  Module._load = function interceptedLoad(request, parent, isMain) {
    const real = load.call(this, request, parent, isMain);
    if (request !== name) return real;
    replaced ??= replace(real);
    return replaced;
  };
}

module.exports = { intercept };
