'use strict';
/**
 * What if: the SQLite store does not write on every read. express-session
 * calls `store.touch` at the end of each request that loaded a session and did
 * not change it; the Redis store already skips it (`disableTouch`), while
 * SqliteSessionStore runs an UPDATE each time.
 */
const Module = require('node:module');

const load = Module._load;
Module._load = function interceptedLoad(request, parent, isMain) {
  const real = load.call(this, request, parent, isMain);
  const Store = real?.SqliteSessionStore;
  if (Store && !Store.prototype.touch.skipped) {
    const skip = function touch(_sid, _sess, callback) {
      callback?.();
    };
    skip.skipped = true;
    Store.prototype.touch = skip;
  }
  return real;
};
