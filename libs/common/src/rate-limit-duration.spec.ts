import { formatRateLimitDuration } from './rate-limit-duration';

describe('formatRateLimitDuration', () => {
  it.each([
    [0, '0ms'],
    [20, '20ms'],
    [999.2, '1s'],
    [1500, '1.5s'],
    [60_000, '1m0s'],
    [360_000, '6m0s'],
    [3_723_500, '1h2m3.5s'],
    [-5, '0ms'],
  ])('%p ms → %s', (ms, text) => {
    expect(formatRateLimitDuration(ms)).toBe(text);
  });
});
