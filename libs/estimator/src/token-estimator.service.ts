import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import {
  completionOutputAllowance,
  countCompletionPromptTokens,
  countEmbeddingInputTokens,
  countResponseInputTokens,
  responseOutputAllowance,
} from './endpoint-counters';
import type {
  CompletionEstimateInput,
  EmbeddingEstimateInput,
  ResponseEstimateInput,
} from './endpoint-inputs';
import { encodingForModel } from './encoding-for-model';
import { ESTIMATOR_OPTIONS, type EstimatorOptions } from './estimator.options';
import type { ChatEstimateInput, TokenCount, TokenEstimate } from './estimator.types';
import { outputAllowance } from './output-allowance';
import { TokenCounter } from './token-counter';

/** Estimates what a request may cost before it is sent: prompt tokens plus output allowance. */
@Injectable()
export class TokenEstimatorService implements OnModuleInit {
  private readonly counter: TokenCounter;
  private readonly defaultMaxOutputTokens: number;

  constructor(@Inject(ESTIMATOR_OPTIONS) private readonly options: EstimatorOptions) {
    const fallback = options.defaultMaxOutputTokens;
    if (!Number.isInteger(fallback) || fallback < 0) {
      throw new RangeError(
        `defaultMaxOutputTokens must be an integer >= 0, got ${String(fallback)}`,
      );
    }
    this.defaultMaxOutputTokens = fallback;
    this.counter = new TokenCounter({ engine: options.engine, limits: options.limits });
  }

  onModuleInit(): void {
    const warmUp = this.options.warmUp ?? true;
    if (warmUp === true) this.counter.warmUp();
    else if (warmUp !== false) this.counter.warmUp(warmUp);
  }

  /** Synchronous and bounded: a few milliseconds at most, whatever the input. */
  estimateChat(input: ChatEstimateInput): TokenEstimate {
    const prompt = this.counter.countChatPrompt(input);
    const maxOutputTokens = outputAllowance(input, this.defaultMaxOutputTokens);
    return {
      model: input.model,
      encoding: encodingForModel(input.model),
      promptTokens: prompt.tokens,
      maxOutputTokens,
      totalTokens: prompt.tokens + maxOutputTokens,
      exact: prompt.exact,
    };
  }

  /**
   * Legacy `POST /v1/completions`: the prompt's tokens (strings counted, token arrays by
   * length, summed over a batch) plus `max_tokens` (default 16) for each of the
   * max(n, best_of) completions of each prompt.
   */
  estimateCompletion(input: CompletionEstimateInput): TokenEstimate {
    const prompt = countCompletionPromptTokens(input, this.counter);
    return estimate(input.model, prompt, completionOutputAllowance(input, prompt.prompts));
  }

  /** `POST /v1/embeddings`: input tokens only; nothing is generated. */
  estimateEmbedding(input: EmbeddingEstimateInput): TokenEstimate {
    return estimate(input.model, countEmbeddingInputTokens(input, this.counter), 0);
  }

  /**
   * `POST /v1/responses`: instructions, input items and tools by the chat rules (see
   * response-input-counter.ts) plus `max_output_tokens`, else the configured default.
   */
  estimateResponse(input: ResponseEstimateInput): TokenEstimate {
    const prompt = countResponseInputTokens(input, this.counter);
    return estimate(
      input.model,
      prompt,
      responseOutputAllowance(input, this.defaultMaxOutputTokens),
    );
  }

  /** Tokens in one text for `model`, with the service's engine and limits. */
  countText(text: string, model: string): { tokens: number; exact: boolean } {
    return this.counter.countText(text, model);
  }
}

function estimate(model: string, prompt: TokenCount, maxOutputTokens: number): TokenEstimate {
  return {
    model,
    encoding: encodingForModel(model),
    promptTokens: prompt.tokens,
    maxOutputTokens,
    totalTokens: prompt.tokens + maxOutputTokens,
    exact: prompt.exact,
  };
}
