export * from './dto-instance';
export * from './openai-error';
export * from './openai-exception.filter';
export * from './openai-validation';
export * from './rate-limit-duration';
export * from './request-telemetry';
export * from './build-info';
