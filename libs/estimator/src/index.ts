export { encodingForModel, type EncodingName } from './encoding-for-model';
export type {
  ChatEstimateInput,
  ChatMessageInput,
  ChatPromptInput,
  TokenCount,
  TokenEstimate,
} from './estimator.types';
export { countChatPromptTokens, countTextTokens, TokenCounter } from './token-counter';
export type {
  CompletionEstimateInput,
  CompletionPromptInput,
  EmbeddingEstimateInput,
  EmbeddingPromptInput,
  ResponseEstimateInput,
  ResponseInputItem,
  ResponsePromptInput,
  TextOrTokens,
} from './endpoint-inputs';
export {
  COMPLETIONS_DEFAULT_MAX_TOKENS,
  completionOutputAllowance,
  countCompletionPromptTokens,
  countEmbeddingInputTokens,
  countResponseInputTokens,
  responseOutputAllowance,
  type CompletionPromptCount,
} from './endpoint-counters';
export type { TokenCounterOptions } from './token-counter';
export type { EnginePolicy } from './bounded-text-counter';
export type { TokenizerEngineName } from './tokenizer-engines';
export { DEFAULT_ESTIMATOR_LIMITS, type EstimatorLimits } from './work-budget';
export { outputAllowance } from './output-allowance';
export {
  REPLY_PRIMING_TOKENS,
  TOKENS_PER_MESSAGE,
  TOKENS_PER_NAME,
  TOKENS_PER_TOOL_CALL,
  TOKENS_PER_TOOL_DEFINITION,
  TOOL_SECTION_TOKENS,
} from './chat-prompt-counter';
export {
  AUDIO_TOKENS_PER_SECOND,
  DEFAULT_IMAGE_ALLOWANCE,
  FILE_PART_TOKENS,
  imageAllowance,
} from './non-text-allowances';
export { ESTIMATOR_OPTIONS, type EstimatorOptions } from './estimator.options';
export { TokenEstimatorService } from './token-estimator.service';
export { EstimatorModule, type EstimatorModuleAsyncOptions } from './estimator.module';
