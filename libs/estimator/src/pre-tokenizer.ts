import {
  CP_LETTER,
  CP_LOWERISH,
  CP_NEWLINE,
  CP_NUMBER,
  CP_SPACE,
  CP_UPPERISH,
  CP_WIDE,
  classAt,
} from './code-point-classes';
import type { EncodingName } from './encoding-for-model';
import { HASH_PRIME, HASH_SEED } from './vocabulary';

/*
 * Pre-tokenization: tiktoken splits text into pieces with a regex and runs BPE on each piece
 * on its own. The functions below find the same pieces by hand, one at a time, for the two
 * patterns (as shipped in tiktoken's encoder files):
 *
 * o200k_base:
 *   A1 [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?
 *   A2 [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?
 *   A3 \p{N}{1,3}
 *   A4  ?[^\s\p{L}\p{N}]+[\r\n/]*
 *   A5 \s*[\r\n]+
 *   A6 \s+(?!\S)
 *   A7 \s+
 * cl100k_base:
 *   C1 (?i:'s|'t|'re|'ve|'m|'ll|'d)
 *   C2 [^\r\n\p{L}\p{N}]?\p{L}+
 *   C3 \p{N}{1,3}
 *   C4  ?[^\s\p{L}\p{N}]+[\r\n]*
 *   C5-C7 as A5-A7.
 *
 * The regex engine is a backtracking one: at each position the first alternative that can
 * match wins (not the longest), each alternative with its greedy quantifiers backtracking in
 * order. The code follows that order exactly; the comments say which backtracking step each
 * branch stands for. Matches are contiguous (every character is covered by some
 * alternative), so a piece always starts where the previous one ended.
 *
 * Writing it out by hand rather than running a JavaScript regex gains three things: no
 * regex call per piece (the hot path is a table lookup per character), an upper limit on how
 * far one call may read (a megabyte of one letter is one piece; the caller bounds it instead
 * of reading it all), and `\s` that means White_Space as in Rust (JavaScript's differs on
 * U+0085 and U+FEFF).
 */

/** Returned when the piece reaches the scan limit before its end is known. */
export const PIECE_TOO_LONG = -1;
const NO_MATCH = -2;

const APOSTROPHE = 0x27;
/** `[^\r\n\p{L}\p{N}]`: the optional one-character prefix of a word. */
const NOT_PREFIX = CP_LETTER | CP_NUMBER | CP_NEWLINE;
/** `[^\s\p{L}\p{N}]`: punctuation, symbols, marks and everything else. */
const NOT_PUNCT = CP_SPACE | CP_LETTER | CP_NUMBER;

const width = (k: number) => 1 + ((k & CP_WIDE) >>> 7);

/**
 * End of `(?i:'s|'t|'re|'ve|'m|'ll|'d)` at `q`, or `q` when there is none. Case-insensitive
 * as in Rust (Unicode simple case folding): `s` also matches U+017F LATIN SMALL LETTER LONG S.
 */
function contractionEnd(text: string, q: number, len: number): number {
  if (q + 1 >= len || text.charCodeAt(q) !== APOSTROPHE) return q;
  const c = text.charCodeAt(q + 1);
  const lower = c | 0x20;
  if (lower === 0x73 /* s */ || lower === 0x74 /* t */ || lower === 0x6d /* m */) return q + 2;
  if (lower === 0x64 /* d */ || c === 0x17f /* ſ */) return q + 2;
  if (q + 2 >= len) return q;
  const next = text.charCodeAt(q + 2) | 0x20;
  if ((lower === 0x72 /* r */ || lower === 0x76) /* v */ && next === 0x65 /* e */) return q + 3;
  if (lower === 0x6c /* l */ && next === 0x6c) return q + 3;
  return q;
}

/**
 * `(c | 0x20)` maps only A-Z onto a-z among the letters tested above, except that it also
 * maps some non-letters onto them: 0x53|0x20 is 's', fine, but e.g. 0x13 | 0x20 = 0x33 is not a
 * letter tested. The letters tested (s t m d r v e l) each have exactly two code units that
 * map onto them: the lower- and upper-case ASCII letter.
 */

