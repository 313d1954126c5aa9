import { encodingForModel, normaliseModelName } from './encoding-for-model';

describe('encodingForModel', () => {
  it.each([
    'gpt-4o',
    'gpt-4o-2024-08-06',
    'gpt-4o-mini',
    'chatgpt-4o-latest',
    'gpt-4.1',
    'gpt-4.1-mini-2025-04-14',
    'gpt-4.1-nano',
    'gpt-4.5-preview',
    'gpt-5',
    'gpt-5-mini',
    'gpt-5.2-codex',
    'o1',
    'o1-mini',
    'o1-pro-2025-03-19',
    'o3',
    'o3-mini',
    'o4-mini-2025-04-16',
  ])('uses o200k_base for %s', (model) => {
    expect(encodingForModel(model)).toBe('o200k_base');
  });

  it.each([
    'gpt-4',
    'gpt-4-0613',
    'gpt-4-32k',
    'gpt-4-turbo',
    'gpt-4-turbo-2024-04-09',
    'gpt-4-1106-preview',
    'gpt-4-vision-preview',
    'gpt-3.5-turbo',
    'gpt-3.5-turbo-0613',
    'gpt-3.5-turbo-16k',
    'gpt-3.5-turbo-instruct',
    'gpt-35-turbo',
    'text-embedding-3-small',
    'text-embedding-3-large',
    'text-embedding-ada-002',
  ])('uses cl100k_base for %s', (model) => {
    expect(encodingForModel(model)).toBe('cl100k_base');
  });

  it('falls back to o200k_base for unknown models', () => {
    expect(encodingForModel('my-azure-deployment')).toBe('o200k_base');
    expect(encodingForModel('')).toBe('o200k_base');
    expect(encodingForModel('gpt-6-preview')).toBe('o200k_base');
    expect(encodingForModel(undefined as unknown as string)).toBe('o200k_base');
  });

  it('ignores case, blanks, routing prefixes and fine-tune decorations', () => {
    expect(encodingForModel('  GPT-4-Turbo ')).toBe('cl100k_base');
    expect(encodingForModel('openai/gpt-3.5-turbo')).toBe('cl100k_base');
    expect(encodingForModel('ft:gpt-3.5-turbo-0613:acme::8abc')).toBe('cl100k_base');
    expect(encodingForModel('ft:gpt-4o-mini-2024-07-18:acme::8abc')).toBe('o200k_base');
    expect(normaliseModelName(' OpenAI/GPT-4o ')).toBe('gpt-4o');
  });

  it('does not mistake gpt-4o, gpt-4.1 or gpt-4.5 for gpt-4', () => {
    expect(encodingForModel('gpt-4o')).toBe('o200k_base');
    expect(encodingForModel('gpt-4.1')).toBe('o200k_base');
    expect(encodingForModel('gpt-4.5')).toBe('o200k_base');
  });
});
