'use strict';
/**
 * What if: the same request line written by a small middleware instead of
 * pino-http (no child logger per request, no per-request serializer wrapping,
 * one 'finish' listener).
 */
const { intercept } = require('./intercept');

intercept('pino-http', (real) => {
  function pinoHttp(opts) {
    const logger = opts.logger;
    const ignore = opts.autoLogging?.ignore;
    return function lightRequestLog(req, res, next) {
      const started = Date.now();
      const id = opts.genReqId(req, res);
      req.id = id;
      req.log = logger;
      if (!ignore?.(req)) {
        res.once('finish', () => {
          const level = opts.customLogLevel(req, res);
          logger[level]({ reqId: id, req: { id, method: req.method, url: req.url }, res: { statusCode: res.statusCode }, responseTime: Date.now() - started }, 'request completed');
        });
      }
      next();
    };
  }
  return { ...real, pinoHttp, default: pinoHttp };
});
