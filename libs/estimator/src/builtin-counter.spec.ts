import fc from 'fast-check';
import { get_encoding, type Tiktoken } from 'tiktoken';
import {
  EncodingCounter,
  boundRest,
  getEncodingCounter,
  loadedEncodingCounter,
  utf8Length,
  type TokenSink,
} from './builtin-counter';
import { ENCODING_NAMES, type EncodingName } from './encoding-for-model';
import { HotPieceCache, PieceCountCache } from './piece-count-cache';
import { TextCountCache } from './text-count-cache';
import { hashBytes } from './vocabulary';
import {
  DEFAULT_ESTIMATOR_LIMITS,
  MEASURE_FREE_CHARS,
  WorkBudget,
  type EstimatorLimits,
} from './work-budget';

/*
 * The built-in counter must give tiktoken's counts exactly: it replaces the library only on
 * that condition. Every property below compares it with tiktoken itself (`encode`, with
 * special-token markup taken as text, as the estimator does) on random strings made to hit
 * the pre-tokenizer's branches, the merge paths and the caches. fast-check picks a new seed
 * on every run and prints it on failure (replay: `fc.assert(..., { seed, path })`).
 */

const tiktokens = new Map<EncodingName, Tiktoken>();
function tiktoken(encoding: EncodingName): Tiktoken {
  let encoder = tiktokens.get(encoding);
  if (encoder === undefined) {
    encoder = get_encoding(encoding);
    tiktokens.set(encoding, encoder);
  }
  return encoder;
}
afterAll(() => {
  for (const encoder of tiktokens.values()) encoder.free();
});

/** tiktoken's count: `encode` with no special token allowed or disallowed (markup is text). */
const reference = (text: string, encoding: EncodingName) =>
  tiktoken(encoding).encode(text, [], []).length;

/** A clock that never moves: specs never depend on timing. */
const frozenBudget = (limits: Partial<EstimatorLimits> = {}) =>
  new WorkBudget({ ...DEFAULT_ESTIMATOR_LIMITS, ...limits }, { now: () => 0 });
/** Nothing is ever bounded: every piece, however long, is merged. */
const UNLIMITED: Partial<EstimatorLimits> = {
  exactTimeMs: 1e9,
  scanChars: 1e12,
  maxSpanBytes: 1e6,
};

function countWith(counter: EncodingCounter, text: string, budget: WorkBudget): TokenSink {
  const sink = { tokens: 0, exact: true };
  counter.count(text, budget, sink);
  return sink;
}

// Fragments, each aimed at some branch of the pre-tokenizer; glued together at random so
// that they also meet each other at piece boundaries.
const charsOf = (set: string) => fc.constantFrom(...Array.from(set));
const runOf = (set: string, maxLength: number) =>
  fc.string({ unit: charsOf(set), minLength: 1, maxLength });

const LETTERS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';
const FRAGMENTS = {
  'ASCII words': runOf(LETTERS, 12),
  'lower-case words': runOf('etaoinshrdlucmfwyp', 10),
  punctuation: runOf('!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~', 6),
  'digit runs': runOf('0123456789', 14),
  'other numbers': runOf('٠١٢٣٤५६७１２３²³¼ⅫⅣ〇', 5),
  whitespace: runOf(' \t\n\r\u000b\u000c', 6),
  'Unicode whitespace and U+FEFF': runOf(
    ' \n\u00a0\u0085\u1680\u2000\u2028\u2029\u202f\u3000\ufeff',
    4,
  ),
  contractions: fc.constantFrom(
    ...["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'Ve", "'LL", "'D"],
    ...["'ſ", "'x", "'", "''", '’s', "'r", "'v", "'l"],
  ),
  CJK: runOf('中文字符测试的一是不了人我在有他这为之大来以個們說', 8),
  'kana and Hangul': runOf('ひらがなカタカナーゝ한국어입니다ㄱㅏ', 6),
  'emoji and astral': runOf('😀🚀👩\u200d💻🏳️\u200d🌈👍🏽🇫🇷𝐀𝐁𝔘𝟘🀄𠀀𪚥', 5),
  'combining marks': runOf('e\u0301a\u0308\u0301\u0302\u0327\u20dd\u0951', 5),
  'Arabic and Hebrew (RTL)': runOf('مرحبابالعالم١٢שלוםעולם\u200f\u200e\u064b', 8),
  'Indic and Thai': runOf('नमस्तेदुनियाகணினிไทยภาษา', 8),
  'Cyrillic and Greek': runOf('ПриветмирΓειάσουκόσμεЁё', 8),
  'title-case, modifier and odd letters': runOf('ǅǈǋǲʰʲˢſıİßẞﬁＡａ', 4),
  'any code point': fc.string({ unit: 'binary', maxLength: 6 }),
  'lone surrogates': fc.constantFrom('\ud800', '\udbff', '\udc00', '\udfff', '\ud83d', '\ude00'),
  'special-token markup': fc.constantFrom('<|endoftext|>', '<|endofprompt|>', '<|fim_prefix|>'),
};
const soup = fc
  .array(fc.oneof(...Object.values(FRAGMENTS)), { maxLength: 24 })
  .map((parts) => parts.join(''));
