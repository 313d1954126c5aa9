import type { ItemTally } from './item-tally';

/*
 * How a completions prompt or an embeddings input is counted: each string by its tokens in
 * the model's encoding (no per-item overhead: these endpoints bill the text alone), each
 * token-id array by its length. Both endpoints take one value or an array of values; a flat
 * array of numbers is one tokenized prompt.
 */

/**
 * Adds the tokens of `value` to `tally` and returns how many prompts it holds (the number of
 * strings or token arrays; 0 when there is nothing). Malformed items are not rejected here
 * (the request's validation does that); they count as their compact JSON, so the estimate
 * still errs high.
 */
export function tallyTextOrTokens(value: unknown, tally: ItemTally): number {
  if (value === null || value === undefined) return 0;
  if (typeof value === 'string') {
    tally.addText(value);
    return 1;
  }
  if (!Array.isArray(value)) {
    tally.addJson(value);
    return 1;
  }
  const items = value as readonly unknown[];
  if (items.length === 0) return 0;
  let loneTokens = 0;
  let prompts = 0;
  for (const item of items) {
    if (typeof item === 'number') {
      loneTokens++;
    } else if (typeof item === 'string') {
      tally.addText(item);
      prompts++;
    } else if (Array.isArray(item)) {
      // A token-id array: one token per element.
      tally.addFixed((item as readonly unknown[]).length);
      prompts++;
    } else {
      tally.addJson(item);
      prompts++;
    }
  }
  tally.addFixed(loneTokens);
  // Numbers at the top level form one tokenized prompt together.
  return loneTokens > 0 ? prompts + 1 : prompts;
}
