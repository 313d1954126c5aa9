import {
  BMP_CLASSES,
  CP_LETTER,
  CP_LOWERISH,
  CP_NEWLINE,
  CP_NUMBER,
  CP_OTHER,
  CP_SPACE,
  CP_SURROGATE,
  CP_UPPERISH,
  CP_WIDE,
  astralClass,
  astralWork,
  classAt,
} from './code-point-classes';
import { ENCODING_NAMES } from './encoding-for-model';
import { referenceCount } from './testing/reference-counts';
import { TokenCounter } from './token-counter';

const at = (text: string, i = 0) => classAt(text, i, text.length);

describe('code point classes', () => {
  it('classify ASCII', () => {
    expect(at('a')).toBe(CP_LETTER | CP_LOWERISH);
    expect(at('Z')).toBe(CP_LETTER | CP_UPPERISH);
    expect(at('7')).toBe(CP_NUMBER);
    expect(at(' ')).toBe(CP_SPACE);
    expect(at('\n')).toBe(CP_SPACE | CP_NEWLINE);
    expect(at('\r')).toBe(CP_SPACE | CP_NEWLINE);
    expect(at('\t')).toBe(CP_SPACE);
    expect(at("'")).toBe(CP_OTHER);
    expect(at('!')).toBe(CP_OTHER);
  });

  it('classify letters that are both upper- and lower-ish, marks, numbers', () => {
    expect(at('中')).toBe(CP_LETTER | CP_UPPERISH | CP_LOWERISH); // Lo
    expect(at('ʰ')).toBe(CP_LETTER | CP_UPPERISH | CP_LOWERISH); // Lm
    expect(at('ǅ')).toBe(CP_LETTER | CP_UPPERISH); // Lt
    expect(at('\u0301')).toBe(CP_UPPERISH | CP_LOWERISH); // Mn: in both, not a letter
    expect(at('٣')).toBe(CP_NUMBER);
    expect(at('Ⅻ')).toBe(CP_NUMBER);
  });

  it('use White_Space, as Rust does, not JavaScript `\\s`', () => {
    expect(at('\u0085')).toBe(CP_SPACE); // JavaScript's \s misses it
    expect(at('\ufeff')).toBe(CP_OTHER); // JavaScript's \s includes it
    expect(at('\u00a0')).toBe(CP_SPACE);
    expect(at('\u3000')).toBe(CP_SPACE);
  });

  it('read surrogate pairs as one astral code point, and lone surrogates as U+FFFD', () => {
    expect(at('😀')).toBe(CP_OTHER | CP_WIDE);
    expect(at('𝐀')).toBe(CP_LETTER | CP_UPPERISH | CP_WIDE); // MATHEMATICAL BOLD CAPITAL A
    expect(at('𠀀')).toBe(CP_LETTER | CP_UPPERISH | CP_LOWERISH | CP_WIDE);
    expect(at('\ud800x')).toBe(CP_OTHER);
    expect(at('x\udc00', 1)).toBe(CP_OTHER);
    expect(BMP_CLASSES[0xd800]).toBe(CP_SURROGATE);
  });

  it('treat code points tiktoken does not know (Unicode 17) as unassigned', () => {
    expect(BMP_CLASSES[0xa7ce]).toBe(CP_OTHER);
    expect(astralClass(0x10940)).toBe(CP_OTHER);
    expect(astralClass(0x323b0)).toBe(CP_OTHER);
    expect(astralClass(0x20000)).not.toBe(CP_OTHER); // CJK Extension B: known
  });

  it('count each astral code point classified for the first time as work', () => {
    const before = astralWork.classified;
    astralClass(0x1f9ff);
    astralClass(0x1f9ff);
    expect(astralWork.classified - before).toBeLessThanOrEqual(1);
  });
});

/*
 * Code points in context, counted by the built-in counter and by tiktoken: a class that
 * disagrees with tiktoken's Unicode tables shows up as a count that differs (this is how the
 * Unicode 17 additions were found). Checked 256 at a time, one by one only when a group
 * differs. By default every code point of planes 0 and 1 and every third of planes 2 and 3
 * (CJK ideographs, almost all alike), with o200k_base, whose pattern uses every class;
 * ESTIMATOR_UNICODE_SWEEP=full checks every code point with both encodings (a minute).
 */
const FULL_SWEEP = process.env.ESTIMATOR_UNICODE_SWEEP === 'full';

describe.each(FULL_SWEEP ? ENCODING_NAMES : (['o200k_base'] as const))(
  'code points in context, counted with %s',
  (encoding) => {
    const counter = new TokenCounter({ limits: { exactTimeMs: 1e6, scanChars: 1e9 } });
    const model = encoding === 'o200k_base' ? 'gpt-4o' : 'gpt-4';
    // Next to letters of both cases, digits, itself, a contraction and newlines.
    const context = (ch: string) => `a${ch}b ${ch}${ch}'s A${ch}B 1${ch}\n${ch}`;
    // Planes 0-2, the assigned start of plane 3 (CJK extensions G-J), variation selectors.
    const ranges: ReadonlyArray<readonly [number, number, number]> = [
      [0, 0xd7ff, 1],
      [0xe000, 0x1ffff, 1],
      [0x20000, 0x2ffff, FULL_SWEEP ? 1 : 3],
      [0x30000, 0x3347f, FULL_SWEEP ? 1 : 3],
      [0xe0000, 0xe01ef, 1],
    ];

    it('agree with tiktoken', () => {
      const differing: string[] = [];
      for (const [from, to, step] of ranges) {
        for (let base = from; base <= to; base += 256 * step) {
          const cps: number[] = [];
          for (let cp = base; cp < Math.min(base + 256 * step, to + 1); cp += step) cps.push(cp);
          const texts = cps.map((cp) => context(String.fromCodePoint(cp)));
          const group = texts.join('\t');
          if (counter.countText(group, model).tokens === referenceCount(group, encoding)) continue;
          for (const text of texts) {
            if (counter.countText(text, model).tokens !== referenceCount(text, encoding)) {
              differing.push(JSON.stringify(text));
            }
          }
        }
      }
      expect(differing).toEqual([]);
    });
  },
);
