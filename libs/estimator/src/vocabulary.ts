import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { EncodingName } from './encoding-for-model';

/*
 * A BPE vocabulary in four typed arrays: every token's bytes back to back, where each one
 * starts, and an open-addressing hash table from bytes to rank. About 4 MB for o200k_base
 * (200k tokens, 1.4 MB of bytes) and 2 MB for cl100k_base, against tens of MB for a
 * `Map<string, number>` or tiktoken's WASM heap.
 *
 * The ranks come from tiktoken's own encoder files (`tiktoken/encoders/<name>.json`), read as
 * bytes: `bpe_ranks` is "! <first rank> <base64 token> <base64 token> …", ranks consecutive.
 */

const FNV_OFFSET = 0x811c9dc5 | 0;
const FNV_PRIME = 0x01000193;

/** Finishes an FNV-1a state so that the low bits (the table index) depend on every byte. */
export function finishHash(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x45d9f3b);
  return h ^ (h >>> 16);
}

/** Hash of `bytes[start, end)`, as the vocabulary and the piece cache use it. */
export function hashBytes(bytes: Uint8Array, start: number, end: number): number {
  let h = FNV_OFFSET;
  for (let i = start; i < end; i++) h = Math.imul(h ^ bytes[i], FNV_PRIME);
  return finishHash(h);
}

/** Low bits of a table entry: rank + 1 (every vocabulary here has fewer than 2^18 - 1 tokens). */
const RANK_BITS = 18;
const RANK_MASK = (1 << RANK_BITS) - 1;
/** High bits of a table entry: the tag, the top 14 bits of the token's hash. */
const TAG_SHIFT = RANK_BITS;

/** Pairs of ranks remembered by `mergedRank`: 2^16 (768 KB). */
const MERGE_BITS = 16;
const MERGE_SHIFT = 32 - MERGE_BITS;

export const HASH_SEED = FNV_OFFSET;
export const HASH_PRIME = FNV_PRIME;

export class Vocabulary {
  private readonly mask: number;

  constructor(
    readonly encoding: EncodingName,
    /** Tokens (ranks 0…size-1). */
    readonly size: number,
    /** Every token's bytes, in rank order. */
    private readonly bytes: Uint8Array,
    /** Token r is `bytes[offsets[r], offsets[r + 1])`. */
    private readonly offsets: Uint32Array,
    /**
     * Per slot: the top bits of the token's hash (its tag) above rank + 1; 0 for an empty
     * slot. A power of two long.
     */
    private readonly table: Uint32Array,
    /** Rank of every two-byte token by its bytes (`b0 << 8 | b1`), -1 where there is none. */
    private readonly pairs: Int32Array,
  ) {
    this.mask = table.length - 1;
    for (let byte = 0; byte < 256; byte++) {
      this.byteRanks[byte] = this.rankOf(Uint8Array.of(byte), 0, 1);
    }
  }

  /** Rank of each one-byte token. */
  private readonly byteRanks = new Int32Array(256);
  /** (left rank, right rank, merged rank or -1) triples; left -1: empty. */
  private readonly merges = new Int32Array(3 << MERGE_BITS).fill(-1);

  /** Rank of the token `piece[start, end)` whose `hashBytes` is `hash`, or -1. */
  rank(piece: Uint8Array, start: number, end: number, hash: number): number {
    const { table, offsets, bytes, mask } = this;
    const n = end - start;
    if (n === 2) return this.pairs[(piece[start] << 8) | piece[start + 1]];
    const tag = hash >>> TAG_SHIFT;
    for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
      const entry = table[slot];
      if (entry === 0) return -1;
      // Most slots that are not the piece are told apart by the tag, without touching the
      // token bytes (two more cache misses).
      if (entry >>> RANK_BITS !== tag) continue;
      const rank = (entry & RANK_MASK) - 1;
      const from = offsets[rank];
      if (offsets[rank + 1] - from !== n) continue;
      let k = 0;
      while (k < n && bytes[from + k] === piece[start + k]) k++;
      if (k === n) return rank;
    }
  }

  /** Rank of `piece[start, end)`, hashing it first. */
  rankOf(piece: Uint8Array, start: number, end: number): number {
    return this.rank(piece, start, end, hashBytes(piece, start, end));
  }

  /** Rank of the one-byte token `byte` (every byte is a token). */
  byteRank(byte: number): number {
    return this.byteRanks[byte];
  }

  /**
   * Rank of the token made of tokens `left` and `right` side by side, or -1; their bytes are
   * `piece[start, end)`. Remembered per pair of ranks (direct-mapped, overwritten on a
   * collision), so that the merges that recur in text cost no hashing of bytes.
   */
  mergedRank(left: number, right: number, piece: Uint8Array, start: number, end: number): number {
    // Two bytes: a direct table, cheaper than the cache.
    if (end - start === 2) return this.pairs[(piece[start] << 8) | piece[start + 1]];
    const merges = this.merges;
    const slot =
      ((Math.imul(left, 0x9e3779b1) ^ Math.imul(right + 1, 0x85ebca6b)) >>> MERGE_SHIFT) * 3;
    if (merges[slot] === left && merges[slot + 1] === right) return merges[slot + 2];
    const rank = this.rank(piece, start, end, hashBytes(piece, start, end));
    merges[slot] = left;
    merges[slot + 1] = right;
    merges[slot + 2] = rank;
    return rank;
  }

  /** Bytes held (the estimator's resident share for this encoding). */
  get residentBytes(): number {
    return (
      this.bytes.byteLength +
      this.offsets.byteLength +
      this.table.byteLength +
      this.pairs.byteLength +
      this.merges.byteLength
    );
  }
}

