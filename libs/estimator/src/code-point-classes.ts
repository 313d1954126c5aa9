/**
 * What the pre-tokenization patterns of cl100k_base and o200k_base need to know about a code
 * point, as bit flags. The sets are taken from the JavaScript engine's Unicode property
 * escapes; `\s` is Unicode's White_Space property, as in tiktoken's Rust regex (JavaScript's
 * own `\s` differs on U+0085 and U+FEFF, which is why gpt-tokenizer miscounts those).
 */

/** `\p{L}` */
export const CP_LETTER = 1;
/** `\p{N}` */
export const CP_NUMBER = 2;
/** `[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]`, the leading class of o200k's words */
export const CP_UPPERISH = 4;
/** `[\p{Ll}\p{Lm}\p{Lo}\p{M}]`, the trailing class of o200k's words */
export const CP_LOWERISH = 8;
/** `\s`: White_Space */
export const CP_SPACE = 16;
/** `\r` or `\n` */
export const CP_NEWLINE = 32;
/** In `BMP_CLASSES` only: a UTF-16 surrogate, whose class depends on the next code unit. */
export const CP_SURROGATE = 64;
/** From `classAt` only: the code point is a surrogate pair (two code units). */
export const CP_WIDE = 128;

/** The class of anything else: punctuation, symbols, controls, unassigned code points. */
export const CP_OTHER = 0;

/** Each flag's character class, as a regex. */
const PROPERTY_CLASSES: ReadonlyArray<readonly [string, number]> = [
  ['\\p{L}', CP_LETTER],
  ['\\p{N}', CP_NUMBER],
  ['[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]', CP_UPPERISH],
  ['[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]', CP_LOWERISH],
  ['\\p{White_Space}', CP_SPACE],
  ['[\\r\\n]', CP_NEWLINE],
];
/** Runs of each class, to classify the BMP at once. */
const PROPERTY_PATTERNS = PROPERTY_CLASSES.map(
  ([cls, flag]) => [new RegExp(`${cls}+`, 'gu'), flag] as const,
);
/**
 * The class of one astral code point in a single regex call (no astral code point is
 * White_Space, CR or LF): which group matched.
 */
const ASTRAL_CLASS = /^(?:([\p{Lu}\p{Lt}])|(\p{Ll})|([\p{Lm}\p{Lo}])|(\p{M})|(\p{N}))$/u;
const ASTRAL_GROUP_CLASSES: readonly number[] = [
  CP_OTHER,
  CP_LETTER | CP_UPPERISH,
  CP_LETTER | CP_LOWERISH,
  CP_LETTER | CP_UPPERISH | CP_LOWERISH,
  CP_UPPERISH | CP_LOWERISH,
  CP_NUMBER,
];

/**
 * Class flags of every BMP code point, found with one regex pass per property over a string
 * holding them all (a few milliseconds, against a regex call per code point).
 */
function classifyBmp(): Uint8Array {
  const classes = new Uint8Array(0x10000);
  const units: number[] = [];
  // Surrogates cannot stand alone: U+0000 (class OTHER) holds their places.
  for (let c = 0; c < 0x10000; c++) units.push(c >= 0xd800 && c <= 0xdfff ? 0 : c);
  let text = '';
  for (let at = 0; at < units.length; at += 4096) {
    text += String.fromCharCode(...units.slice(at, at + 4096));
  }
  for (const [pattern, flag] of PROPERTY_PATTERNS) {
    pattern.lastIndex = 0;
    for (let match = pattern.exec(text); match !== null; match = pattern.exec(text)) {
      for (let i = match.index; i < match.index + match[0].length; i++) classes[i] |= flag;
    }
  }
  return classes;
}

/**
 * Code points first assigned in Unicode 17.0. tiktoken's Rust regex was built with the tables
 * of Unicode 16.0, so to it they are unassigned (class OTHER), while JavaScript engines with
 * ICU 78 and later (Node 20.20, 22.x) know them as letters, marks or numbers. Found by counting
 * every code point in several contexts with both tokenizers (code-point-classes.spec.ts
 * repeats the sweep); a later Node with newer Unicode tables could add more.
 */