/** A1 at `s` (after the prefix, if any): UPPERISH* LOWERISH+ contraction? */
function o200kA1(text: string, s: number, len: number, lim: number): number {
  let i = s;
  let afterLowerish = -1; // end of the last char of the UPPERISH run that is also LOWERISH
  while (i < lim) {
    const k = classAt(text, i, len);
    if ((k & CP_UPPERISH) === 0) break;
    i += width(k);
    if ((k & CP_LOWERISH) !== 0) afterLowerish = i;
  }
  if (i >= lim && lim < len) return PIECE_TOO_LONG;
  if (i < len) {
    const k = classAt(text, i, len);
    if ((k & CP_LOWERISH) !== 0) {
      // The whole UPPERISH run, then the LOWERISH run that follows it.
      i += width(k);
      while (i < lim) {
        const k2 = classAt(text, i, len);
        if ((k2 & CP_LOWERISH) === 0) break;
        i += width(k2);
      }
      if (i >= lim && lim < len) return PIECE_TOO_LONG;
      return contractionEnd(text, i, len);
    }
  }
  // Backtracking the UPPERISH run: the LOWERISH+ is its last char that is both (a one-char
  // run, since what follows it is neither).
  return afterLowerish >= 0 ? contractionEnd(text, afterLowerish, len) : NO_MATCH;
}

/** A2 at `s`: UPPERISH+ LOWERISH* contraction? */
function o200kA2(text: string, s: number, len: number, lim: number): number {
  let i = s;
  while (i < lim) {
    const k = classAt(text, i, len);
    if ((k & CP_UPPERISH) === 0) break;
    i += width(k);
  }
  if (i >= lim && lim < len) return PIECE_TOO_LONG;
  if (i === s) return NO_MATCH;
  while (i < lim) {
    const k = classAt(text, i, len);
    if ((k & CP_LOWERISH) === 0) break;
    i += width(k);
  }
  if (i >= lim && lim < len) return PIECE_TOO_LONG;
  return contractionEnd(text, i, len);
}

/** `\p{N}{1,3}` at `p`, known to hold a number. */
function numberEnd(text: string, p: number, len: number, k0: number): number {
  let i = p + width(k0);
  for (let n = 1; n < 3 && i < len; n++) {
    const k = classAt(text, i, len);
    if ((k & CP_NUMBER) === 0) break;
    i += width(k);
  }
  return i;
}

/** ` ?[^\s\p{L}\p{N}]+` then `[\r\n/]*` (o200k) or `[\r\n]*` (cl100k), or NO_MATCH. */
function punctEnd(
  text: string,
  p: number,
  len: number,
  lim: number,
  k0: number,
  slash: boolean,
): number {
  let i: number;
  if ((k0 & NOT_PUNCT) === 0) i = p;
  else if (text.charCodeAt(p) === 0x20 && p + 1 < len) {
    if ((classAt(text, p + 1, len) & NOT_PUNCT) !== 0) return NO_MATCH;
    i = p + 1;
  } else return NO_MATCH;
  while (i < lim) {
    const k = classAt(text, i, len);
    if ((k & NOT_PUNCT) !== 0) break;
    i += width(k);
  }
  while (i < lim) {
    const c = text.charCodeAt(i);
    if (c !== 0x0a && c !== 0x0d && !(slash && c === 0x2f)) break;
    i++;
  }
  if (i >= lim && lim < len) return PIECE_TOO_LONG;
  return i;
}

