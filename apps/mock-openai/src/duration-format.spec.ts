import { formatResetDuration } from './duration-format';

describe('formatResetDuration', () => {
  it.each([
    [0, '0s'],
    [-5, '0s'],
    [Number.NaN, '0s'],
    [0.2, '1ms'],
    [20, '20ms'],
    [999, '999ms'],
    [999.5, '1s'],
    [1000, '1s'],
    [1500, '1.5s'],
    [1234, '1.234s'],
    [17_020, '17.02s'],
    [59_999, '59.999s'],
    [60_000, '1m0s'],
    [360_000, '6m0s'],
    [90_500, '1m30.5s'],
    [3_600_000, '1h0m0s'],
    [3_723_004, '1h2m3.004s'],
  ])('%p ms → %p', (ms, expected) => {
    expect(formatResetDuration(ms)).toBe(expected);
  });
});
