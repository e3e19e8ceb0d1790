'use strict';
/**
 * What if: helmet's headers computed once and set from a list, instead of
 * helmet's eleven middlewares per request (the CSP is fixed by the
 * configuration, so every response gets the same headers).
 */
const { intercept } = require('./intercept');

intercept('helmet', (real) => {
  const helmet = real.default ?? real;
  function staticHelmet(options) {
    const middleware = helmet(options);
    const headers = [];
    const removed = [];
    const fake = { setHeader: (name, value) => headers.push([name, value]), removeHeader: (name) => removed.push(name), getHeader: () => undefined };
    middleware({ headers: {} }, fake, () => undefined);
    return function securityHeaders(_req, res, next) {
      for (const [name, value] of headers) res.setHeader(name, value);
      next();
    };
  }
  return Object.assign(staticHelmet, real, { default: staticHelmet });
});
