import { RateLimitCounter } from './rate-limit-counter';

describe('RateLimitCounter', () => {
  let now = 0;
  const clock = () => now;

  beforeEach(() => {
    now = 1_000_000;
  });

  it('starts full', () => {
    const counter = new RateLimitCounter(clock);
    expect(counter.snapshot(600)).toEqual({ limit: 600, remaining: 600, resetMs: 0 });
  });

  it('reports the time until full again, refilling limit per minute', () => {
    const counter = new RateLimitCounter(clock);
    counter.consume(60, 600); // 600/min = 10/s: 60 used = 6 s to refill
    expect(counter.snapshot(600)).toEqual({ limit: 600, remaining: 540, resetMs: 6000 });
    now += 3000;
    expect(counter.snapshot(600)).toEqual({ limit: 600, remaining: 570, resetMs: 3000 });
    now += 10_000;
    expect(counter.snapshot(600)).toEqual({ limit: 600, remaining: 600, resetMs: 0 });
  });

  it('never goes below zero remaining or past one minute of reset', () => {
    const counter = new RateLimitCounter(clock);
    counter.consume(5000, 600);
    expect(counter.snapshot(600)).toEqual({ limit: 600, remaining: 0, resetMs: 60_000 });
  });

  it('says how long until an amount fits', () => {
    const counter = new RateLimitCounter(clock);
    expect(counter.waitFor(600, 600)).toBe(0);
    expect(counter.waitFor(601, 600)).toBe(100);
    counter.consume(600, 600);
    expect(counter.waitFor(1, 600)).toBe(100);
    now += 100;
    expect(counter.waitFor(1, 600)).toBe(0);
  });

  it('follows a lowered limit', () => {
    const counter = new RateLimitCounter(clock);
    counter.consume(500, 1000);
    expect(counter.snapshot(100)).toEqual({ limit: 100, remaining: 0, resetMs: 60_000 });
  });

  it('reset empties it', () => {
    const counter = new RateLimitCounter(clock);
    counter.consume(10, 100);
    counter.reset();
    expect(counter.snapshot(100).remaining).toBe(100);
  });
});
