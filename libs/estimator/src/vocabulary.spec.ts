import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { ENCODING_NAMES } from './encoding-for-model';
import { referenceRanks } from './testing/reference-counts';
import { VocabularyBuilder, encoderFilePath, hashBytes, loadVocabulary } from './vocabulary';

const latin1 = (bytes: Uint8Array) => Buffer.from(bytes).toString('latin1');
const bytesOf = (key: string) => new Uint8Array(Buffer.from(key, 'latin1'));

describe.each(ENCODING_NAMES)('the %s vocabulary', (encoding) => {
  const vocab = loadVocabulary(encoding);
  const ranks = referenceRanks(encoding);
  const tokens = [...ranks.keys()];

  it("holds every one of tiktoken's tokens at its rank, and no more", () => {
    const wrong: string[] = [];
    for (const [key, rank] of ranks) {
      const bytes = bytesOf(key);
      if (vocab.rankOf(bytes, 0, bytes.length) !== rank) wrong.push(JSON.stringify(key));
    }
    expect(wrong).toEqual([]);
    expect(vocab.size).toBe(ranks.size);
  });

  it('finds no rank for byte strings that are not tokens', () => {
    // Random bytes, and tokens with a byte added or cut: near misses that share a prefix.
    const nearMiss = fc
      .tuple(fc.integer({ min: 0, max: tokens.length - 1 }), fc.integer({ min: 0, max: 255 }))
      .chain(([i, byte]) =>
        fc.constantFrom(tokens[i] + String.fromCharCode(byte), tokens[i].slice(0, -1) || 'x'),
      )
      .map(bytesOf);
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ minLength: 1, maxLength: 12 }), nearMiss), (bytes) => {
        return vocab.rankOf(bytes, 0, bytes.length) === (ranks.get(latin1(bytes)) ?? -1);
      }),
      { numRuns: 5_000 },
    );
  });

  it('knows every single byte as a token', () => {
    for (let byte = 0; byte < 256; byte++) {
      expect(vocab.byteRank(byte)).toBe(ranks.get(String.fromCharCode(byte)));
    }
  });

  it('answers a merged pair as the lookup of its bytes would, cached or not', () => {
    // Pairs of real tokens, asked twice each (the second time from the pair cache), in an
    // order where unrelated pairs overwrite each other's cache slots.
    const pair = fc.tuple(
      fc.integer({ min: 0, max: tokens.length - 1 }),
      fc.integer({ min: 0, max: tokens.length - 1 }),
    );
    fc.assert(
      fc.property(fc.array(pair, { minLength: 1, maxLength: 40 }), (pairs) => {
        for (const order of [pairs, [...pairs].reverse()]) {
          for (const [left, right] of order) {
            const key = tokens[left] + tokens[right];
            const piece = bytesOf(key);
            const leftRank = ranks.get(tokens[left]) as number;
            const rightRank = ranks.get(tokens[right]) as number;
            const merged = vocab.mergedRank(leftRank, rightRank, piece, 0, piece.length);
            if (merged !== (ranks.get(key) ?? -1)) return false;
          }
        }
        return true;
      }),
      { numRuns: 300 },
    );
  });

  it('is built the same in small steps as at once', () => {
    const builder = new VocabularyBuilder(encoding, readFileSync(encoderFilePath(encoding)));
    let steps = 0;
    while (!builder.step(7_777)) steps++;
    expect(steps).toBeGreaterThan(10);
    const stepped = builder.result();
    expect(stepped.size).toBe(vocab.size);
    for (let i = 0; i < tokens.length; i += 97) {
      const bytes = bytesOf(tokens[i]);
      expect(stepped.rankOf(bytes, 0, bytes.length)).toBe(ranks.get(tokens[i]));
    }
  });
});

describe('VocabularyBuilder', () => {
  const file = (text: string) => new Uint8Array(Buffer.from(text, 'utf8'));

  it('reads a small encoder file', () => {
    // Tokens "a", "b", "ab" (base64 YQ==, Yg==, YWI=).
    const builder = new VocabularyBuilder('o200k_base', file('{"bpe_ranks":"! 0 YQ== Yg== YWI="}'));
    expect(builder.step(Number.MAX_SAFE_INTEGER)).toBe(true);
    const vocab = builder.result();
    const ab = file('ab');
    expect(vocab.size).toBe(3);
    expect(vocab.rankOf(ab, 0, 2)).toBe(2);
    expect(vocab.rank(ab, 0, 2, hashBytes(ab, 0, 2))).toBe(2);
    expect(vocab.rankOf(file('ba'), 0, 2)).toBe(-1);
    expect(vocab.rankOf(file('abc'), 0, 3)).toBe(-1);
  });

  it('rejects files it cannot read, rather than counting wrongly', () => {
    expect(() => new VocabularyBuilder('o200k_base', file('{"pat_str":"x"}'))).toThrow(/bpe_ranks/);
    expect(() => new VocabularyBuilder('o200k_base', file('{"bpe_ranks":"! 5 YQ=="}'))).toThrow(
      /start at 0/,
    );
    const bad = new VocabularyBuilder('o200k_base', file('{"bpe_ranks":"! 0 Y*=="}'));
    expect(() => bad.step(10)).toThrow(/base64/);
    const partial = new VocabularyBuilder('o200k_base', file('{"bpe_ranks":"! 0 YQ== Yg=="}'));
    partial.step(1);
    expect(() => partial.result()).toThrow(/not complete/);
  });
});