/** Any UTF-16 code unit, lone surrogates and unassigned code points included. */
const codeUnits = fc.string({
  unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)),
  maxLength: 60,
});

/** Fixed cases that once broke hand-written tokenizers, or could. */
const TRICKY = [
  '',
  ' ',
  '  \n\n  ',
  '\n\n\n',
  ' \r\n \r\n\t x',
  'a  \n\n  b  ',
  "it's we'RE they've I'm you'll he'd don't 's 'S 'Ll",
  "dog'ſ 'ſ x'ſ",
  "''s ' 's' o'clock",
  '1234567890123456789012345678901234567890',
  '١٢٣٤٥٦٧٨٩٠ ²³⁴ Ⅻ 12.50€ 3,141,592',
  '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!',
  '/////\n\n////\r\n',
  'HTTPServerError camelCaseWord ABCdef abcDEF XMLHttpRequest',
  'ǅungla ǈ ǋ Ǆ Ǳ',
  '\u0301abc \u0301ABC a\u0301b A\u0301B \u0301\u0301',
  'ʰʲ ーカ 中A A中 ㄱa',
  '\u0085x \ufeffy\u0085 \u00a0z\u3000\u2028\u2029',
  '😀😀 a😀b 👩‍💻 \ud83d \ude00 x\ud800y \udc00\ud800',
  'a <|endoftext|> b <|im_start|>user\nhi<|im_end|> <|endofprompt|>',
  'supercalifragilisticexpialidocious pneumonoultramicroscopicsilicovolcanoconiosis',
  'x'.repeat(40),
  'Lorem'.repeat(30),
  'ab'.repeat(200),
  '中'.repeat(60),
  '😀'.repeat(30),
  ' '.repeat(100) + 'x',
  '\t'.repeat(50),
  '1'.repeat(301),
  'a\u0300'.repeat(40),
];

