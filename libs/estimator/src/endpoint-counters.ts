import { encodingForModel } from './encoding-for-model';
import type {
  CompletionEstimateInput,
  CompletionPromptInput,
  EmbeddingPromptInput,
  ResponseEstimateInput,
  ResponsePromptInput,
} from './endpoint-inputs';
import type { TokenCount } from './estimator.types';
import { ItemTally } from './item-tally';
import { PromptTally } from './prompt-tally';
import { tallyResponseInput } from './response-input-counter';
import { tallyTextOrTokens } from './text-or-tokens-counter';
import { TokenCounter } from './token-counter';
import { WorkBudget } from './work-budget';

/** Engine policy `auto` and the default work limits, like `countChatPromptTokens`. */
const defaultCounter = new TokenCounter();

/** A fresh tally for one request: the counter's engine policy, a fresh budget of its limits. */
function tallyFor(model: string, counter: TokenCounter): ItemTally {
  const budget = new WorkBudget(counter.limits);
  return new ItemTally(
    new PromptTally(model, encodingForModel(model), counter.policy, budget),
    budget,
  );
}

/** Prompt tokens of a completions request, and how many prompts it holds. */
export interface CompletionPromptCount extends TokenCount {
  /** Strings or token arrays in `prompt`; each gets its own `n` (or `best_of`) completions. */
  readonly prompts: number;
}

/**
 * Prompt tokens of a legacy completions request: the tokens of each string, the length of
 * each token array, summed (no per-prompt overhead). `counter` sets the engine and work
 * limits (default: `auto`, `DEFAULT_ESTIMATOR_LIMITS`); bounded like every count here.
 */
export function countCompletionPromptTokens(
  input: CompletionPromptInput,
  counter: TokenCounter = defaultCounter,
): CompletionPromptCount {
  const tally = tallyFor(input.model, counter);
  const prompts = tallyTextOrTokens(input.prompt, tally);
  return { ...tally.result(), prompts };
}

/** Input tokens of an embeddings request: counted as a completions prompt is. */
export function countEmbeddingInputTokens(
  input: EmbeddingPromptInput,
  counter: TokenCounter = defaultCounter,
): TokenCount {
  const tally = tallyFor(input.model, counter);
  tallyTextOrTokens(input.input, tally);
  return tally.result();
}

/**
 * Input tokens of a Responses API request (`instructions`, `input`, `tools`), by the chat
 * rules item for item; see response-input-counter.ts.
 */
export function countResponseInputTokens(
  input: ResponsePromptInput,
  counter: TokenCounter = defaultCounter,
): TokenCount {
  const tally = tallyFor(input.model, counter);
  tallyResponseInput(input, tally);
  return tally.result();
}

/** OpenAI's default `max_tokens` for `POST /v1/completions`. */
export const COMPLETIONS_DEFAULT_MAX_TOKENS = 16;

/**
 * Output allowance of a completions request: `max_tokens` (default 16) for each completion
 * generated, that is max(n, best_of) per prompt, for every prompt of a batch (at least one).
 * Values that are not finite numbers >= 0 are ignored, as in `outputAllowance`.
 */
export function completionOutputAllowance(
  input: Pick<CompletionEstimateInput, 'max_tokens' | 'n' | 'best_of'>,
  prompts: number,
): number {
  const perCompletion = wholeTokens(input.max_tokens) ?? COMPLETIONS_DEFAULT_MAX_TOKENS;
  const n = atLeastOne(input.n);
  const bestOf =
    input.best_of === null || input.best_of === undefined ? n : atLeastOne(input.best_of);
  return perCompletion * Math.max(n, bestOf) * Math.max(1, prompts);
}

/** Output allowance of a Responses API request: `max_output_tokens`, else the default. */
export function responseOutputAllowance(
  input: Pick<ResponseEstimateInput, 'max_output_tokens'>,
  defaultMaxOutputTokens: number,
): number {
  return wholeTokens(input.max_output_tokens) ?? defaultMaxOutputTokens;
}

function wholeTokens(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0
    ? Math.floor(value)
    : undefined;
}

function atLeastOne(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) && value > 1 ? Math.floor(value) : 1;
}
