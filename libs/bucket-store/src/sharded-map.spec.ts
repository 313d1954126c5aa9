import { ShardedMap, fnv1a } from './sharded-map';

interface Item {
  readonly key: string;
  readonly n: number;
}

const item = (key: string, n = 0): Item => ({ key, n });

describe('ShardedMap', () => {
  it('behaves as a map', () => {
    const map = new ShardedMap<Item>(8);
    for (let i = 0; i < 100; i++) map.set(item(`k${i}`, i));
    map.set(item('k5', 500));
    expect(map.size).toBe(100);
    expect(map.get('k5')).toEqual(item('k5', 500));
    expect(map.get('nope')).toBeUndefined();
    expect(map.delete('k5')).toBe(true);
    expect(map.delete('k5')).toBe(false);
    expect(map.size).toBe(99);
  });

  it('accepts only a power-of-two shard count', () => {
    expect(() => new ShardedMap(0)).toThrow(RangeError);
    expect(() => new ShardedMap(12)).toThrow(RangeError);
    expect(() => new ShardedMap(1)).not.toThrow();
  });

  it('scans every entry once per pass, across calls, deleting what the predicate picks', () => {
    const map = new ShardedMap<Item>(16);
    for (let i = 0; i < 1_000; i++) map.set(item(`k${i}`, i));
    const seen: number[] = [];
    let report;
    let calls = 0;
    do {
      report = map.scan(64, (v) => {
        seen.push(v.n);
        return v.n % 2 === 0;
      });
      calls++;
    } while (!report.passComplete);
    expect(calls).toBeGreaterThanOrEqual(16);
    expect([...seen].sort((a, b) => a - b)).toEqual(Array.from({ length: 1_000 }, (_, i) => i));
    expect(map.size).toBe(500);
    expect(map.get('k2')).toBeUndefined();
    expect(map.get('k3')).toEqual(item('k3', 3));
  });

  it('reports an empty map as one complete pass', () => {
    expect(new ShardedMap<Item>(4).scan(10, () => true)).toEqual({
      examined: 0,
      deleted: 0,
      passComplete: true,
    });
  });

  it('stops at the deadline, checking the clock every 256 entries', () => {
    const map = new ShardedMap<Item>(1);
    for (let i = 0; i < 1_000; i++) map.set(item(`k${i}`));
    expect(map.scan(1_000, () => false, -Infinity)).toEqual({
      examined: 255,
      deleted: 0,
      passComplete: false,
    });
    // The next call resumes after the entries already seen.
    expect(map.scan(1_000, () => false).examined).toBe(745);
  });

  it('spreads sequential ids evenly over the shards', () => {
    const counts = new Array<number>(64).fill(0);
    for (let i = 0; i < 64_000; i++) counts[fnv1a(`user:u${i}`) & 63]++;
    expect(Math.min(...counts)).toBeGreaterThan(800);
    expect(Math.max(...counts)).toBeLessThan(1_200);
  });
});
