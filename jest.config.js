/** Single jest config for unit specs (beside the code) and e2e/contract suites (test/). */
const aliases = [
  'common',
  'config',
  'bucket-store',
  'limiter',
  'estimator',
  'openai-proxy',
  'health',
  'metrics',
  'sync',
  'auth',
];

module.exports = {
  testEnvironment: 'node',
  // One worker per core, not Jest's default of one fewer: most suites wait on sockets, timers and
  // child processes rather than the CPU, and on two cores one worker ran them all in series
  // (4m44s in CI; 2m35s with two workers, run three times without a failure).
  maxWorkers: '100%',
  // Jest 30 "soft-deletes" globals a test file left behind by wrapping them in accessors whose
  // setter re-enters itself: a later file in the same worker that sets one (the Sentry SDK's
  // per-version carrier, '10.75.3') dies with "Maximum call stack size exceeded".
  testEnvironmentOptions: { globalsCleanup: 'off' },
  rootDir: '.',
  roots: ['<rootDir>/apps', '<rootDir>/libs', '<rootDir>/test'],
  testRegex: '.*\\.(spec|e2e-spec)\\.ts$',
  moduleFileExtensions: ['js', 'json', 'ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.json' }],
    // ESM-only dependencies that Node 20.19 loads with require(esm) but Jest (before Node
    // 24.9) cannot: compiled to CommonJS for the test run only.
    '^.+/node_modules/content-disposition/.+\\.js$': [
      'ts-jest',
      { tsconfig: { allowJs: true, module: 'commonjs', isolatedModules: true } },
    ],
  },
  transformIgnorePatterns: ['/node_modules/(?!content-disposition/)'],
  moduleNameMapper: Object.fromEntries(
    aliases.flatMap((lib) => [
      [`^@tokenguard/${lib}$`, `<rootDir>/libs/${lib}/src`],
      [`^@tokenguard/${lib}/(.*)$`, `<rootDir>/libs/${lib}/src/$1`],
    ]),
  ),
  testTimeout: 30000,
};