/** A5-A7 (C5-C7) at `p`, which is whitespace. */
function spaceEnd(text: string, p: number, len: number, lim: number): number {
  let i = p;
  let afterNewline = -1;
  while (i < lim) {
    const c = text.charCodeAt(i);
    // Every White_Space character is in the BMP.
    const k = classAt(text, i, len);
    if ((k & CP_SPACE) === 0) break;
    i++;
    if (c === 0x0a || c === 0x0d) afterNewline = i;
  }
  if (i >= lim && lim < len) return PIECE_TOO_LONG;
  // \s*[\r\n]+: the run backtracks to its last CR/LF.
  if (afterNewline >= 0) return afterNewline;
  // \s+(?!\S): the whole run at the end of the text, else all of it but the last char.
  if (i === len || i - p >= 2) return i === len ? i : i - 1;
  // \s+: one character.
  return i;
}

/**
 * End of the o200k_base piece that starts at `p` (< `len`). Reads no further than `lim`
 * (at most `len`, plus the few characters of a contraction): a piece that reaches `lim`
 * before `len` gives PIECE_TOO_LONG.
 */
export function o200kPieceEnd(text: string, p: number, len: number, lim: number): number {
  const k0 = classAt(text, p, len);
  const prefixed = (k0 & NOT_PREFIX) === 0 && p + width(k0) < len;
  const s = p + width(k0);
  let end: number;
  if (prefixed) {
    end = o200kA1(text, s, len, lim);
    if (end !== NO_MATCH) return end;
  }
  end = o200kA1(text, p, len, lim);
  if (end !== NO_MATCH) return end;
  if (prefixed) {
    end = o200kA2(text, s, len, lim);
    if (end !== NO_MATCH) return end;
  }
  end = o200kA2(text, p, len, lim);
  if (end !== NO_MATCH) return end;
  if ((k0 & CP_NUMBER) !== 0) return numberEnd(text, p, len, k0);
  end = punctEnd(text, p, len, lim, k0, true);
  if (end !== NO_MATCH) return end;
  return spaceEnd(text, p, len, lim);
}

/** End of the cl100k_base piece that starts at `p`; see `o200kPieceEnd`. */
export function cl100kPieceEnd(text: string, p: number, len: number, lim: number): number {
  const k0 = classAt(text, p, len);
  // C1: a contraction on its own.
  if (text.charCodeAt(p) === APOSTROPHE) {
    const end = contractionEnd(text, p, len);
    if (end !== p) return end;
  }
  // C2: an optional prefix, then letters.
  let s = -1;
  if ((k0 & CP_LETTER) !== 0) s = p;
  else if ((k0 & NOT_PREFIX) === 0 && p + width(k0) < len) {
    const next = p + width(k0);
    if ((classAt(text, next, len) & CP_LETTER) !== 0) s = next;
  }
  if (s >= 0) {
    let i = s;
    while (i < lim) {
      const k = classAt(text, i, len);
      if ((k & CP_LETTER) === 0) break;
      i += width(k);
    }
    if (i >= lim && lim < len) return PIECE_TOO_LONG;
    return i;
  }
  if ((k0 & CP_NUMBER) !== 0) return numberEnd(text, p, len, k0);
  const end = punctEnd(text, p, len, lim, k0, false);
  if (end !== NO_MATCH) return end;
  return spaceEnd(text, p, len, lim);
}

/*
 * The fast path: pieces made of ASCII only. Same rules, specialised: among ASCII characters
 * the only letters are A-Z (UPPERISH only) and a-z (LOWERISH only), so a word is
 * `[A-Z]*[a-z]*` plus a contraction, and no backtracking case arises. Whenever the answer
 * could depend on a non-ASCII character (a run ends at one, or the character after the
 * first is one), or on the scan limit, it gives up and the general path decides.
 */

/** `asciiPieceEnd` could not decide. */
export const ASCII_UNDECIDED = -3;

const A_UPPER = 1;
const A_LOWER = 2;
const A_DIGIT = 3;
const A_SPACE = 4; // U+0020
const A_BLANK = 5; // \t \v \f
const A_NEWLINE = 6; // \r \n
const A_APOSTROPHE = 7;
const A_PUNCT = 8; // every other ASCII character: punctuation, symbols, controls
const A_NON_ASCII = 0;

