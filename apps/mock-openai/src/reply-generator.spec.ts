import { countText } from './exact-token-count';
import { ReplyGenerator } from './reply-generator';

describe('ReplyGenerator', () => {
  const generator = new ReplyGenerator();

  it.each([
    'gpt-4o-mini',
    'gpt-4.1',
    'gpt-3.5-turbo',
    'gpt-4',
    'text-davinci-003',
    'unknown-model',
  ])('gives exactly the requested number of tokens for %s', (model) => {
    for (const tokens of [1, 2, 7, 16, 100, 1000]) {
      const reply = generator.generate(model, tokens);
      expect(reply.tokens).toBe(tokens);
      expect(countText(reply.text, model)).toEqual({ tokens, exact: true });
      expect(reply.pieces.join('')).toBe(reply.text);
    }
  });

  it('streams one token per piece', () => {
    const reply = generator.generate('gpt-4o-mini', 40);
    expect(reply.pieces).toHaveLength(40);
    for (const piece of reply.pieces) expect(countText(piece, 'gpt-4o-mini').tokens).toBe(1);
  });

  it('is deterministic and varies by variant', () => {
    const fresh = new ReplyGenerator();
    expect(fresh.generate('gpt-4o', 12, 0).text).toBe(generator.generate('gpt-4o', 12, 0).text);
    expect(generator.generate('gpt-4o', 12, 1).text).not.toBe(
      generator.generate('gpt-4o', 12, 0).text,
    );
    expect(generator.generate('gpt-4o', 12, 1).tokens).toBe(12);
  });

  it('gives an empty reply for zero tokens', () => {
    expect(generator.generate('gpt-4o', 0)).toEqual({ text: '', pieces: [], tokens: 0 });
  });
});
