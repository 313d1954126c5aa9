import fc from 'fast-check';
import { getEncodingCounter } from './builtin-counter';
import { bytePairCount } from './byte-pair-merge';
import { ENCODING_NAMES } from './encoding-for-model';
import { referenceCount, referenceRanks } from './testing/reference-counts';

/**
 * tiktoken's `_byte_pair_merge`, written as plainly as possible over tiktoken's own table of
 * ranks: merge the adjacent pair whose bytes have the lowest rank (the leftmost on a tie)
 * until no pair is a token. Quadratic, but obviously the algorithm.
 */
function referenceMerge(ranks: ReadonlyMap<string, number>, piece: Uint8Array): number {
  const text = Buffer.from(piece).toString('latin1'); // one character per byte
  const starts = Array.from({ length: piece.length + 1 }, (_, i) => i);
  for (;;) {
    let best = -1;
    let at = -1;
    for (let i = 0; i + 2 < starts.length; i++) {
      const rank = ranks.get(text.slice(starts[i], starts[i + 2]));
      if (rank !== undefined && (best < 0 || rank < best)) {
        best = rank;
        at = i;
      }
    }
    if (at < 0) return starts.length - 1;
    starts.splice(at + 1, 1);
  }
}

describe.each(ENCODING_NAMES)('bytePairCount with %s', (encoding) => {
  const vocab = getEncodingCounter(encoding).vocab;
  const ranks = referenceRanks(encoding);
  const tokens = [...ranks.keys()];

  /** Pieces made of whole tokens glued together: they merge a long way, as real text does. */
  const tokenRun = (minTokens: number, maxTokens: number) =>
    fc
      .array(fc.integer({ min: 0, max: tokens.length - 1 }), {
        minLength: minTokens,
        maxLength: maxTokens,
      })
      .map((picks) => new Uint8Array(Buffer.from(picks.map((i) => tokens[i]).join(''), 'latin1')));
  const randomBytes = (min: number, max: number) =>
    fc.uint8Array({ minLength: min, maxLength: max });
  /** Bytes drawn from a few letters: many pairs are tokens, and many ties between equal pairs. */
  const fewLetters = (min: number, max: number) =>
    fc
      .array(fc.constantFrom(0x61, 0x62, 0x20, 0x65, 0x6e), { minLength: min, maxLength: max })
      .map((bytes) => Uint8Array.from(bytes));

  const agreesWithReference = (piece: Uint8Array) =>
    piece.length < 2 || bytePairCount(vocab, piece, piece.length) === referenceMerge(ranks, piece);

  it('merges short pieces (the array scan, up to 32 bytes) as tiktoken does', () => {
    fc.assert(
      fc.property(
        fc.oneof(tokenRun(1, 8), randomBytes(2, 32), fewLetters(2, 32)),
        agreesWithReference,
      ),
      { numRuns: 2_000 },
    );
  });

  it('merges long pieces (the heap, over 32 bytes) as tiktoken does', () => {
    fc.assert(
      fc.property(
        fc.oneof(tokenRun(8, 50), randomBytes(33, 200), fewLetters(33, 200)),
        agreesWithReference,
      ),
      { numRuns: 300 },
    );
  });

  it('counts a one-piece text as tiktoken does, on both sides of 32 bytes', () => {
    // Letters only: one piece in both patterns, and rarely a single token.
    const word = fc.string({
      unit: fc.constantFrom(...'qwertyuiopasdfghjklzxcvbnm'),
      minLength: 2,
      maxLength: 120,
    });
    fc.assert(
      fc.property(word, (text) => {
        const bytes = new Uint8Array(Buffer.from(text, 'utf8'));
        const count =
          vocab.rankOf(bytes, 0, bytes.length) >= 0 ? 1 : bytePairCount(vocab, bytes, bytes.length);
        return count === referenceCount(text, encoding);
      }),
      { numRuns: 1_000 },
    );
  });

  it('handles the lengths at the switch between scan and heap, and a very long piece', () => {
    for (const n of [2, 3, 31, 32, 33, 34, 64, 65, 1_500]) {
      const piece = Uint8Array.from({ length: n }, (_, i) => 0x61 + ((i * 7) % 5));
      expect({ n, count: bytePairCount(vocab, piece, n) }).toEqual({
        n,
        count: referenceMerge(ranks, piece),
      });
    }
  });
});