describe.each(ENCODING_NAMES)('the built-in counter with %s', (encoding) => {
  // A counter of its own, so that its caches start empty and fill as the properties run:
  // a count found in a cache must be the same as a count merged afresh.
  const counter = new EncodingCounter(getEncodingCounter(encoding).vocab);
  const exactlyAsTiktoken = (text: string, limits: Partial<EstimatorLimits>) => {
    const result = countWith(counter, text, frozenBudget(limits));
    const expected = reference(text, encoding);
    if (result.tokens !== expected || !result.exact) {
      throw new Error(`${JSON.stringify(text)}: ${JSON.stringify(result)}, tiktoken ${expected}`);
    }
  };
  const runs = (numRuns: number) => ({ numRuns, endOnFailure: false });

  it('counts the tricky cases exactly as tiktoken does', () => {
    for (const text of TRICKY) exactlyAsTiktoken(text, UNLIMITED);
    for (const text of TRICKY) exactlyAsTiktoken(text, {}); // again, from the caches
  });

  it('counts random mixes of every kind of fragment exactly, with the default limits', () => {
    fc.assert(
      fc.property(soup, (text) => exactlyAsTiktoken(text, {})),
      runs(5_000),
    );
  });

  it.each(Object.entries(FRAGMENTS))('counts runs of %s exactly', (_kind, fragment) => {
    const runOfFragments = fc
      .array(fragment, { minLength: 1, maxLength: 12 })
      .map((parts) => parts.join(''));
    fc.assert(
      fc.property(runOfFragments, (text) => exactlyAsTiktoken(text, {})),
      runs(300),
    );
  });

  it('counts random strings of any code point exactly', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 80 }), (text) =>
        exactlyAsTiktoken(text, {}),
      ),
      runs(2_000),
    );
  });

  it('counts random strings of any UTF-16 code unit (lone surrogates included) exactly', () => {
    fc.assert(
      fc.property(codeUnits, (text) => exactlyAsTiktoken(text, {})),
      runs(2_000),
    );
  });

  it('counts long pieces (merged with the heap, past 32 bytes) exactly', () => {
    // Each is one piece in both patterns; random letters are rarely tokens, so they merge.
    const longPiece = fc.oneof(
      fc.string({ unit: charsOf('abcdefghijklmnopqrstuvwxyz'), minLength: 33, maxLength: 900 }),
      fc.string({ unit: charsOf('etaoinsh'), minLength: 33, maxLength: 400 }),
      fc.string({ unit: charsOf('éàüößçñøåıł'), minLength: 17, maxLength: 300 }),
      fc.string({ unit: charsOf('中文字符测试的一是不了'), minLength: 11, maxLength: 200 }),
      fc.string({ unit: charsOf('!#$%&*+-<=>?@^|~'), minLength: 33, maxLength: 300 }),
      fc.string({ unit: charsOf('😀🚀🀄𝐀'), minLength: 9, maxLength: 120 }),
    );
    fc.assert(
      fc.property(longPiece, (text) => exactlyAsTiktoken(` ${text}`, UNLIMITED)),
      runs(400),
    );
  });

  it('never counts below tiktoken, and is exact when it says so, whatever the limits', () => {
    const limits = fc.record({
      exactTimeMs: fc.constant(1e9),
      scanChars: fc.integer({ min: 0, max: 400 }),
      maxSpanBytes: fc.integer({ min: 0, max: 40 }),
    });
    fc.assert(
      fc.property(soup, limits, (text, limit) => {
        const result = countWith(counter, text, frozenBudget(limit));
        const expected = reference(text, encoding);
        return result.exact ? result.tokens === expected : result.tokens >= expected;
      }),
      runs(1_000),
    );
  });

  it('bounds a piece too long to merge by its UTF-8 length, and the rest exactly', () => {
    const long = 'q'.repeat(2_000);
    const text = `Hello there, ${long} and goodbye.`;
    const result = countWith(counter, text, frozenBudget());
    const rest = reference('Hello there,', encoding) + reference(' and goodbye.', encoding);
    expect(result).toEqual({ tokens: rest + 1 + long.length, exact: false }); // ' ' + long
  });
});

describe('the whole-text cache', () => {
  const encoding: EncodingName = 'o200k_base';

  it('keeps a text from its second sighting on, with the same count', () => {
    const counter = new EncodingCounter(getEncodingCounter(encoding).vocab);
    const text = 'A system prompt that every request repeats, long enough to be cached. '.repeat(3);
    const counts = [0, 1, 2].map(() => countWith(counter, text, frozenBudget()));
    expect(counter.texts.size).toBe(1);
    for (const count of counts)
      expect(count).toEqual({ tokens: reference(text, encoding), exact: true });
  });

  it('never keeps a count that was bounded', () => {
    const counter = new EncodingCounter(getEncodingCounter(encoding).vocab);
    const text = `${'z'.repeat(300)} tail`;
    for (let i = 0; i < 3; i++) countWith(counter, text, frozenBudget({ maxSpanBytes: 100 }));
    expect(counter.texts.size).toBe(0);
    expect(countWith(counter, text, frozenBudget())).toEqual({
      tokens: reference(text, encoding),
      exact: true,
    });
  });

  it('drops the least recently used texts beyond its size', () => {
    const cache = new TextCountCache(1_000);
    const texts = Array.from({ length: 12 }, (_, i) =>
      `${i} `.padEnd(200, String.fromCharCode(97 + i)),
    );
    for (const text of texts) {
      cache.set(text, text.length);
      cache.set(text, text.length);
    }
    expect(cache.size).toBe(5); // 5 * 200 characters fit in 1,000
    expect(cache.get(texts[11])).toBe(200);
    expect(cache.get(texts[0])).toBe(-1);
  });
});

