import {
  type ChatPromptInput,
  countResponseInputTokens,
  type ResponsePromptInput,
  type TokenCount,
  TokenCounter,
} from '@tokenguard/estimator';

/**
 * The gateway's estimator, with a generous time budget. By default it gives each estimate
 * a few milliseconds of wall clock and past that counts text by its UTF-8 length (an upper
 * bound), which protects the gateway's event loop; but the mock stands in for OpenAI and
 * must report the true count even on a cold start or a loaded machine.
 */
const counter = new TokenCounter({ limits: { exactTimeMs: 250 } });

export function countText(text: string, model: string): TokenCount {
  return counter.countText(text, model);
}

export function countChatPrompt(input: ChatPromptInput): TokenCount {
  return counter.countChatPrompt(input);
}

/** Input tokens of a Responses API request, by the estimator's own rule. */
export function countResponseInput(input: ResponsePromptInput): TokenCount {
  return countResponseInputTokens(input, counter);
}

/** Loads every encoding now (about a second), so that no request pays for it. */
export function warmUpTokenizers(): void {
  counter.warmUp();
}
