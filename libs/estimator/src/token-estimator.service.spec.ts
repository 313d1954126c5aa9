import { Injectable, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { EstimatorModule } from './estimator.module';
import type { ChatEstimateInput } from './estimator.types';
import { referenceCount } from './testing/reference-counts';
import { loadedEncodingCounter } from './builtin-counter';
import { loadedTokenizerEngine } from './tokenizer-engines';
import { TokenEstimatorService } from './token-estimator.service';

const REQUEST: ChatEstimateInput = {
  model: 'gpt-4o-mini',
  messages: [
    { role: 'system', content: 'You are terse.' },
    { role: 'user', name: 'bob', content: 'Name three primes.' },
  ],
};

const expectedPrompt =
  3 +
  (3 + referenceCount('system', 'o200k_base') + referenceCount('You are terse.', 'o200k_base')) +
  (3 +
    referenceCount('user', 'o200k_base') +
    referenceCount('Name three primes.', 'o200k_base') +
    referenceCount('bob', 'o200k_base') +
    1);

async function serviceFor(options: Parameters<typeof EstimatorModule.forRoot>[0]) {
  const moduleRef = await Test.createTestingModule({
    imports: [EstimatorModule.forRoot(options)],
  }).compile();
  await moduleRef.init();
  return moduleRef.get(TokenEstimatorService);
}

describe('TokenEstimatorService', () => {
  it('does not load encodings at start-up when warm-up is off', async () => {
    await serviceFor({ defaultMaxOutputTokens: 10, warmUp: false, engine: 'tiktoken' });
    expect(loadedTokenizerEngine('tiktoken', 'cl100k_base')).toBeUndefined();
  });

  it('loads both encodings of its own counter at start-up by default, and no other engine', async () => {
    await serviceFor({ defaultMaxOutputTokens: 10 });
    expect(loadedEncodingCounter('o200k_base')).toBeDefined();
    expect(loadedEncodingCounter('cl100k_base')).toBeDefined();
    expect(loadedTokenizerEngine('gpt-tokenizer', 'o200k_base')).toBeUndefined();
    expect(loadedTokenizerEngine('tiktoken', 'o200k_base')).toBeUndefined();
  });

  it('estimates prompt plus the default output allowance', async () => {
    const service = await serviceFor({ defaultMaxOutputTokens: 1000 });
    expect(service.estimateChat(REQUEST)).toEqual({
      model: 'gpt-4o-mini',
      encoding: 'o200k_base',
      promptTokens: expectedPrompt,
      maxOutputTokens: 1000,
      totalTokens: expectedPrompt + 1000,
      exact: true,
    });
  });

  it('uses max_completion_tokens or max_tokens, times n', async () => {
    const service = await serviceFor({ defaultMaxOutputTokens: 1000 });
    const withMax = service.estimateChat({ ...REQUEST, max_tokens: 50, n: 3 });
    expect(withMax.maxOutputTokens).toBe(150);
    expect(withMax.totalTokens).toBe(expectedPrompt + 150);
    const withCompletion = service.estimateChat({
      ...REQUEST,
      max_tokens: 50,
      max_completion_tokens: 70,
    });
    expect(withCompletion.maxOutputTokens).toBe(70);
  });

  it('reports a bounded estimate as not exact', async () => {
    const service = await serviceFor({ defaultMaxOutputTokens: 0 });
    const estimate = service.estimateChat({
      model: 'gpt-4',
      messages: [{ role: 'user', content: 'x'.repeat(5_000) }],
    });
    expect(estimate.encoding).toBe('cl100k_base');
    expect(estimate.exact).toBe(false);
    expect(estimate.promptTokens).toBeGreaterThanOrEqual(5_000 / 8);
  });

  it('honours custom limits', async () => {
    const service = await serviceFor({ defaultMaxOutputTokens: 0, limits: { maxSpanBytes: 2 } });
    expect(service.countText('hello world', 'gpt-4o')).toEqual({ tokens: 11, exact: false });
  });

  it('rejects a default output allowance that is not a whole number', async () => {
    await expect(serviceFor({ defaultMaxOutputTokens: -1 })).rejects.toThrow(RangeError);
    await expect(serviceFor({ defaultMaxOutputTokens: 1.5 })).rejects.toThrow(RangeError);
  });

  it('can take its options from other providers', async () => {
    @Injectable()
    class FakeConfig {
      readonly maxOutput = 321;
    }
    @Module({ providers: [FakeConfig], exports: [FakeConfig] })
    class FakeConfigModule {}

    const moduleRef = await Test.createTestingModule({
      imports: [
        EstimatorModule.forRootAsync({
          imports: [FakeConfigModule],
          inject: [FakeConfig],
          useFactory: (config: FakeConfig) => ({ defaultMaxOutputTokens: config.maxOutput }),
        }),
      ],
    }).compile();
    const service = moduleRef.get(TokenEstimatorService);
    expect(service.estimateChat(REQUEST).maxOutputTokens).toBe(321);
  });
});
