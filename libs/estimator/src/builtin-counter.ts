import { bytePairCount } from './byte-pair-merge';
import type { EncodingName } from './encoding-for-model';
import { astralWork } from './code-point-classes';
import { HotPieceCache, PieceCountCache } from './piece-count-cache';
import {
  ASCII_UNDECIDED,
  PIECE_END,
  PIECE_TOO_LONG,
  asciiPieceEnd,
  asciiPieceHash,
  type PieceEnd,
} from './pre-tokenizer';
import { TextCountCache } from './text-count-cache';
import { HASH_PRIME, HASH_SEED, finishHash, loadVocabulary, type Vocabulary } from './vocabulary';
import { CLOCK_EVERY_NS, MEASURE_RESERVE_NS_PER_CHAR, type WorkBudget } from './work-budget';

/*
 * The estimator's own tokenizer: pieces found by hand (pre-tokenizer.ts), each looked up in
 * the vocabulary as a whole (most pieces of ordinary text are one token), else in a cache of
 * earlier merges, else merged (byte-pair-merge.ts). Counts are tiktoken's, exactly.
 *
 * Work is bounded as it goes. A piece longer than `maxSpanBytes` counts as its UTF-8 length
 * (every token is at least one byte, and pieces are tokenized independently, so the sum stays
 * an upper bound). The cost of the work done is booked against the budget in worst-case
 * nanoseconds; once the guaranteed part is used up the clock decides, read every
 * `CLOCK_EVERY_NS` of booked work. When the time is up, the rest of the text counts as its
 * UTF-8 length.
 */

/*
 * Worst-case costs, in nanoseconds, booked against the budget as the work is done. Measured on
 * the development machine (2-core AMD EPYC VM, Node 20) on the slowest text found (random
 * letters, random BMP characters, random CJK, one-character pieces, all with cold caches)
 * and rounded up by half again or more; test/bench/estimator.bench.ts prints how far each
 * stays below them.
 */
/** Each piece: the loop, a hash-table lookup or two. */
export const PIECE_WORST_NS = 200;
/** Each UTF-16 code unit of an ASCII piece (found by the ASCII fast path). */
export const ASCII_UNIT_WORST_NS = 10;
/** Each UTF-16 code unit of any other piece (class lookups, UTF-8 encoding). */
export const OTHER_UNIT_WORST_NS = 40;
/** Each astral code point classified for the first time (a few regex tests). */
export const ASTRAL_CLASSIFY_WORST_NS = 4_000;
/** Each byte of a piece merged (neither a token nor cached): rank lookups. */
export const MERGE_WORST_NS_PER_BYTE = 600;
/** A piece this many times longer than `maxSpanBytes` ends the reading of its text. */
export const GIVE_UP_SPAN_FACTOR = 16;
/** ...but never less than this many characters. */
const MIN_GIVE_UP_CHARS = 4_096;
/** Text being bounded is measured in slices of this many characters (see `boundRest`). */
const MEASURE_SLICE_CHARS = 65_536;
/** Texts this short are measured by a loop rather than by Buffer.byteLength. */
const SHORT_MEASURE_CHARS = 32;

/** Where counts accumulate (a tally); `exact` turns false when anything was bounded. */
export interface TokenSink {
  tokens: number;
  exact: boolean;
}

/** The tokenizer of one encoding: vocabulary, merge cache, and whole-text cache. */
export class EncodingCounter {
  readonly pieceEnd: PieceEnd;
  readonly hot = new HotPieceCache();
  readonly pieces = new PieceCountCache();
  readonly texts = new TextCountCache();
  private scratch = new Uint8Array(4096);

  constructor(readonly vocab: Vocabulary) {
    this.pieceEnd = PIECE_END[vocab.encoding];
  }

  /** Tokens of `text` into `sink`: exact while `budget` lasts, an upper bound past it. */
  count(text: string, budget: WorkBudget, sink: TokenSink): void {
    const len = text.length;
    if (len === 0) return;
    if (budget.timeLeftNs <= 0) {
      sink.tokens += boundRest(text, 0, budget);
      sink.exact = false;
      return;
    }
    const cacheable = TextCountCache.accepts(len);
    if (cacheable) {
      const cached = this.texts.get(text);
      if (cached >= 0) {
        sink.tokens += cached;
        return;
      }
    }
    const before = sink.tokens;
    const wasExact = sink.exact;
    sink.exact = true;
    this.countPieces(text, budget, sink);
    if (cacheable && sink.exact) this.texts.set(text, sink.tokens - before);
    sink.exact &&= wasExact;
  }

