'use strict';
/** What if: no per-request log line at all (an upper bound on what request logging costs). */
const { intercept } = require('./intercept');

intercept('pino-http', (real) => {
  function pinoHttp(opts) {
    return function noRequestLog(req, res, next) {
      req.id = opts.genReqId(req, res);
      req.log = opts.logger;
      next();
    };
  }
  return { ...real, pinoHttp, default: pinoHttp };
});
