import type { ChatEstimateInput } from './estimator.types';

/**
 * Output tokens to reserve: `max_completion_tokens`, else `max_tokens`, else the configured
 * default, for each of the `n` choices. (For reasoning models max_completion_tokens already
 * includes the reasoning tokens.) Values that are not finite numbers >= 0 are ignored.
 */
export function outputAllowance(
  input: Pick<ChatEstimateInput, 'max_tokens' | 'max_completion_tokens' | 'n'>,
  defaultMaxOutputTokens: number,
): number {
  const perChoice =
    wholeTokens(input.max_completion_tokens) ??
    wholeTokens(input.max_tokens) ??
    defaultMaxOutputTokens;
  const n = input.n;
  const choices = typeof n === 'number' && Number.isFinite(n) && n > 1 ? Math.floor(n) : 1;
  return perChoice * choices;
}

function wholeTokens(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0
    ? Math.floor(value)
    : undefined;
}