  /** The piece loop of `count`. */
  private countPieces(text: string, budget: WorkBudget, sink: TokenSink): void {
    const len = text.length;
    const scanEnd = Math.min(len, Math.max(0, Math.floor(budget.scanChars)));
    const maxSpanBytes = budget.maxSpanBytes;
    const giveUp = Math.max(MIN_GIVE_UP_CHARS, GIVE_UP_SPAN_FACTOR * maxSpanBytes);
    const pieceEnd = this.pieceEnd;
    const o200k = this.vocab.encoding === 'o200k_base';
    const vocab = this.vocab;
    const cache = this.pieces;
    const hot = this.hot;
    const maxEncoded = Math.min(maxSpanBytes, giveUp);
    if (this.scratch.length < 3 * maxEncoded + 4) {
      this.scratch = new Uint8Array(3 * maxEncoded + 4);
    }
    const buf = this.scratch;
    // Plain locals for everything the loop touches per character: imported constants compile
    // to property loads on the module object.
    const hashSeed = HASH_SEED;
    const hashPrime = HASH_PRIME;
    const tooLong = PIECE_TOO_LONG;
    const undecided = ASCII_UNDECIDED;
    const pieceNs = PIECE_WORST_NS;
    const asciiUnitNs = ASCII_UNIT_WORST_NS;
    const otherUnitNs = OTHER_UNIT_WORST_NS;
    const astralNs = ASTRAL_CLASSIFY_WORST_NS;
    const checkNs = CLOCK_EVERY_NS;
    const mergeNsPerByte = MERGE_WORST_NS_PER_BYTE;
    const hotMaxBytes = HotPieceCache.MAX_PIECE_BYTES;
    const pieceHash = asciiPieceHash;

    // Time kept back for measuring whatever of this text is not tokenized (see work-budget.ts):
    // noticeable only for texts of megabytes.
    const reserveNs = len * MEASURE_RESERVE_NS_PER_CHAR;
    let tokens = 0;
    let exact = true;
    let p = 0;
    let booked = 0; // worst-case ns of work since the budget was last told
    let astralSeen = astralWork.classified;
    while (p < len) {
      const lim = Math.min(scanEnd, p + giveUp);
      let end = asciiPieceEnd(text, p, len, lim, o200k);
      if (end !== undecided && end - p <= hotMaxBytes && end - p <= maxSpanBytes) {
        // The common case: a short ASCII piece (its bytes are its code units), most often
        // found in the hot cache without being copied anywhere.
        const n = end - p;
        booked += pieceNs + n * asciiUnitNs;
        if (n === 1)
          tokens++; // every byte is a token
        else {
          const h = finishHash(pieceHash[0]);
          let count = hot.getAscii(text, p, n, h);
          if (count < 0) {
            for (let k = 0; k < n; k++) buf[k] = text.charCodeAt(p + k);
            if (vocab.rank(buf, 0, n, h) >= 0) count = 1;
            else {
              count = cache.get(buf, n, h);
              if (count < 0) {
                count = bytePairCount(vocab, buf, n);
                cache.set(buf, n, h, count);
                booked += n * mergeNsPerByte;
              }
            }
            hot.set(buf, n, h, count);
          }
          tokens += count;
        }
        p = end;
        if (booked >= checkNs) {
          const more = budget.spendWork(booked, reserveNs);
          booked = 0;
          if (!more) break;
        }
        continue;
      }
      if (end === undecided) {
        end = pieceEnd(text, p, len, lim);
        if (astralWork.classified !== astralSeen) {
          booked += (astralWork.classified - astralSeen) * astralNs;
          astralSeen = astralWork.classified;
        }
        if (end === tooLong) {
          booked += (lim - p) * otherUnitNs; // read up to the limit, twice at most
          break;
        }
        booked += (end - p) * otherUnitNs;
      } else booked += (end - p) * asciiUnitNs;
      booked += pieceNs;
      const chars = end - p;
      if (chars > maxEncoded) {
        // At least one byte per character: too long to merge. Bounded by its UTF-8 length.
        tokens += utf8Length(text, p, end);
        exact = false;
      } else {
        // UTF-8 bytes of the piece, hashed as they are written.
        let n = 0;
        let h = hashSeed;
        for (let i = p; i < end; i++) {
          const c = text.charCodeAt(i);
          if (c < 0x80) {
            buf[n++] = c;
            h = Math.imul(h ^ c, hashPrime);
            continue;
          }
          let cp = c;
          if (c >= 0xd800 && c <= 0xdfff) {
            const d = i + 1 < end ? text.charCodeAt(i + 1) : 0;
            if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) {
              cp = ((c - 0xd800) << 10) + (d - 0xdc00) + 0x10000;
              i++;
            } else cp = 0xfffd; // a lone surrogate is sent as U+FFFD
          }
          const start = n;
          if (cp < 0x800) {
            buf[n++] = 0xc0 | (cp >>> 6);
            buf[n++] = 0x80 | (cp & 0x3f);
          } else if (cp < 0x10000) {
            buf[n++] = 0xe0 | (cp >>> 12);
            buf[n++] = 0x80 | ((cp >>> 6) & 0x3f);
            buf[n++] = 0x80 | (cp & 0x3f);
          } else {
            buf[n++] = 0xf0 | (cp >>> 18);
            buf[n++] = 0x80 | ((cp >>> 12) & 0x3f);
            buf[n++] = 0x80 | ((cp >>> 6) & 0x3f);
            buf[n++] = 0x80 | (cp & 0x3f);
          }
          for (let k = start; k < n; k++) h = Math.imul(h ^ buf[k], hashPrime);
        }
        if (n > maxSpanBytes) {
          tokens += n;
          exact = false;
        } else if (n === 1) {
          tokens++; // every byte is a token
        } else {
          h = finishHash(h);
          const short = n <= hotMaxBytes;
          let count = short ? hot.get(buf, n, h) : -1;
          if (count < 0) {
            if (vocab.rank(buf, 0, n, h) >= 0) count = 1;
            else {
              count = cache.get(buf, n, h);
              if (count < 0) {
                count = bytePairCount(vocab, buf, n);
                cache.set(buf, n, h, count);
                booked += n * mergeNsPerByte;
              }
            }
            if (short) hot.set(buf, n, h, count);
          }
          tokens += count;
        }
      }
      p = end;
      if (booked >= checkNs) {
        const more = budget.spendWork(booked, reserveNs);
        booked = 0;
        if (!more) break;
      }
    }
    budget.scanChars -= p;
    if (booked > 0) budget.spendWork(booked);
    if (p < len) {
      tokens += boundRest(text, p, budget);
      exact = false;
    }
    sink.tokens += tokens;
    if (!exact) sink.exact = false;
  }
}

