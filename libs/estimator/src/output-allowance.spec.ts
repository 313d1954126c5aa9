import { outputAllowance } from './output-allowance';

describe('outputAllowance', () => {
  it('prefers max_completion_tokens, then max_tokens, then the default', () => {
    expect(outputAllowance({ max_completion_tokens: 300, max_tokens: 100 }, 4096)).toBe(300);
    expect(outputAllowance({ max_tokens: 100 }, 4096)).toBe(100);
    expect(outputAllowance({ max_completion_tokens: null, max_tokens: 100 }, 4096)).toBe(100);
    expect(outputAllowance({}, 4096)).toBe(4096);
    expect(outputAllowance({ max_tokens: null, max_completion_tokens: null }, 512)).toBe(512);
  });

  it('multiplies by n when more than one choice is asked for', () => {
    expect(outputAllowance({ max_tokens: 100, n: 3 }, 4096)).toBe(300);
    expect(outputAllowance({ n: 2 }, 1000)).toBe(2000);
    expect(outputAllowance({ max_tokens: 100, n: 1 }, 4096)).toBe(100);
    expect(outputAllowance({ max_tokens: 100, n: null }, 4096)).toBe(100);
    expect(outputAllowance({ max_tokens: 100, n: 0 }, 4096)).toBe(100);
  });

  it('ignores values that are not token counts', () => {
    const odd = { max_completion_tokens: -5, max_tokens: Number.NaN } as const;
    expect(outputAllowance(odd, 64)).toBe(64);
    expect(outputAllowance({ max_tokens: 10.7, n: 2.9 }, 64)).toBe(20);
  });
});