const lazyRequire = createRequire(__filename);

/** Path of tiktoken's encoder file for `encoding` (a file its package exports). */
export function encoderFilePath(encoding: EncodingName): string {
  return lazyRequire.resolve(`tiktoken/encoders/${encoding}.json`);
}

const BASE64 = new Int8Array(256).fill(-1);
'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
  .split('')
  .forEach((ch, i) => (BASE64[ch.charCodeAt(0)] = i));

const SPACE = 0x20;
const QUOTE = 0x22;
const EQUALS = 0x3d;

/**
 * Builds a vocabulary from an encoder file's bytes a slice at a time, so that a caller may
 * spread the work over several event-loop turns.
 */
export class VocabularyBuilder {
  private pos: number;
  private readonly end: number;
  private rank: number;
  private readonly bytes: Uint8Array;
  private byteCount = 0;
  private readonly offsets: Uint32Array;
  private readonly table: Uint32Array;
  private readonly pairs = new Int32Array(65_536).fill(-1);
  private readonly size: number;

  constructor(
    readonly encoding: EncodingName,
    private readonly file: Uint8Array,
  ) {
    const key = Buffer.from('"bpe_ranks":"');
    const at = Buffer.from(file.buffer, file.byteOffset, file.byteLength).indexOf(key);
    if (at < 0) throw new Error(`${encoding}: no bpe_ranks in the encoder file`);
    let pos = at + key.length;
    let end = pos;
    while (end < file.length && file[end] !== QUOTE) {
      if (file[end] === 0x5c) throw new Error(`${encoding}: unexpected escape in bpe_ranks`);
      end++;
    }
    // "! <first rank> ": the first field names the format, the second is the first rank.
    while (pos < end && file[pos] !== SPACE) pos++;
    pos++;
    let first = 0;
    while (pos < end && file[pos] !== SPACE) first = first * 10 + (file[pos++] - 0x30);
    pos++;
    if (first !== 0) throw new Error(`${encoding}: ranks do not start at 0`);
    let tokens = 0;
    for (let i = pos; i < end; i++) if (file[i] === SPACE) tokens++;
    if (end > pos) tokens++;
    this.pos = pos;
    this.end = end;
    this.rank = 0;
    this.size = tokens;
    // Base64 is 4 characters per 3 bytes: an upper bound on the decoded size.
    this.bytes = new Uint8Array(Math.ceil(((end - pos) * 3) / 4));
    this.offsets = new Uint32Array(tokens + 1);
    // At most 3/8 full: short probe sequences.
    let slots = 1;
    while (slots < tokens * 2.5) slots *= 2;
    this.table = new Uint32Array(slots);
    if (tokens >= RANK_MASK) throw new Error(`${encoding}: too many tokens`);
  }

  get done(): boolean {
    return this.rank >= this.size;
  }

  /** Decodes and indexes up to `maxTokens` more tokens; true when every token is in. */
  step(maxTokens: number): boolean {
    const { file, bytes, offsets, table } = this;
    const mask = table.length - 1;
    const stop = Math.min(this.size, this.rank + maxTokens);
    let pos = this.pos;
    let out = this.byteCount;
    for (let rank = this.rank; rank < stop; rank++) {
      offsets[rank] = out;
      let bits = 0;
      let nbits = 0;
      let h = FNV_OFFSET;
      while (pos < this.end) {
        const c = file[pos];
        if (c === SPACE) break;
        pos++;
        if (c === EQUALS) continue;
        const v = BASE64[c];
        if (v < 0) throw new Error(`${this.encoding}: bad base64 in bpe_ranks`);
        bits = (bits << 6) | v;
        nbits += 6;
        if (nbits >= 8) {
          nbits -= 8;
          const byte = (bits >>> nbits) & 0xff;
          bytes[out++] = byte;
          h = Math.imul(h ^ byte, FNV_PRIME);
        }
      }
      pos++; // the space
      const hash = finishHash(h);
      let slot = hash & mask;
      while (table[slot] !== 0) slot = (slot + 1) & mask;
      table[slot] = (((hash >>> TAG_SHIFT) << RANK_BITS) | (rank + 1)) >>> 0;
      if (out - offsets[rank] === 2) this.pairs[(bytes[out - 2] << 8) | bytes[out - 1]] = rank;
    }
    this.pos = pos;
    this.byteCount = out;
    this.rank = stop;
    if (stop === this.size) offsets[stop] = out;
    return this.done;
  }

  result(): Vocabulary {
    if (!this.done) throw new Error(`${this.encoding}: vocabulary not complete`);
    return new Vocabulary(
      this.encoding,
      this.size,
      this.bytes.slice(0, this.byteCount),
      this.offsets,
      this.table,
      this.pairs,
    );
  }
}

/** Reads and indexes an encoding's vocabulary now (tens of milliseconds). */
export function loadVocabulary(encoding: EncodingName): Vocabulary {
  const builder = new VocabularyBuilder(encoding, readFileSync(encoderFilePath(encoding)));
  builder.step(Number.MAX_SAFE_INTEGER);
  return builder.result();
}