/** UTF-8 length of `text[from, to)`; a lone surrogate is 3 bytes (sent as U+FFFD). */
export function utf8Length(text: string, from: number, to: number): number {
  let bytes = 0;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) bytes++;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < to) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        bytes += 4;
        i++;
      } else bytes += 3;
    } else bytes += 3;
  }
  return bytes;
}

/**
 * Upper bound on the tokens of `text[from, len)`: its UTF-8 length, measured in slices while
 * the budget allows (`WorkBudget.mayMeasure`), then 3 bytes per UTF-16 unit (a surrogate pair
 * is 4 bytes for 2 units).
 */
export function boundRest(text: string, from: number, budget: WorkBudget): number {
  const len = text.length;
  if (len - from <= SHORT_MEASURE_CHARS) {
    // A call to Buffer.byteLength costs more than a loop over a few characters.
    return budget.mayMeasure(len - from) ? utf8Length(text, from, len) : 3 * (len - from);
  }
  let bytes = 0;
  let at = from;
  while (at < len) {
    let end = Math.min(len, at + MEASURE_SLICE_CHARS);
    // A slice must not split a surrogate pair: the halves would count 3 bytes each.
    if (end < len && isHighSurrogate(text.charCodeAt(end - 1))) end--;
    if (!budget.mayMeasure(end - at)) break;
    bytes += Buffer.byteLength(at === 0 && end === len ? text : text.slice(at, end), 'utf8');
    at = end;
  }
  return bytes + 3 * (len - at);
}

const isHighSurrogate = (c: number) => c >= 0xd800 && c <= 0xdbff;

const counters = new Map<EncodingName, EncodingCounter>();

/** The process-wide counter of an encoding, if its vocabulary is loaded. */
export function loadedEncodingCounter(encoding: EncodingName): EncodingCounter | undefined {
  return counters.get(encoding);
}

/**
 * The process-wide counter of an encoding, loading its vocabulary on first use (o200k_base
 * about 50 ms and 4 MB, cl100k_base half that).
 */
export function getEncodingCounter(encoding: EncodingName): EncodingCounter {
  let counter = counters.get(encoding);
  if (counter === undefined) {
    counter = new EncodingCounter(loadVocabulary(encoding));
    counters.set(encoding, counter);
  }
  return counter;
}

/**
 * The counter of `encoding` for one estimate. Loading a vocabulary is a one-off cost of the
 * process, not of this input: the budget's deadline moves back by the time it took.
 */
export function encodingCounterFor(encoding: EncodingName, budget: WorkBudget): EncodingCounter {
  const loaded = counters.get(encoding);
  if (loaded !== undefined) return loaded;
  const started = budget.now();
  const counter = getEncodingCounter(encoding);
  budget.postpone(budget.now() - started);
  return counter;
}