describe('the piece caches', () => {
  const bytesOf = (text: string) => new Uint8Array(Buffer.from(text, 'utf8'));

  it('never answer with a wrong count, however full (a model: a Map)', () => {
    const piece = fc.string({ unit: charsOf('abcdefgh中'), minLength: 1, maxLength: 20 });
    fc.assert(
      fc.property(
        fc.array(fc.tuple(piece, fc.integer({ min: 0, max: 255 })), { maxLength: 300 }),
        (ops) => {
          // Tiny caches, so that sets collide, evict and wrap around the ring.
          const pieces = new PieceCountCache(4, 64);
          const hot = new HotPieceCache(4);
          const model = new Map<string, number>();
          for (const [text, count] of ops) {
            const bytes = bytesOf(text);
            const hash = hashBytes(bytes, 0, bytes.length);
            const known = model.get(text);
            for (const found of [
              pieces.get(bytes, bytes.length, hash),
              hot.get(bytes, bytes.length, hash),
            ]) {
              if (found !== -1 && found !== known) return false;
            }
            // A piece's count never changes: the first one stays the truth.
            const truth = known ?? count;
            model.set(text, truth);
            pieces.set(bytes, bytes.length, hash, truth);
            hot.set(bytes, bytes.length, hash, truth);
            if (pieces.get(bytes, bytes.length, hash) !== truth) return false;
            if (bytes.length <= HotPieceCache.MAX_PIECE_BYTES) {
              if (hot.get(bytes, bytes.length, hash) !== truth) return false;
            }
          }
          return true;
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('bounds of text that is not tokenized', () => {
  it('utf8Length is the UTF-8 length, a lone surrogate counting 3 (sent as U+FFFD)', () => {
    fc.assert(
      fc.property(
        codeUnits,
        (text) => utf8Length(text, 0, text.length) === Buffer.byteLength(text),
      ),
      { numRuns: 1_000 },
    );
  });

  it('boundRest measures the UTF-8 length without splitting a surrogate pair between slices', () => {
    // Pairs start at odd indices, so one straddles the slice boundary at 65,536.
    const text = `x${'😀'.repeat(40_000)}`;
    expect(boundRest(text, 0, frozenBudget())).toBe(Buffer.byteLength(text));
    expect(boundRest(text, 1, frozenBudget())).toBe(Buffer.byteLength(text) - 1);
  });

  it('boundRest measures short and long texts alike', () => {
    for (const text of ['', 'a', 'é', '中', '😀', '\ud800', 'x'.repeat(31), 'é'.repeat(33)]) {
      expect(boundRest(text, 0, frozenBudget())).toBe(Buffer.byteLength(text));
    }
  });

  it('counts a megabyte of one letter as its UTF-8 length, without reading it into pieces', () => {
    const counter = getEncodingCounter('cl100k_base');
    const text = 'x'.repeat(1 << 20);
    expect(countWith(counter, text, frozenBudget())).toEqual({ tokens: 1 << 20, exact: false });
    // Even with no time at all: the first MEASURE_FREE_CHARS do not depend on the clock.
    const short = 'é'.repeat(MEASURE_FREE_CHARS / 2);
    const late = new WorkBudget(DEFAULT_ESTIMATOR_LIMITS, {
      now: (() => {
        let ms = 0;
        return () => (ms += 100);
      })(),
    });
    expect(countWith(counter, short, late)).toEqual({ tokens: 2 * short.length, exact: false });
  });
});

describe('loading', () => {
  it('loads each encoding once per process', () => {
    const first = getEncodingCounter('o200k_base');
    expect(getEncodingCounter('o200k_base')).toBe(first);
    expect(loadedEncodingCounter('o200k_base')).toBe(first);
  });
});
