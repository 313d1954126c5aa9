export { startMockOpenAI, createMockOpenAIApp } from './mock-server';
export type { MockOpenAIServer, StartMockOpenAIOptions } from './mock-server';
export type { MockOpenAIOptions } from './mock-options';
export { DEFAULT_BEHAVIOUR } from './mock-behaviour';
export type { MockBehaviour } from './mock-behaviour';
export type { RecordedRequest } from './request-recorder';
export { MockOpenAIModule } from './mock-openai.module';
export { formatResetDuration } from './duration-format';
