import { MODEL_FAMILIES, modelLabel } from './model-label';

describe('modelLabel', () => {
  it.each(MODEL_FAMILIES.map((family) => [family]))('keeps the family %s', (family) => {
    expect(modelLabel(family)).toBe(family);
  });

  it.each([
    ['gpt-4o-2024-08-06', 'gpt-4o'],
    ['gpt-4o-mini-2024-07-18', 'gpt-4o-mini'],
    ['gpt-4-turbo-preview', 'gpt-4-turbo'],
    ['gpt-4-0613', 'gpt-4'],
    ['gpt-4.1-mini-2025-04-14', 'gpt-4.1-mini'],
    ['gpt-4.5-preview', 'gpt-4.5'],
    ['gpt-3.5-turbo-0125', 'gpt-3.5-turbo'],
    ['gpt-3.5-turbo-instruct-0914', 'gpt-3.5-turbo-instruct'],
    ['o1-preview', 'o1'],
    ['o3-mini-2025-01-31', 'o3-mini'],
    ['GPT-4o', 'gpt-4o'],
    ['ft:gpt-4o-mini:acme::abc123', 'gpt-4o-mini'],
  ])('maps the variant %s to %s', (model, family) => {
    expect(modelLabel(model)).toBe(family);
  });

  it.each([
    ['gpt-4x'],
    ['gpt-40'],
    ['o5'],
    ['claude-3-opus'],
    ['llama-3-70b'],
    [''],
    ['alice@example.com'],
    ['x'.repeat(10_000)],
  ])('labels anything else %p as other', (model) => {
    expect(modelLabel(model)).toBe('other');
  });

  it('labels a missing or non-string model as other', () => {
    expect(modelLabel(undefined)).toBe('other');
    expect(modelLabel(42)).toBe('other');
  });

  it('stays within the allow-list however many distinct names arrive', () => {
    const labels = new Set<string>();
    for (let i = 0; i < 5000; i++) labels.add(modelLabel(`gpt-4o-custom-${i}`));
    for (let i = 0; i < 5000; i++) labels.add(modelLabel(`unknown-${i}`));
    expect([...labels].sort()).toEqual(['gpt-4o', 'other']);
  });
});
