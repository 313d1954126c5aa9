import { countTextBounded, type EnginePolicy } from './bounded-text-counter';
import { encodingCounterFor, type EncodingCounter, type TokenSink } from './builtin-counter';
import { compactJson } from './compact-json';
import type { EncodingName } from './encoding-for-model';
import type { TokenCount } from './estimator.types';
import type { WorkBudget } from './work-budget';

/** Longest compact JSON rendered for one value (tool definition, unknown part); the rest is bounded. */
export const MAX_JSON_CHARS = 65_536;

// Roles repeat in every message; their counts are cached so they cost no tokenizer call.
const CACHED_ROLES: ReadonlySet<string> = new Set([
  'system',
  'developer',
  'user',
  'assistant',
  'tool',
  'function',
]);
const roleTokenCache: Readonly<Record<EncodingName, Map<string, number>>> = {
  o200k_base: new Map(),
  cl100k_base: new Map(),
};

/** Adds up the tokens of one prompt, all of its text sharing one work budget. */
export class PromptTally implements TokenSink {
  tokens = 0;
  exact = true;
  /** The built-in counter (policy `auto`), resolved at the first text. */
  private counter: EncodingCounter | undefined;

  constructor(
    readonly model: string,
    readonly encoding: EncodingName,
    private readonly policy: EnginePolicy,
    private readonly budget: WorkBudget,
  ) {}

  addText(text: string): void {
    if (this.policy === 'auto') {
      this.counter ??= encodingCounterFor(this.encoding, this.budget);
      this.counter.count(text, this.budget, this);
      return;
    }
    const count = countTextBounded(text, this.encoding, this.policy, this.budget);
    this.tokens += count.tokens;
    if (!count.exact) this.exact = false;
  }

  addRole(role: string): void {
    if (!CACHED_ROLES.has(role)) {
      this.addText(role);
      return;
    }
    const cache = roleTokenCache[this.encoding];
    const cached = cache.get(role);
    if (cached !== undefined) {
      this.tokens += cached;
      return;
    }
    const count = countTextBounded(role, this.encoding, this.policy, this.budget);
    if (count.exact) cache.set(role, count.tokens);
    this.tokens += count.tokens;
    if (!count.exact) this.exact = false;
  }

  /** Tokens of the compact JSON rendering of `value`. */
  addJson(value: unknown): void {
    const json = compactJson(value, MAX_JSON_CHARS);
    this.addText(json.text);
    if (json.overflowBytes > 0) {
      this.tokens += json.overflowBytes;
      this.exact = false;
    }
  }

  addFixed(tokens: number): void {
    this.tokens += tokens;
  }

  result(): TokenCount {
    return { tokens: this.tokens, exact: this.exact };
  }
}
