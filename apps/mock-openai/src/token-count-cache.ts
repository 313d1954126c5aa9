import { Inject, Injectable, OnApplicationBootstrap } from '@nestjs/common';
import type { ChatMessageInput, ResponseInputItem } from '@tokenguard/estimator';
import {
  countChatPrompt,
  countResponseInput,
  countText,
  warmUpTokenizers,
} from './exact-token-count';
import { MOCK_OPTIONS, MockOpenAIOptions } from './mock-options';

// Bounds: entries per map, and the longest key worth keeping (≤ ~16 MiB per map).
const MAX_ENTRIES = 1024;
const MAX_KEY_CHARS = 16 * 1024;

/**
 * Prompt token counts, counted as OpenAI does by the gateway's own estimator (per-message
 * overhead, names, reply priming, per-model encoding), so tests can compare the mock's
 * `usage` with the gateway's estimate. Memoised: a benchmark sends the same prompt over
 * and over, and a BPE tokenizer call costs far more than the rest of the mock's work.
 * Only exact counts are kept, so that a count bounded once (a pathological input) is not
 * served for ever.
 */
@Injectable()
export class TokenCountCache implements OnApplicationBootstrap {
  private readonly chat = new Map<string, number>();
  private readonly texts = new Map<string, number>();
  private readonly responses = new Map<string, number>();

  constructor(@Inject(MOCK_OPTIONS) private readonly options: MockOpenAIOptions) {}

  onApplicationBootstrap(): void {
    if (this.options.warmUp) warmUpTokenizers();
  }

  chatPrompt(
    model: string,
    messages: readonly ChatMessageInput[],
    tools: unknown,
    functions: unknown,
  ): number {
    const toolList = Array.isArray(tools) ? (tools as unknown[]) : undefined;
    const functionList = Array.isArray(functions) ? (functions as unknown[]) : undefined;
    const key = JSON.stringify([model, messages, toolList ?? null, functionList ?? null]);
    const hit = this.chat.get(key);
    if (hit !== undefined) return hit;
    // Only the keys that are there: an explicit `tools: undefined` must not count as tools.
    const count = countChatPrompt({
      model,
      messages,
      ...(toolList && { tools: toolList }),
      ...(functionList && { functions: functionList }),
    });
    if (count.exact) remember(this.chat, key, count.tokens);
    return count.tokens;
  }

  /** Input tokens of a Responses API request (instructions, input items, tools). */
  responseInput(
    model: string,
    input: string | readonly ResponseInputItem[] | null,
    instructions: string | null,
    tools: readonly unknown[] | null,
  ): number {
    const key = JSON.stringify([model, input, instructions, tools]);
    const hit = this.responses.get(key);
    if (hit !== undefined) return hit;
    const count = countResponseInput({ model, input, instructions, tools });
    if (count.exact) remember(this.responses, key, count.tokens);
    return count.tokens;
  }

  text(text: string, model: string): number {
    const key = `${model}\u0000${text}`;
    const hit = this.texts.get(key);
    if (hit !== undefined) return hit;
    const count = countText(text, model);
    if (count.exact) remember(this.texts, key, count.tokens);
    return count.tokens;
  }
}

function remember(map: Map<string, number>, key: string, tokens: number): void {
  if (key.length > MAX_KEY_CHARS) return;
  if (map.size >= MAX_ENTRIES) map.clear();
  map.set(key, tokens);
}
