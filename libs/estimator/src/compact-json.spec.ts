import { compactJson } from './compact-json';

describe('compactJson', () => {
  it('renders like JSON.stringify when the result fits', () => {
    const values: unknown[] = [
      null,
      true,
      42,
      -0.5,
      'text with "quotes", \\ and \n newline',
      [1, 'two', null, { three: 3 }],
      { type: 'function', function: { name: 'get_weather', parameters: { type: 'object' } } },
      { nested: [[[]], {}], empty: '', unicode: '中文 😀' },
      [],
      {},
    ];
    for (const value of values) {
      expect(compactJson(value, 10_000)).toEqual({ text: JSON.stringify(value), overflowBytes: 0 });
    }
  });

  it('leaves out what JSON.stringify leaves out', () => {
    const value = { a: 1, skip: undefined, f: () => 1, list: [undefined, () => 2, Symbol('s')] };
    expect(compactJson(value, 1_000).text).toBe(JSON.stringify(value));
    expect(compactJson(Number.NaN, 10).text).toBe('null');
  });

  it('stops at the length limit and bounds the rest from above', () => {
    const value = { description: 'x'.repeat(10_000), more: ['é'.repeat(500), { k: 'v' }] };
    const full = JSON.stringify(value);
    const { text, overflowBytes } = compactJson(value, 100);
    expect(text.length).toBeLessThanOrEqual(100);
    expect(full.startsWith(text)).toBe(true);
    expect(text.length + overflowBytes).toBeGreaterThanOrEqual(
      Buffer.byteLength(full.slice(text.length), 'utf8') + text.length,
    );
  });

  it('bounds escaped control characters too', () => {
    const value = ['\u0001'.repeat(1_000)];
    const full = JSON.stringify(value);
    const { text, overflowBytes } = compactJson(value, 10);
    expect(Buffer.byteLength(text) + overflowBytes).toBeGreaterThanOrEqual(Buffer.byteLength(full));
  });

  it('bounds huge keys without rendering them', () => {
    const value = { ['k'.repeat(5_000)]: 1 };
    const { text, overflowBytes } = compactJson(value, 50);
    expect(text).toBe('{');
    expect(overflowBytes).toBeGreaterThanOrEqual(Buffer.byteLength(JSON.stringify(value)) - 1);
  });

  it('survives nesting deeper than the call stack', () => {
    let deep: unknown = 'bottom';
    for (let i = 0; i < 200_000; i++) deep = [deep];
    const { text, overflowBytes } = compactJson(deep, 1_000);
    expect(text.length).toBe(1_000);
    expect(overflowBytes).toBeGreaterThan(0);
  });
});
