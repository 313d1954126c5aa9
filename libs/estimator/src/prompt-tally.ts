import { countTextBounded, type EnginePolicy } from './bounded-text-counter';
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
const roleTokenCache = new Map<string, number>();

/** Adds up the tokens of one prompt, all of its text sharing one work budget. */
export class PromptTally {
  private tokens = 0;
  private exact = true;

  constructor(
    readonly model: string,
    readonly encoding: EncodingName,
    private readonly policy: EnginePolicy,
    private readonly budget: WorkBudget,
  ) {}

  addText(text: string): void {
    const count = countTextBounded(text, this.encoding, this.policy, this.budget);
    this.tokens += count.tokens;
    if (!count.exact) this.exact = false;
  }

  addRole(role: string): void {
    if (!CACHED_ROLES.has(role)) {
      this.addText(role);
      return;
    }
    const key = `${this.encoding}:${role}`;
    const cached = roleTokenCache.get(key);
    if (cached !== undefined) {
      this.tokens += cached;
      return;
    }
    const count = countTextBounded(role, this.encoding, this.policy, this.budget);
    if (count.exact) roleTokenCache.set(key, count.tokens);
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
