import { extractUsage } from './usage';

describe('extractUsage', () => {
  it('reads chat completion usage', () => {
    expect(
      extractUsage({ usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 } }),
    ).toEqual({ promptTokens: 10, completionTokens: 5, totalTokens: 15 });
  });

  it('reads embeddings usage (no completion)', () => {
    expect(extractUsage({ usage: { prompt_tokens: 8, total_tokens: 8 } })).toEqual({
      promptTokens: 8,
      completionTokens: 0,
      totalTokens: 8,
    });
  });

  it('reads Responses API usage', () => {
    expect(
      extractUsage({ usage: { input_tokens: 7, output_tokens: 3, total_tokens: 10 } }),
    ).toEqual({ promptTokens: 7, completionTokens: 3, totalTokens: 10 });
    expect(extractUsage({ usage: { input_tokens: 7, output_tokens: 3 } })?.totalTokens).toBe(10);
  });

  it.each([
    [null],
    [{}],
    [{ usage: null }],
    [{ usage: { total_tokens: 'x' } }],
    ['text'],
    [{ usage: {} }],
  ])('returns undefined for %p', (body) => {
    expect(extractUsage(body)).toBeUndefined();
  });

  it('ignores negative or non-finite figures', () => {
    expect(extractUsage({ usage: { total_tokens: -1 } })).toBeUndefined();
    expect(extractUsage({ usage: { total_tokens: Infinity } })).toBeUndefined();
  });
});
