import type { EnginePolicy } from './bounded-text-counter';
import type { EstimatorLimits } from './work-budget';

export interface EstimatorOptions {
  /** Output allowance when a request sets neither max_completion_tokens nor max_tokens. */
  readonly defaultMaxOutputTokens: number;
  /** Tokenizer choice; `auto` (default) picks the faster engine per part of the text. */
  readonly engine?: EnginePolicy;
  /** Work limits per estimate; see `DEFAULT_ESTIMATOR_LIMITS`. */
  readonly limits?: Partial<EstimatorLimits>;
  /**
   * Load the encodings when the module starts (default true) rather than on the first
   * request, which would otherwise stall the event loop for a few hundred milliseconds.
   */
  readonly warmUp?: boolean;
}

/** Injection token for `EstimatorOptions`. */
export const ESTIMATOR_OPTIONS: unique symbol = Symbol('ESTIMATOR_OPTIONS');
