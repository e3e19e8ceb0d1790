'use strict';
/**
 * What if: log lines gathered into 4 KB writes (and flushed at least every
 * second) instead of one write per line as soon as the previous finished.
 */
const { intercept } = require('./intercept');

intercept('pino', (real) => {
  const destination = real.destination;
  real.destination = function bufferedDestination(options) {
    const stream = destination({ ...options, minLength: 4096 });
    setInterval(() => stream.flush(), 1000).unref();
    return stream;
  };
  return real;
});
