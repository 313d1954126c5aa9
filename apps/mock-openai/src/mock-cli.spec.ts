import { parseMockCli } from './mock-cli';

describe('parseMockCli', () => {
  it('has sensible defaults', () => {
    const options = parseMockCli([], {});
    expect(options).toMatchObject({ port: 8080, host: '127.0.0.1', behaviour: {} });
    expect(options.apiKey).toBeUndefined();
    expect(options.models).toBeUndefined();
  });

  it('reads MOCK_* variables', () => {
    const options = parseMockCli([], {
      MOCK_PORT: '9999',
      MOCK_HOST: '0.0.0.0',
      MOCK_LATENCY_MS: '25',
      MOCK_COMPLETION_TOKENS: 'null',
      MOCK_OMIT_USAGE: 'true',
      MOCK_MESSAGE: '42',
      MOCK_API_KEY: 'sk-a, sk-b',
      MOCK_MODELS: 'gpt-4o,gpt-4o-mini',
      MOCK_RECORD: 'false',
    });
    expect(options).toMatchObject({
      port: 9999,
      host: '0.0.0.0',
      behaviour: { latencyMs: 25, completionTokens: null, omitUsage: true, message: '42' },
      apiKey: ['sk-a', 'sk-b'],
      models: ['gpt-4o', 'gpt-4o-mini'],
      record: false,
    });
  });

  it('lets flags win over variables', () => {
    const options = parseMockCli(
      [
        '--port',
        '7000',
        '--latency-ms=3',
        '--enforce-rate-limits',
        '--no-record',
        '--error-rate',
        '0.25',
      ],
      { MOCK_PORT: '9999', MOCK_LATENCY_MS: '25' },
    );
    expect(options).toMatchObject({
      port: 7000,
      record: false,
      behaviour: { latencyMs: 3, enforceRateLimits: true, errorRate: 0.25 },
    });
  });

  it('rejects bad values with a readable message', () => {
    expect(() => parseMockCli(['--latency-ms', 'soon'], {})).toThrow(/latencyMs/);
    expect(() => parseMockCli([], { MOCK_PORT: 'x' })).toThrow(/port/);
    expect(() => parseMockCli(['stray'], {})).toThrow(/stray/);
  });
});
