import { Injectable } from '@nestjs/common';
import { countText } from './exact-token-count';

/** Generated reply text, split into the pieces a stream sends one per event. */
export interface GeneratedReply {
  readonly text: string;
  readonly pieces: readonly string[];
  /** Token count of `text` for the model's encoding (what `usage` reports). */
  readonly tokens: number;
}

/**
 * Common English words that are one token each in the GPT encodings (cl100k, o200k,
 * p50k/r50k), with or without a leading space. The pre-tokenizer splits text at " word"
 * boundaries, so N of them joined by spaces are N tokens; the generator still counts the
 * result and corrects, so an encoding where that fails only costs a retry.
 */
const WORDS: readonly string[] = (
  'the quick brown fox jumps over a lazy dog while token guard keeps every budget in ' +
  'check and each team shares its limit with care so that no user can spend more than ' +
  'the plan allows today this mock server writes simple words one after another until ' +
  'the count is reached then it stops with a clean end'
).split(' ');

const MAX_CACHED = 512;

/**
 * Deterministic reply text of an exact token length. Cached per (model, length, variant):
 * a benchmark asks for the same few lengths over and over, so the hot path is a map lookup.
 */
@Injectable()
export class ReplyGenerator {
  private readonly cache = new Map<string, GeneratedReply>();

  /** `variant` shifts the word sequence so that the n choices of one request differ. */
  generate(model: string, tokens: number, variant = 0): GeneratedReply {
    const key = `${model}\u0000${tokens}\u0000${variant}`;
    const hit = this.cache.get(key);
    if (hit !== undefined) return hit;
    const { reply, exact } = this.build(model, tokens, variant);
    if (!exact) return reply; // never the case for these words; but never cache a bound
    if (this.cache.size >= MAX_CACHED) this.cache.clear();
    this.cache.set(key, reply);
    return reply;
  }

  private build(
    model: string,
    target: number,
    variant: number,
  ): { reply: GeneratedReply; exact: boolean } {
    if (target <= 0) return { reply: { text: '', pieces: [], tokens: 0 }, exact: true };
    let words = target;
    let pieces = makePieces(words, variant);
    let text = pieces.join('');
    let { tokens, exact } = countText(text, model);
    // Step by the error; converges in one step for the usual one-token-per-word case.
    for (let attempt = 0; attempt < 8 && tokens !== target; attempt++) {
      words = Math.max(1, words + (target - tokens));
      pieces = makePieces(words, variant);
      text = pieces.join('');
      ({ tokens, exact } = countText(text, model));
    }
    // Never report more than was asked for: trim until it fits.
    while (tokens > target && pieces.length > 1) {
      pieces = pieces.slice(0, -1);
      text = pieces.join('');
      ({ tokens, exact } = countText(text, model));
    }
    return { reply: { text, pieces, tokens }, exact };
  }
}

function makePieces(count: number, variant: number): string[] {
  const pieces = new Array<string>(count);
  const offset = (variant * 7) % WORDS.length;
  for (let i = 0; i < count; i++) {
    const word = WORDS[(offset + i) % WORDS.length];
    pieces[i] = i === 0 ? word : ` ${word}`;
  }
  return pieces;
}
