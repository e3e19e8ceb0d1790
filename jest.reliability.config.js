/** The reliability suite (load, faults, hostile input): `npm run test:reliability`, also run by CI. */
const base = require('./jest.config');

module.exports = {
  ...base,
  testMatch: ['<rootDir>/test/reliability/**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
  testTimeout: 300000,
  maxWorkers: 1,
};
