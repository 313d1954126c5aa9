import { ItemTally, JSON_RENDER_UNITS, jsonBound } from './item-tally';
import { PromptTally } from './prompt-tally';
import { referenceCount } from './testing/reference-counts';
import { DEFAULT_ESTIMATOR_LIMITS, WorkBudget, type EstimatorLimits } from './work-budget';

const utf8Json = (value: unknown) => Buffer.byteLength(JSON.stringify(value) ?? 'null', 'utf8');

function tallyWith(limits: Partial<EstimatorLimits> = {}, now: () => number = () => 0) {
  const budget = new WorkBudget({ ...DEFAULT_ESTIMATOR_LIMITS, ...limits }, { now });
  return new ItemTally(new PromptTally('gpt-4o', 'o200k_base', 'auto', budget), budget);
}

describe('jsonBound', () => {
  const values: unknown[] = [
    null,
    true,
    false,
    0,
    -0.0000012345678901234567,
    -1.7976931348623157e308,
    123456789012345680000,
    Number.NaN,
    '',
    'plain',
    'quotes " and \\ and \n and \u0001\u001f control',
    'é中😀 \ud800 lone',
    [],
    {},
    [1, 'two', null, [3, [4, [5]]], { six: 6 }],
    { a: { b: { c: ['d', { e: 'f' }] } }, 'key "quoted"': 1, ключ: 'значение' },
    { skip: undefined, fn: () => 1, list: [undefined, () => 2] },
  ];

  it.each(values.map((value) => [JSON.stringify(value) ?? String(value), value]))(
    'bounds %s from above',
    (_label, value) => {
      expect(jsonBound(value).bytes).toBeGreaterThanOrEqual(utf8Json(value));
    },
  );

  it('counts every node once', () => {
    expect(jsonBound('x').nodes).toBe(1);
    expect(jsonBound([]).nodes).toBe(1);
    expect(jsonBound([1, 2, 3]).nodes).toBe(4);
    expect(jsonBound({ a: 1, b: [true, { c: null }] }).nodes).toBe(6);
  });

  it('survives nesting deeper than the call stack', () => {
    let deep: unknown = 'bottom';
    for (let i = 0; i < 200_000; i++) deep = [deep];
    const bound = jsonBound(deep);
    expect(bound.nodes).toBe(200_001);
    expect(bound.bytes).toBeGreaterThanOrEqual(2 * 200_000 + 8);
  });
});

describe('ItemTally', () => {
  it('counts like the prompt tally while the budget lasts', () => {
    const tally = tallyWith();
    tally.addRole('user');
    tally.addText('hello world');
    tally.addJson({ city: 'Paris' });
    tally.addFixed(3);
    tally.addImage('low');
    tally.addImage(undefined);
    expect(tally.result()).toEqual({
      tokens:
        referenceCount('user', 'o200k_base') +
        2 +
        referenceCount('{"city":"Paris"}', 'o200k_base') +
        3 +
        85 +
        1445,
      exact: true,
    });
  });

  it('bounds values too large to render, by their JSON bound', () => {
    const big = { data: Array.from({ length: 20_000 }, (_, i) => i) };
    expect(128 * 20_000).toBeGreaterThan(JSON_RENDER_UNITS);
    const tally = tallyWith();
    tally.addJson(big);
    const result = tally.result();
    expect(result.exact).toBe(false);
    expect(result.tokens).toBe(jsonBound(big).bytes);
    expect(result.tokens).toBeGreaterThanOrEqual(referenceCount(JSON.stringify(big), 'o200k_base'));
  });

  it('stops rendering once the render allowance is used up, whatever the clock says', () => {
    const item = { type: 'item_reference', id: 'msg_0123456789' };
    const perItem = referenceCount(JSON.stringify(item), 'o200k_base');
    const tally = tallyWith({ exactTimeMs: 10_000 }); // a frozen clock: time never runs out
    const count = 10_000;
    for (let i = 0; i < count; i++) tally.addJson(item);
    const result = tally.result();
    expect(result.exact).toBe(false);
    expect(result.tokens).toBeGreaterThan(count * perItem);
    expect(result.tokens).toBeLessThanOrEqual(count * jsonBound(item).bytes);
  });

  it('bounds every later text by its UTF-8 length once the time is spent', () => {
    const tally = tallyWith({ exactTimeMs: 0 });
    tally.addText('hello world'); // no time at all: bounded by the counter (UTF-8 length)
    expect(tally.result()).toEqual({ tokens: 11, exact: false });
    tally.addText('abc');
    tally.addText('é中😀'); // 2 + 3 + 4 bytes
    tally.addRole('user');
    tally.addJson('xy'); // JSON is bounded without rendering: 6 bytes per unit, quotes
    tally.addImage('low');
    expect(tally.result()).toEqual({ tokens: 11 + 3 + 9 + 4 + (6 * 2 + 2) + 85, exact: false });
  });
});
