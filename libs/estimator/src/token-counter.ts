import { countTextBounded, type EnginePolicy } from './bounded-text-counter';
import { tallyChatPrompt } from './chat-prompt-counter';
import { ENCODING_NAMES, encodingForModel, type EncodingName } from './encoding-for-model';
import type { ChatPromptInput, TokenCount } from './estimator.types';
import { ItemTally } from './item-tally';
import { PromptTally } from './prompt-tally';
import { getTokenizerEngine } from './tokenizer-engines';
import { warmUpBuiltinCounter } from './warm-up';
import { WorkBudget, resolveLimits, type EstimatorLimits } from './work-budget';

export interface TokenCounterOptions {
  readonly engine?: EnginePolicy;
  readonly limits?: Partial<EstimatorLimits>;
}

/**
 * Counts text and chat prompts with one engine policy and one set of work limits. Every call
 * gets a fresh budget, so each stays within the limits on its own. Stateless apart from the
 * process-wide tokenizer instances, so one counter can serve any number of requests.
 */
export class TokenCounter {
  readonly policy: EnginePolicy;
  readonly limits: EstimatorLimits;

  constructor(options: TokenCounterOptions = {}) {
    this.policy = options.engine ?? 'auto';
    this.limits = resolveLimits(options.limits);
  }

  /** Tokens in `text` for `model`'s encoding: exact, or a safe upper bound. */
  countText(text: string, model: string): TokenCount {
    if (typeof text !== 'string') return { tokens: 0, exact: true };
    return countTextBounded(
      text,
      encodingForModel(model),
      this.policy,
      new WorkBudget(this.limits),
    );
  }

  /** Prompt tokens of a chat request, chat overhead and tool definitions included. */
  countChatPrompt(input: ChatPromptInput): TokenCount {
    const budget = new WorkBudget(this.limits);
    const tally = new ItemTally(
      new PromptTally(input.model, encodingForModel(input.model), this.policy, budget),
      budget,
    );
    tallyChatPrompt(input, tally);
    return tally.result();
  }

  /**
   * Loads `encodings` (default: both) for this policy now, so that no request stalls while
   * a vocabulary loads. (`gpt-tokenizer` still loads tiktoken lazily for text containing
   * U+FEFF/U+0085.)
   */
  warmUp(encodings: readonly EncodingName[] = ENCODING_NAMES): void {
    for (const encoding of encodings) {
      if (this.policy === 'auto') warmUpBuiltinCounter(encoding);
      else getTokenizerEngine(this.policy, encoding);
    }
  }
}

const defaultCounter = new TokenCounter();

/**
 * Tokens in `text` for `model`'s encoding (special-token markup counts as plain text). Exact
 * for ordinary text; for text too large or pathological to tokenize within the default work
 * limits, a safe upper bound. Pure: no state beyond the lazily loaded encodings.
 */
export function countTextTokens(text: string, model: string): number {
  return defaultCounter.countText(text, model).tokens;
}

/**
 * Prompt tokens of a chat request as OpenAI counts them (3 per message + role + content,
 * +1 per name, +3 reply priming), with documented approximations for non-text parts, tool
 * calls and tool definitions; `exact` is false when some text was bounded.
 */
export function countChatPromptTokens(input: ChatPromptInput): TokenCount {
  return defaultCounter.countChatPrompt(input);
}
