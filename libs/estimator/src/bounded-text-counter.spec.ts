import { countTextBounded, type EnginePolicy } from './bounded-text-counter';
import { ENCODING_NAMES, type EncodingName } from './encoding-for-model';
import { referenceCount } from './testing/reference-counts';
import { edgeCaseText, englishText, mixedCorpus, seededRandom } from './testing/text-corpus';
import {
  DEFAULT_ESTIMATOR_LIMITS,
  MEASURE_CLOCK_CHARS,
  MEASURE_FREE_CHARS,
  WorkBudget,
  type EstimatorLimits,
} from './work-budget';

const utf8 = (text: string) => Buffer.byteLength(text, 'utf8');

/** A budget whose clock only moves when the test says so (no timing in specs). */
function budgetWith(limits: Partial<EstimatorLimits> = {}, clock = { ms: 0 }) {
  return new WorkBudget({ ...DEFAULT_ESTIMATOR_LIMITS, ...limits }, { now: () => clock.ms });
}

function count(
  text: string,
  encoding: EncodingName,
  limits: Partial<EstimatorLimits> = {},
  policy: EnginePolicy = 'auto',
) {
  return countTextBounded(text, encoding, policy, budgetWith(limits));
}

describe.each(ENCODING_NAMES)('countTextBounded with %s', (encoding) => {
  describe('ordinary text', () => {
    it('is counted exactly, as the reference tokenizer does, by every policy', () => {
      const corpus = mixedCorpus(424242, 6, 100, 20_000);
      for (const policy of ['auto', 'gpt-tokenizer', 'tiktoken'] as const) {
        for (const { kind, text } of corpus) {
          expect({ kind, policy, ...count(text, encoding, {}, policy) }).toEqual({
            kind,
            policy,
            tokens: referenceCount(text, encoding),
            exact: true,
          });
        }
      }
    });

    it('counts nothing in an empty string', () => {
      expect(count('', encoding)).toEqual({ tokens: 0, exact: true });
    });

    it('counts special-token markup as text and never throws', () => {
      const text = 'a <|endoftext|> b <|im_start|>user\nhi<|im_end|> <|fim_middle|>';
      expect(count(text, encoding)).toEqual({
        tokens: referenceCount(text, encoding),
        exact: true,
      });
    });

    it('is exact on the characters gpt-tokenizer gets wrong, by routing them to tiktoken', () => {
      for (const text of ['\ufeffBOM\ufeff \ufeff', 'x\u0085y \u0085\u0085 z', '\ufeff\n']) {
        expect(count(text, encoding, {}, 'gpt-tokenizer')).toEqual({
          tokens: referenceCount(text, encoding),
          exact: true,
        });
      }
    });

    it('counts emoji and lone surrogates exactly', () => {
      const text = '👩‍💻 ok \ud800 lone \udc00 x\ud83d';
      expect(count(text, encoding)).toEqual({
        tokens: referenceCount(text, encoding),
        exact: true,
      });
    });
  });

  describe('bounded path', () => {
    // Long runs with no cut point inside, small enough for the reference to count.
    const pathological: Record<string, string> = {
      'one repeated letter': 'a'.repeat(6_000),
      'repeated CJK': '中'.repeat(2_000),
      'repeated punctuation': '!'.repeat(5_000),
      'a long whitespace run': ' '.repeat(5_000) + 'x',
      'a letter blob inside prose': `Intro text. ${'qx'.repeat(3_000)} and the question?`,
    };

    it.each(Object.entries(pathological))(
      'bounds %s from above and says it is not exact',
      (_name, text) => {
        const result = count(text, encoding);
        expect(result.exact).toBe(false);
        expect(result.tokens).toBeGreaterThanOrEqual(referenceCount(text, encoding));
        expect(result.tokens).toBeLessThanOrEqual(utf8(text));
      },
    );

    it('counts exactly around a long span and bounds only the span', () => {
      const before = 'Please summarise the following. ';
      const blob = 'z'.repeat(3_000);
      const after = ' Thanks, and keep it short.';
      const result = count(before + blob + after, encoding);
      expect(result.exact).toBe(false);
      // The blob's cut points are at its edges, so only the blob is bounded.
      const expected =
        referenceCount(before.trimEnd(), encoding) +
        utf8(' ' + blob) +
        referenceCount(after, encoding);
      expect(result.tokens).toBe(expected);
    });

    it('bounds a huge run of one character by its UTF-8 length without tokenizing it', () => {
      const text = 'b'.repeat(1 << 20);
      expect(count(text, encoding)).toEqual({ tokens: 1 << 20, exact: false });
      const cjk = '字'.repeat(1 << 18);
      expect(count(cjk, encoding)).toEqual({ tokens: 3 << 18, exact: false });
    });

    it('stops tokenizing when the time is up and bounds the rest by its UTF-8 length', () => {
      const text = englishText(seededRandom(5), 30_000);
      // Less than the worst-case cost of the text, so that the clock is read before the end.
      const limits = { ...DEFAULT_ESTIMATOR_LIMITS, exactTimeMs: 0.5 };
      // Every reading of the clock sees another 0.3 ms gone: the time is up at the second
      // reading after the guaranteed part, well within the grace for measuring the rest.
      let ms = 0;
      const ticking = new WorkBudget(limits, { now: () => (ms += 0.3) });
      const result = countTextBounded(text, encoding, 'auto', ticking);
      expect(result.exact).toBe(false);
      expect(result.tokens).toBeGreaterThanOrEqual(referenceCount(text, encoding));
      expect(result.tokens).toBeLessThanOrEqual(utf8(text));
      // A clock that never moves leaves the same text exact.
      const frozen = new WorkBudget(limits, { now: () => 0 });
      expect(countTextBounded(text, encoding, 'auto', frozen)).toEqual({
        tokens: referenceCount(text, encoding),
        exact: true,
      });
    });

    it('measures the rest, however long, while measuring runs at one-byte-string speed', () => {
      const text = englishText(seededRandom(8), MEASURE_FREE_CHARS + 300_000);
      // The time is up at the first reading of the clock, which then stands still: measuring
      // takes no time at all, so it goes on past the free allowance to the end.
      let ms = 0;
      const stopped = new WorkBudget(
        { ...DEFAULT_ESTIMATOR_LIMITS, exactTimeMs: 0.5 },
        { now: () => (ms === 0 ? (ms = 10) - 10 : ms) },
      );
      const result = countTextBounded(text, encoding, 'auto', stopped);
      expect(result.exact).toBe(false);
      expect(result.tokens).toBeGreaterThanOrEqual(referenceCount(text, encoding));
      expect(result.tokens).toBeLessThanOrEqual(utf8(text));
    });

    it('bounds by 3 bytes per UTF-16 unit what is past the free allowance once measuring is slow and the grace is gone', () => {
      const text = englishText(seededRandom(7), MEASURE_FREE_CHARS + 200_000);
      expect(utf8(text)).toBe(text.length); // ASCII: each measured unit counts 1, not 3
      const limits = { ...DEFAULT_ESTIMATOR_LIMITS, exactTimeMs: 0.5 };
      // Every reading of the clock sees another 5 ms gone.
      let ms = 0;
      const ticking = new WorkBudget(limits, { now: () => (ms += 5) });
      const result = countTextBounded(text, encoding, 'auto', ticking);
      expect(result.exact).toBe(false);
      expect(result.tokens).toBeGreaterThan(utf8(text));
      // The free allowance was measured, in slices of MEASURE_CLOCK_CHARS (less the last one,
      // which the calls' own share pushes out): 2 bytes less than 3 per unit for each unit.
      const measured = MEASURE_FREE_CHARS - MEASURE_CLOCK_CHARS;
      expect(result.tokens).toBeLessThanOrEqual(3 * text.length - 2 * measured);
    });

    it('bounds a text by its UTF-8 length when there is no time at all', () => {
      const text = 'hello world';
      const budget = budgetWith({ exactTimeMs: 0 });
      expect(countTextBounded(text, encoding, 'auto', budget)).toEqual({
        tokens: utf8(text),
        exact: false,
      });
    });

    it('bounds the unread rest when the scan budget runs out', () => {
      const text = englishText(seededRandom(6), 5_000);
      const result = count(text, encoding, { scanChars: 1_000 });
      expect(result.exact).toBe(false);
      expect(result.tokens).toBeGreaterThanOrEqual(referenceCount(text, encoding));
      expect(result.tokens).toBeLessThanOrEqual(3 * text.length);
    });

    it('is never below the reference, whatever the limits', () => {
      const random = seededRandom(31337);
      const corpus = mixedCorpus(17, 4, 10, 3_000).map((entry) => entry.text);
      for (let i = 0; i < 200; i++)
        corpus.push(edgeCaseText(random, 1 + Math.floor(random() * 300)));
      const policies: EnginePolicy[] = ['auto', 'gpt-tokenizer', 'tiktoken'];
      corpus.forEach((text, i) => {
        const clock = { ms: 0 };
        const budget = new WorkBudget(
          {
            exactTimeMs: 1 + (i % 5),
            scanChars: 50 + Math.floor(random() * 4_000),
            maxSpanBytes: 1 + Math.floor(random() * 40),
          },
          { now: () => (clock.ms += random()) },
        );
        const result = countTextBounded(text, encoding, policies[i % 3], budget);
        const exact = referenceCount(text, encoding);
        expect({ text, tokens: result.tokens >= exact }).toEqual({ text, tokens: true });
        if (result.exact) expect(result.tokens).toBe(exact);
      });
    });
  });
});
