import { countTextBounded, type EnginePolicy } from './bounded-text-counter';
import { tallyChatPrompt } from './chat-prompt-counter';
import { ENCODING_NAMES, encodingForModel } from './encoding-for-model';
import type { ChatPromptInput, TokenCount } from './estimator.types';
import { PromptTally } from './prompt-tally';
import { getTokenizerEngine, type TokenizerEngineName } from './tokenizer-engines';
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
    const tally = new PromptTally(
      input.model,
      encodingForModel(input.model),
      this.policy,
      new WorkBudget(this.limits),
    );
    tallyChatPrompt(input, tally);
    return tally.result();
  }

  /**
   * Loads (and warms) the encodings this policy routinely uses, so that the first request
   * does not stall for hundreds of milliseconds. (`gpt-tokenizer` still loads tiktoken lazily
   * for text containing U+FEFF/U+0085.)
   */
  warmUp(): void {
    const engines: TokenizerEngineName[] =
      this.policy === 'auto' ? ['gpt-tokenizer', 'tiktoken'] : [this.policy];
    for (const engine of engines) {
      for (const encoding of ENCODING_NAMES) getTokenizerEngine(engine, encoding);
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