/** ASCII classes by code unit; index 128 stands for every non-ASCII unit. */
const ASCII_CLASS = (() => {
  const table = new Uint8Array(129);
  for (let c = 0; c < 128; c++) {
    let k = A_PUNCT;
    if (c >= 0x41 && c <= 0x5a) k = A_UPPER;
    else if (c >= 0x61 && c <= 0x7a) k = A_LOWER;
    else if (c >= 0x30 && c <= 0x39) k = A_DIGIT;
    else if (c === 0x20) k = A_SPACE;
    else if (c === 0x09 || c === 0x0b || c === 0x0c) k = A_BLANK;
    else if (c === 0x0a || c === 0x0d) k = A_NEWLINE;
    else if (c === APOSTROPHE) k = A_APOSTROPHE;
    table[c] = k;
  }
  table[128] = A_NON_ASCII;
  return table;
})();

/** ASCII class of the unit at `i`; past the end of the text it is A_NON_ASCII too. */
const asciiClass = (text: string, i: number, len: number) =>
  i < len ? ASCII_CLASS[Math.min(text.charCodeAt(i), 128)] : A_NON_ASCII;

// Module-level copies: imported constants compile to property loads on the module object.
const FNV_SEED = HASH_SEED;
const FNV_PRIME = HASH_PRIME;

/**
 * The FNV-1a state (before `finishHash`) of the bytes of the piece `asciiPieceEnd` last
 * decided: computed while reading it, so that the counter need not read it again.
 */
export const asciiPieceHash = new Int32Array(1);

function hashRange(text: string, from: number, to: number, h: number): number {
  for (let i = from; i < to; i++) h = Math.imul(h ^ text.charCodeAt(i), FNV_PRIME);
  return h;
}

/**
 * End of the piece at `p` when it can be decided from ASCII alone (and the piece is ASCII),
 * else ASCII_UNDECIDED; sets `asciiPieceHash`. `o200k` selects the pattern (false: cl100k_base).
 */
