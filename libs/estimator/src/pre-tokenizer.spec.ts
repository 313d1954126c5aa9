import { ENCODING_NAMES, type EncodingName } from './encoding-for-model';
import {
  ASCII_UNDECIDED,
  PIECE_END,
  PIECE_TOO_LONG,
  asciiPieceEnd,
  asciiPieceHash,
  splitPieces,
} from './pre-tokenizer';
import {
  codeText,
  edgeCaseText,
  englishText,
  jsonText,
  mixedCorpus,
  seededRandom,
} from './testing/text-corpus';
import { finishHash, hashBytes } from './vocabulary';

/*
 * The hand-written pre-tokenizer against the patterns themselves: tiktoken's pat_str, run by
 * JavaScript's backtracking regex engine, with Rust's `\s` (White_Space) and the
 * case-insensitive contractions spelled out (Unicode simple case folding: s also matches ſ).
 */
const S = '\\p{White_Space}';
const CONTRACTION = "(?:'[sSſ]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])";
const PATTERNS: Record<EncodingName, RegExp> = {
  o200k_base: new RegExp(
    [
      `[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+${CONTRACTION}?`,
      `[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*${CONTRACTION}?`,
      '\\p{N}{1,3}',
      ` ?[^${S}\\p{L}\\p{N}]+[\\r\\n/]*`,
      `[${S}]*[\\r\\n]+`,
      `[${S}]+(?![^${S}])`,
      `[${S}]+`,
    ].join('|'),
    'gu',
  ),
  cl100k_base: new RegExp(
    [
      CONTRACTION,
      '[^\\r\\n\\p{L}\\p{N}]?\\p{L}+',
      '\\p{N}{1,3}',
      ` ?[^${S}\\p{L}\\p{N}]+[\\r\\n]*`,
      `[${S}]*[\\r\\n]+`,
      `[${S}]+(?![^${S}])`,
      `[${S}]+`,
    ].join('|'),
    'gu',
  ),
};

const regexPieces = (text: string, encoding: EncodingName) =>
  Array.from(text.matchAll(PATTERNS[encoding]), (match) => match[0]);

const SPECIAL_CASES = [
  '',
  ' ',
  '  ',
  '   x',
  '\n',
  ' \n \n  x',
  'a  \n\n  b  ',
  "don't we'LL it's THEY'RE I'd o'clock 'sup '' ''s",
  "dog'ſ x'ſ 'ſ",
  'HTTPServerError camelCaseWord ABCdef abcDEF',
  'ǅungla ǈ ǋ Ǆ', // title-case letters (Lt)
  '\u0301abc \u0301ABC a\u0301b A\u0301B \u0301\u0301', // marks
  'ʰʲ ーカ 中A A中 ㄱa', // Lm, Lo next to Lu/Ll
  '12345678 ١٢٣٤ ²³ Ⅻ 12.5%',
  '!!! ?!/ /// a/b\n/\r\n//',
  '\u0085x \ufeffy\u0085 \u00a0z\u3000\u2028\u2029',
  '😀😀 a😀b 👩‍💻 \ud83d \ude00 x\ud800y',
  '\t\tx \u000b\u000cy \r\r\n z',
];

describe.each(ENCODING_NAMES)('the pre-tokenizer for %s', (encoding) => {
  it('splits like the pattern on tricky cases', () => {
    for (const text of SPECIAL_CASES) {
      expect({ text, pieces: splitPieces(text, encoding) }).toEqual({
        text,
        pieces: regexPieces(text, encoding),
      });
    }
  });

  it('splits like the pattern over a varied corpus and random edge-case soup', () => {
    const texts = mixedCorpus(123, 10, 10, 2_000).map((entry) => entry.text);
    const random = seededRandom(4242);
    for (let i = 0; i < 1_500; i++)
      texts.push(edgeCaseText(random, 1 + Math.floor(random() * 120)));
    for (const text of texts) {
      expect({ text, pieces: splitPieces(text, encoding) }).toEqual({
        text,
        pieces: regexPieces(text, encoding),
      });
    }
  });

  it('gives up on a piece that reaches the limit, and only then', () => {
    const pieceEnd = PIECE_END[encoding];
    const text = `x ${'y'.repeat(100)} z`;
    expect(pieceEnd(text, 1, text.length, 50)).toBe(PIECE_TOO_LONG);
    expect(pieceEnd(text, 1, text.length, 110)).toBe(102);
    expect(pieceEnd(' '.repeat(100), 0, 100, 100)).toBe(100);
    expect(pieceEnd(' '.repeat(100), 0, 100, 40)).toBe(PIECE_TOO_LONG);
  });

  it('decides ASCII pieces like the general path, with the hash of their bytes', () => {
    const o200k = encoding === 'o200k_base';
    const pieceEnd = PIECE_END[encoding];
    const random = seededRandom(77);
    let decided = 0;
    // Collected and compared once: an expect per piece would take most of the time.
    const wrong: string[] = [];
    for (let k = 0; k < 600; k++) {
      const text =
        k % 3 === 0
          ? englishText(random, 300) + edgeCaseText(random, 40)
          : k % 3 === 1
            ? codeText(random, 300) + "dog'ſ it's"
            : jsonText(random, 300, k % 2 === 0);
      const len = text.length;
      for (let p = 0; p < len;) {
        const general = pieceEnd(text, p, len, len);
        const lim = Math.min(len, p + 1 + Math.floor(random() * 30));
        for (const limit of [len, lim]) {
          const end = asciiPieceEnd(text, p, len, limit, o200k);
          if (end === ASCII_UNDECIDED) continue;
          decided++;
          const piece = text.slice(p, end);
          const bytes = Buffer.from(piece, 'utf8');
          if (
            end !== general ||
            bytes.length !== piece.length ||
            finishHash(asciiPieceHash[0]) !== hashBytes(bytes, 0, bytes.length)
          ) {
            wrong.push(JSON.stringify(text.slice(p, general)));
          }
        }
        p = general;
      }
    }
    expect(wrong).toEqual([]);
    expect(decided).toBeGreaterThan(50_000);
  });
});
