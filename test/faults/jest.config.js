/**
 * Fault suite and soak (npm run test:faults, npm run test:soak): real processes, minutes not
 * seconds, so kept out of `npm test` (the root config only picks up *.spec.ts / *.e2e-spec.ts).
 * The soak script narrows this to *.soak.ts with --testRegex.
 */
const base = require('../../jest.config.js');

module.exports = {
  ...base,
  rootDir: '../..',
  roots: ['<rootDir>/test/faults'],
  testRegex: '.*\\.fault\\.ts$',
  // The built gateway is what runs: rebuilt first when the sources are newer than dist/.
  globalSetup: '<rootDir>/test/faults/support/ensure-build.ts',
  // One scenario at a time: timings (pauses, timeouts, the breaker) must not fight for the CPU.
  maxWorkers: 1,
  testTimeout: 180_000,
};