const UNKNOWN_TO_TIKTOKEN: ReadonlyArray<readonly [number, number]> = [
  [0x088f, 0x088f],
  [0x0c5c, 0x0c5c],
  [0x0cdc, 0x0cdc],
  [0x1acf, 0x1add],
  [0x1ae0, 0x1aeb],
  [0xa7ce, 0xa7cf],
  [0xa7d2, 0xa7d2],
  [0xa7d4, 0xa7d4],
  [0xa7f1, 0xa7f1],
  [0x10940, 0x10959],
  [0x10ec5, 0x10ec7],
  [0x10efa, 0x10efb],
  [0x11b60, 0x11b67],
  [0x11db0, 0x11ddb],
  [0x11de0, 0x11de9],
  [0x16ea0, 0x16eb8],
  [0x16ebb, 0x16ed3],
  [0x16ff2, 0x16ff6],
  [0x187f8, 0x187ff],
  [0x18d09, 0x18d1e],
  [0x18d80, 0x18df2],
  [0x1e6c0, 0x1e6de],
  [0x1e6e0, 0x1e6f5],
  [0x1e6fe, 0x1e6ff],
  [0x2b73a, 0x2b73f],
  [0x2cea2, 0x2cead],
  [0x323b0, 0x33479],
];

/** Class flags of every UTF-16 code unit (64 KB); surrogates carry `CP_SURROGATE`. */
export const BMP_CLASSES: Uint8Array = (() => {
  const table = classifyBmp();
  for (const [from, to] of UNKNOWN_TO_TIKTOKEN) {
    if (from <= 0xffff) table.fill(CP_OTHER, from, Math.min(to, 0xffff) + 1);
  }
  table.fill(CP_SURROGATE, 0xd800, 0xe000);
  return table;
})();

/** Astral code points are classified one at a time when first seen, and remembered. */
const astralClasses = new Map<number, number>();
const MAX_ASTRAL_REMEMBERED = 65_536;

/** Work done classifying astral code points, for the caller's work budget. */
export const astralWork = { classified: 0 };

/** Class flags of a code point above U+FFFF. */
export function astralClass(cp: number): number {
  const known = astralClasses.get(cp);
  if (known !== undefined) return known;
  astralWork.classified++;
  const match = ASTRAL_CLASS.exec(String.fromCodePoint(cp));
  let k = CP_OTHER;
  if (match !== null && !isUnknownToTiktoken(cp)) {
    for (let group = 1; group < match.length; group++) {
      if (match[group] !== undefined) k = ASTRAL_GROUP_CLASSES[group];
    }
  }
  if (astralClasses.size >= MAX_ASTRAL_REMEMBERED) astralClasses.clear();
  astralClasses.set(cp, k);
  return k;
}

function isUnknownToTiktoken(cp: number): boolean {
  for (const [from, to] of UNKNOWN_TO_TIKTOKEN) if (cp >= from && cp <= to) return true;
  return false;
}

/**
 * Class flags of the code point at `i` (`i < len`), with `CP_WIDE` when it is a surrogate
 * pair. A lone surrogate reaches the tokenizer as U+FFFD, a symbol: class OTHER.
 */
export function classAt(text: string, i: number, len: number): number {
  const k = BMP_CLASSES[text.charCodeAt(i)];
  return (k & CP_SURROGATE) === 0 ? k : surrogateClass(text, i, len);
}

function surrogateClass(text: string, i: number, len: number): number {
  const c = text.charCodeAt(i);
  if (c <= 0xdbff && i + 1 < len) {
    const d = text.charCodeAt(i + 1);
    if (d >= 0xdc00 && d <= 0xdfff) {
      return astralClass(((c - 0xd800) << 10) + (d - 0xdc00) + 0x10000) | CP_WIDE;
    }
  }
  return CP_OTHER;
}
