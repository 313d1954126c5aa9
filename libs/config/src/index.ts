export * from './app-config';
export * from './app-config.module';
export { CONFIG_DEFAULTS, ConfigValidationError, loadAppConfig } from './env.validation';
export { parsePolicyFile, type PolicyFileBudget, type PolicyFileConfig } from './policy-file';
