import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import { encodingForModel } from './encoding-for-model';
import { ESTIMATOR_OPTIONS, type EstimatorOptions } from './estimator.options';
import type { ChatEstimateInput, TokenEstimate } from './estimator.types';
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
    if (this.options.warmUp !== false) this.counter.warmUp();
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

  /** Tokens in one text for `model`, with the service's engine and limits. */
  countText(text: string, model: string): { tokens: number; exact: boolean } {
    return this.counter.countText(text, model);
  }
}
