/**
 * Places where a text can be cut into parts that tokenize independently, found by looking
 * at two neighbouring characters only.
 *
 * tiktoken first splits text into pieces with a regex, then runs BPE on each piece on its
 * own; a text's count is the sum over its pieces. A position `i` is a *safe cut* when
 *   (a) a piece of the whole text ends at `i`, and
 *   (b) the character before `i` is not whitespace.
 * Then the pieces of `text[a, i)` and `text[i, b)` (a, b safe cuts or the ends) are exactly the
 * whole text's pieces: the regex has no look-behind, so what follows a piece start never
 * depends on what precedes it, and the only look-aheads/anchors (`\s+(?!\S)`, `\s+$`) can
 * only be affected by the cut when the text before the cut ends in whitespace, which (b)
 * rules out. So counting parts separately and adding up gives the exact count, and a part
 * counted by its UTF-8 length still gives an upper bound (a BPE token is at least one byte).
 *
 * Rules (same for cl100k_base and o200k_base, and for tiktoken's Rust regex and
 * gpt-tokenizer's JS regex), with P the class of the character before `i` and C the one at
 * `i`; nothing is a cut when P is whitespace:
 *   1. C is a blank (space, tab, VT, FF or a Unicode space both engines agree on): no
 *      non-whitespace piece can continue into a blank (punctuation pieces only swallow
 *      trailing CR/LF, and o200k's also `/`).
 *   2. P is a letter and C is a digit, punctuation (not `'`), CR/LF or U+0085/U+FEFF: letter
 *      pieces are letters/marks plus an optional `'s`-style suffix.
 *   3. P is a digit and C is anything known not to be a number: digits only ever form
 *      `\p{N}{1,3}` pieces. Inside a digit run, a cut every third digit from the run start.
 *   4. P is punctuation (incl. `'`) and C is a digit: punctuation pieces stop at a number.
 * Characters we cannot classify cheaply (most non-ASCII) only allow rule 1.
 */

export const CLS_OTHER = 0; // not whitespace, class unknown (letter, mark, number or symbol)
export const CLS_LETTER = 1; // known \p{L}
export const CLS_DIGIT = 2; // ASCII 0-9
export const CLS_PUNCT = 3; // known to be none of letter, mark, number, whitespace, `'`
export const CLS_APOS = 4; // ASCII apostrophe, which starts contractions (`'s`, `'ll`…)
export const CLS_BLANK = 5; // whitespace in both engines, other than CR and LF
export const CLS_NEWLINE = 6; // CR or LF
export const CLS_AMBIGUOUS = 7; // U+0085 (Rust: space, JS: not) and U+FEFF (the reverse)
export const CLASS_COUNT = 8;

const ASCII_CLASSES = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  let cls = CLS_PUNCT; // controls and symbols are "other" to the regex: punctuation-like
  if ((c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)) cls = CLS_LETTER;
  else if (c >= 0x30 && c <= 0x39) cls = CLS_DIGIT;
  else if (c === 0x27) cls = CLS_APOS;
  else if (c === 0x0a || c === 0x0d) cls = CLS_NEWLINE;
  else if (c === 0x09 || c === 0x0b || c === 0x0c || c === 0x20) cls = CLS_BLANK;
  ASCII_CLASSES[c] = cls;
}

/**
 * Class of one UTF-16 code unit. Only ranges that are stable across Unicode versions are
 * classified; a surrogate or anything unlisted is CLS_OTHER, which merely loses cut points.
 */
export function classifyCodeUnit(c: number): number {
  return c < 0x80 ? ASCII_CLASSES[c] : classifyNonAscii(c);
}

function classifyNonAscii(c: number): number {
  if (c === 0x85 || c === 0xfeff) return CLS_AMBIGUOUS;
  if (
    c === 0xa0 ||
    c === 0x1680 ||
    (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 ||
    c === 0x2029 ||
    c === 0x202f ||
    c === 0x205f ||
    c === 0x3000
  ) {
    return CLS_BLANK;
  }
  if (
    (c >= 0xc0 && c <= 0xff && c !== 0xd7 && c !== 0xf7) || // Latin-1 letters
    (c >= 0x410 && c <= 0x44f) || // basic Cyrillic
    (c >= 0x3b1 && c <= 0x3c9) || // Greek small letters
    (c >= 0x3041 && c <= 0x3096) || // Hiragana
    (c >= 0x30a1 && c <= 0x30fa) || // Katakana
    (c >= 0x4e00 && c <= 0x9fd5) || // CJK ideographs (Unicode 8 extent)
    (c >= 0xac00 && c <= 0xd7a3) // Hangul syllables
  ) {
    return CLS_LETTER;
  }
  if (
    (c >= 0x2010 && c <= 0x2027) || // dashes, quotes, bullets, ellipsis
    (c >= 0x3001 && c <= 0x3003) || // 、。〃
    (c >= 0x3008 && c <= 0x301f) || // CJK brackets and quotes
    (c >= 0xff01 && c <= 0xff0f) || // fullwidth ！＂＃…／
    (c >= 0xff1a && c <= 0xff20) || // fullwidth ：；＜＝＞？＠
    (c >= 0xff3b && c <= 0xff40) ||
    (c >= 0xff5b && c <= 0xff65)
  ) {
    return CLS_PUNCT;
  }
  return CLS_OTHER;
}

/** `classifyCodeUnit` for every UTF-16 code unit (64 KB), so the scan does one load per unit. */
export const CODE_UNIT_CLASSES: Uint8Array = (() => {
  const table = new Uint8Array(0x10000);
  for (let c = 0; c < 0x10000; c++) table[c] = classifyCodeUnit(c);
  return table;
})();

export const CUT_NO = 0;
export const CUT_YES = 1;
/** Both sides are digits: cut when the run so far is a multiple of three long. */
export const CUT_DIGIT_RUN = 2;

/** `CUT_TABLE[prev * CLASS_COUNT + cur]`: the rules above as a lookup table. */
export const CUT_TABLE: Uint8Array = buildCutTable();

function cutIndex(prev: number, cur: number): number {
  return prev * CLASS_COUNT + cur;
}

function buildCutTable(): Uint8Array {
  const table = new Uint8Array(CLASS_COUNT * CLASS_COUNT);
  const set = (prev: number, curs: readonly number[], value: number) => {
    for (const cur of curs) table[cutIndex(prev, cur)] = value;
  };
  // Rows of the whitespace classes stay empty: the text before a cut must not end in one.
  for (const prev of [CLS_OTHER, CLS_LETTER, CLS_DIGIT, CLS_PUNCT, CLS_APOS]) {
    set(prev, [CLS_BLANK], CUT_YES); // rule 1
  }
  set(CLS_LETTER, [CLS_DIGIT, CLS_PUNCT, CLS_NEWLINE, CLS_AMBIGUOUS], CUT_YES); // rule 2
  set(CLS_DIGIT, [CLS_LETTER, CLS_PUNCT, CLS_APOS, CLS_NEWLINE, CLS_AMBIGUOUS], CUT_YES); // 3
  set(CLS_DIGIT, [CLS_DIGIT], CUT_DIGIT_RUN); // rule 3, inside a run
  set(CLS_PUNCT, [CLS_DIGIT], CUT_YES); // rule 4
  set(CLS_APOS, [CLS_DIGIT], CUT_YES); // rule 4
  return table;
}
