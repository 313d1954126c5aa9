import type { EnginePolicy } from './bounded-text-counter';
import type { EncodingName } from './encoding-for-model';
import type { EstimatorLimits } from './work-budget';

export interface EstimatorOptions {
  /** Output allowance when a request sets neither max_completion_tokens nor max_tokens. */
  readonly defaultMaxOutputTokens: number;
  /**
   * Tokenizer choice: `auto` (default), the estimator's own counter; `tiktoken` or
   * `gpt-tokenizer`, the libraries (same counts, slower, larger; kept as references).
   */
  readonly engine?: EnginePolicy;
  /** Work limits per estimate; see `DEFAULT_ESTIMATOR_LIMITS`. */
  readonly limits?: Partial<EstimatorLimits>;
  /**
   * Encodings to load when the module starts: `true` (default) both, `false` none, or a list.
   * An encoding not loaded yet is loaded by the first request that needs it, which then
   * stalls the event loop for its loading time (built-in counter: about 40 ms for
   * o200k_base, 25 ms for cl100k_base; each takes 3-5 MB once loaded).
   */
  readonly warmUp?: boolean | readonly EncodingName[];
}

/** Injection token for `EstimatorOptions`. */
export const ESTIMATOR_OPTIONS: unique symbol = Symbol('ESTIMATOR_OPTIONS');
