/** Single jest config for unit specs (beside the code) and e2e/contract suites (test/). */
const aliases = [
  'common',
  'config',
  'bucket-store',
  'limiter',
  'estimator',
  'openai-proxy',
  'health',
];

module.exports = {
  testEnvironment: 'node',
  rootDir: '.',
  roots: ['<rootDir>/apps', '<rootDir>/libs', '<rootDir>/test'],
  testRegex: '.*\\.(spec|e2e-spec)\\.ts$',
  moduleFileExtensions: ['js', 'json', 'ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.json' }],
  },
  moduleNameMapper: Object.fromEntries(
    aliases.flatMap((lib) => [
      [`^@tokenguard/${lib}$`, `<rootDir>/libs/${lib}/src`],
      [`^@tokenguard/${lib}/(.*)$`, `<rootDir>/libs/${lib}/src/$1`],
    ]),
  ),
  testTimeout: 30000,
};