export function asciiPieceEnd(
  text: string,
  p: number,
  len: number,
  lim: number,
  o200k: boolean,
): number {
  const c0 = text.charCodeAt(p);
  if (c0 >= 0x80) return ASCII_UNDECIDED;
  const k0 = ASCII_CLASS[c0];
  // The end of the text is known to be the end (lim === len there): -1 stands for it.
  const c1 = p + 1 < len ? text.charCodeAt(p + 1) : -1;
  if (c1 >= 0x80) return ASCII_UNDECIDED;
  const k1 = c1 < 0 ? -1 : ASCII_CLASS[c1];
  if (!o200k && k0 === A_APOSTROPHE) {
    const end = contractionEnd(text, p, len);
    if (end !== p) {
      // C1 (the letters after the apostrophe are ASCII: ſ is not, and k1 is ASCII).
      asciiPieceHash[0] = hashRange(text, p, end, FNV_SEED);
      return end;
    }
  }
  // Letters, after an optional prefix (any ASCII character but letters, digits, CR, LF).
  let h = FNV_SEED;
  let s = -1;
  if (k0 === A_UPPER || k0 === A_LOWER) s = p;
  else if ((k1 === A_UPPER || k1 === A_LOWER) && k0 !== A_DIGIT && k0 !== A_NEWLINE) {
    s = p + 1;
    h = Math.imul(h ^ c0, FNV_PRIME);
  }
  if (s >= 0) {
    let i = s;
    // Plain range tests, hashing as they go: the runs are the hot loop of English text.
    if (o200k) {
      while (i < lim) {
        const c = text.charCodeAt(i);
        if (c < 0x41 || c > 0x5a) break; // A-Z
        h = Math.imul(h ^ c, FNV_PRIME);
        i++;
      }
      while (i < lim) {
        const c = text.charCodeAt(i);
        if (c < 0x61 || c > 0x7a) break; // a-z
        h = Math.imul(h ^ c, FNV_PRIME);
        i++;
      }
    } else {
      while (i < lim) {
        const c = text.charCodeAt(i);
        if ((c | 0x20) < 0x61 || (c | 0x20) > 0x7a) break; // A-Z, a-z
        h = Math.imul(h ^ c, FNV_PRIME);
        i++;
      }
    }
    if (i >= lim) {
      if (i !== len) return ASCII_UNDECIDED;
      asciiPieceHash[0] = h;
      return i;
    }
    const c = text.charCodeAt(i);
    if (c >= 0x80) return ASCII_UNDECIDED; // a non-ASCII letter or mark could continue it
    if (o200k && c === APOSTROPHE) {
      const end = contractionEnd(text, i, len);
      // 's with U+017F (ſ) is a contraction too, but not ASCII.
      if (end > i && text.charCodeAt(i + 1) >= 0x80) return ASCII_UNDECIDED;
      asciiPieceHash[0] = hashRange(text, i, end, h);
      return end;
    }
    asciiPieceHash[0] = h;
    return i;
  }
  if (k0 === A_DIGIT) {
    let i = p + 1;
    for (let n = 1; n < 3 && i < len; n++) {
      const k = asciiClass(text, i, len);
      if (k === A_NON_ASCII) return ASCII_UNDECIDED; // maybe a non-ASCII number
      if (k !== A_DIGIT) break;
      i++;
    }
    asciiPieceHash[0] = hashRange(text, p, i, FNV_SEED);
    return i;
  }
  // ` ?[^\s\p{L}\p{N}]+` then `[\r\n/]*` (o200k) or `[\r\n]*`.
  let i = -1;
  if (k0 === A_PUNCT || k0 === A_APOSTROPHE) i = p;
  else if (k0 === A_SPACE && (k1 === A_PUNCT || k1 === A_APOSTROPHE)) i = p + 1;
  if (i >= 0) {
    for (;;) {
      if (i >= lim) {
        if (i !== len) return ASCII_UNDECIDED;
        break;
      }
      const k = asciiClass(text, i, len);
      if (k !== A_PUNCT && k !== A_APOSTROPHE) {
        if (k === A_NON_ASCII) return ASCII_UNDECIDED; // maybe more punctuation
        break;
      }
      i++;
    }
    for (;;) {
      if (i >= lim) {
        if (i !== len) return ASCII_UNDECIDED;
        break;
      }
      const c = text.charCodeAt(i);
      if (c !== 0x0a && c !== 0x0d && !(o200k && c === 0x2f)) break;
      i++;
    }
    asciiPieceHash[0] = hashRange(text, p, i, FNV_SEED);
    return i;
  }
  // Whitespace: A5-A7 over the run of ASCII whitespace.
  let j = p;
  let afterNewline = -1;
  for (;;) {
    if (j >= lim) {
      if (j !== len) return ASCII_UNDECIDED;
      break;
    }
    const k = asciiClass(text, j, len);
    if (k !== A_SPACE && k !== A_BLANK && k !== A_NEWLINE) {
      if (k === A_NON_ASCII) return ASCII_UNDECIDED; // maybe more whitespace
      break;
    }
    j++;
    if (k === A_NEWLINE) afterNewline = j;
  }
  const end = afterNewline >= 0 ? afterNewline : j === len || j - p < 2 ? j : j - 1;
  asciiPieceHash[0] = hashRange(text, p, end, FNV_SEED);
  return end;
}

export type PieceEnd = (text: string, p: number, len: number, lim: number) => number;

export const PIECE_END: Readonly<Record<EncodingName, PieceEnd>> = {
  o200k_base: o200kPieceEnd,
  cl100k_base: cl100kPieceEnd,
};

/** The pieces of a whole text (for specs and tools; the counter walks them itself). */
export function splitPieces(text: string, encoding: EncodingName): string[] {
  const pieceEnd = PIECE_END[encoding];
  const pieces: string[] = [];
  const len = text.length;
  for (let p = 0; p < len;) {
    const end = pieceEnd(text, p, len, len);
    pieces.push(text.slice(p, end));
    p = end;
  }
  return pieces;
}
