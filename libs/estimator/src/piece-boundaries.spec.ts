import { countTextBounded, type EnginePolicy } from './bounded-text-counter';
import { ENCODING_NAMES } from './encoding-for-model';
import {
  CLS_AMBIGUOUS,
  CLS_APOS,
  CLS_BLANK,
  CLS_DIGIT,
  CLS_LETTER,
  CLS_NEWLINE,
  CLS_OTHER,
  CLS_PUNCT,
  CODE_UNIT_CLASSES,
  classifyCodeUnit,
} from './piece-boundaries';
import { referenceCount } from './testing/reference-counts';
import { edgeCaseText, mixedCorpus, seededRandom } from './testing/text-corpus';
import { getTokenizerEngine } from './tokenizer-engines';
import { DEFAULT_ESTIMATOR_LIMITS, WorkBudget } from './work-budget';

const cls = (ch: string) => classifyCodeUnit(ch.charCodeAt(0));

describe('classifyCodeUnit', () => {
  it('classifies ASCII', () => {
    expect(['a', 'Z', 'q'].map(cls)).toEqual([CLS_LETTER, CLS_LETTER, CLS_LETTER]);
    expect(['0', '9'].map(cls)).toEqual([CLS_DIGIT, CLS_DIGIT]);
    expect(cls("'")).toBe(CLS_APOS);
    expect(['!', '/', '~', '\u0000', '\u001f', '\u007f'].map(cls)).toEqual(
      Array(6).fill(CLS_PUNCT),
    );
    expect([' ', '\t', '\u000b', '\u000c'].map(cls)).toEqual(Array(4).fill(CLS_BLANK));
    expect(['\n', '\r'].map(cls)).toEqual([CLS_NEWLINE, CLS_NEWLINE]);
  });

  it('classifies the stable non-ASCII ranges and leaves the rest unknown', () => {
    expect(['é', 'Ж', 'α', '中', 'の', 'カ', '한'].map(cls)).toEqual(Array(7).fill(CLS_LETTER));
    expect(['，', '。', '「', '—', '…', '！'].map(cls)).toEqual(Array(6).fill(CLS_PUNCT));
    expect(['\u00a0', '\u3000', '\u2003', '\u2028'].map(cls)).toEqual(Array(4).fill(CLS_BLANK));
    expect(['\u0085', '\ufeff'].map(cls)).toEqual([CLS_AMBIGUOUS, CLS_AMBIGUOUS]);
    // Numbers, marks, letters outside the listed ranges, surrogates: unknown.
    expect(['٣', '²', '\u0301', 'ſ', '\ud83d', '\ude00', '々', '〇'].map(cls)).toEqual(
      Array(8).fill(CLS_OTHER),
    );
  });

  it('agrees with the lookup table the scan uses', () => {
    for (let c = 0; c < 0x10000; c += 7) expect(CODE_UNIT_CLASSES[c]).toBe(classifyCodeUnit(c));
  });
});

/** Count with a tokenizer call for every span between cut points, without time limits. */
function countSpanBySpan(
  text: string,
  encoding: (typeof ENCODING_NAMES)[number],
  policy: EnginePolicy,
) {
  const limits = { ...DEFAULT_ESTIMATOR_LIMITS, exactTimeMs: 1e9, scanChars: 1e9 };
  return countTextBounded(
    text,
    encoding,
    policy,
    new WorkBudget(limits, { splitAtEveryCut: true }),
  );
}

describe.each(ENCODING_NAMES)('safe cut points with %s', (encoding) => {
  const policies: EnginePolicy[] = ['auto', 'gpt-tokenizer', 'tiktoken'];

  it('split the text so that the parts add up to the whole-text count', () => {
    const corpus = mixedCorpus(7, 8, 20, 2000);
    for (const policy of policies) {
      for (const { kind, text } of corpus) {
        expect({ kind, policy, text, ...countSpanBySpan(text, encoding, policy) }).toEqual({
          kind,
          policy,
          text,
          tokens: referenceCount(text, encoding),
          exact: true,
        });
      }
    }
  });

  it('hold on random mixtures of edge-case characters', () => {
    const random = seededRandom(99);
    for (let i = 0; i < 400; i++) {
      const text = edgeCaseText(random, 5 + Math.floor(random() * 200));
      const policy = policies[i % policies.length];
      expect({ policy, text, ...countSpanBySpan(text, encoding, policy) }).toEqual({
        policy,
        text,
        tokens: referenceCount(text, encoding),
        exact: true,
      });
    }
  });

  it('really cut ordinary text into many parts', () => {
    const engine = getTokenizerEngine('tiktoken', encoding);
    const spy = jest.spyOn(engine, 'count');
    try {
      const text = "Hello, world! It's 12345678 o'clock.\n\nNew   para: 中文，测试。 x=42; y='abc'";
      expect(countSpanBySpan(text, encoding, 'tiktoken').tokens).toBe(
        referenceCount(text, encoding),
      );
      expect(spy.mock.calls.length).toBeGreaterThan(15);
    } finally {
      spy.mockRestore();
    }
  });
});
