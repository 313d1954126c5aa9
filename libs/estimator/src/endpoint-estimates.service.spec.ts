import { Test } from '@nestjs/testing';
import { EstimatorModule } from './estimator.module';
import { referenceCount } from './testing/reference-counts';
import { TokenEstimatorService } from './token-estimator.service';

async function serviceFor(options: Parameters<typeof EstimatorModule.forRoot>[0]) {
  const moduleRef = await Test.createTestingModule({
    imports: [EstimatorModule.forRoot(options)],
  }).compile();
  await moduleRef.init();
  return moduleRef.get(TokenEstimatorService);
}

describe('TokenEstimatorService, other endpoints', () => {
  let service: TokenEstimatorService;

  beforeAll(async () => {
    service = await serviceFor({ defaultMaxOutputTokens: 1000 });
  });

  describe('estimateCompletion', () => {
    it('charges the prompt plus 16 tokens by default, not the configured default', () => {
      expect(
        service.estimateCompletion({
          model: 'gpt-3.5-turbo-instruct',
          prompt: 'Say this is a test',
        }),
      ).toEqual({
        model: 'gpt-3.5-turbo-instruct',
        encoding: 'cl100k_base',
        promptTokens: 5,
        maxOutputTokens: 16,
        totalTokens: 21,
        exact: true,
      });
    });

    it('charges max_tokens for max(n, best_of) completions of every prompt', () => {
      const estimate = service.estimateCompletion({
        model: 'davinci-002',
        prompt: ['Say this is a test', 'Once upon a time'],
        max_tokens: 10,
        n: 2,
        best_of: 3,
        echo: true,
      });
      expect(estimate).toMatchObject({
        encoding: 'cl100k_base',
        promptTokens: 9,
        maxOutputTokens: 10 * 3 * 2,
        totalTokens: 69,
        exact: true,
      });
    });

    it('counts token-array prompts by their length', () => {
      const estimate = service.estimateCompletion({
        model: 'babbage-002',
        prompt: [
          [1, 2, 3],
          [4, 5],
        ],
        max_tokens: 1,
      });
      expect(estimate).toMatchObject({ promptTokens: 5, maxOutputTokens: 2, totalTokens: 7 });
    });
  });

  describe('estimateEmbedding', () => {
    it('charges input tokens only', () => {
      expect(
        service.estimateEmbedding({
          model: 'text-embedding-3-small',
          input: ['The quick brown fox jumps over the lazy dog.', 'hello world'],
          dimensions: 256,
        }),
      ).toEqual({
        model: 'text-embedding-3-small',
        encoding: 'cl100k_base',
        promptTokens: 12,
        maxOutputTokens: 0,
        totalTokens: 12,
        exact: true,
      });
      expect(
        service.estimateEmbedding({ model: 'text-embedding-ada-002', input: [[1, 2, 3]] }),
      ).toMatchObject({ promptTokens: 3, totalTokens: 3 });
    });
  });

  describe('estimateResponse', () => {
    const request = {
      model: 'gpt-4o',
      instructions: 'You are a helpful assistant.',
      input: 'What is the weather in Paris?',
    };

    it('charges the input plus the configured default when max_output_tokens is absent', () => {
      expect(service.estimateResponse(request)).toEqual({
        model: 'gpt-4o',
        encoding: 'o200k_base',
        promptTokens: 24,
        maxOutputTokens: 1000,
        totalTokens: 1024,
        exact: true,
      });
    });

    it('uses max_output_tokens when set', () => {
      const estimate = service.estimateResponse({ ...request, max_output_tokens: 64 });
      expect(estimate).toMatchObject({ promptTokens: 24, maxOutputTokens: 64, totalTokens: 88 });
    });

    it('counts items with the model encoding', () => {
      const text = 'Tokenizers differ: 中文 and emoji 🚀 split differently.';
      const estimate = service.estimateResponse({
        model: 'gpt-4-turbo',
        input: [{ role: 'user', content: [{ type: 'input_text', text }] }],
        max_output_tokens: 16,
      });
      expect(estimate.encoding).toBe('cl100k_base');
      expect(estimate.promptTokens).toBe(3 + 1 + referenceCount(text, 'cl100k_base') + 3);
    });
  });

  it('applies its own limits to every estimate', async () => {
    const tight = await serviceFor({ defaultMaxOutputTokens: 0, limits: { maxSpanBytes: 2 } });
    expect(tight.estimateCompletion({ model: 'davinci-002', prompt: 'hello world' })).toMatchObject(
      { promptTokens: 11, exact: false },
    );
    expect(
      tight.estimateEmbedding({ model: 'text-embedding-3-small', input: 'hello world' }),
    ).toMatchObject({ promptTokens: 11, exact: false });
    expect(tight.estimateResponse({ model: 'gpt-4o', input: 'hello world' })).toMatchObject({
      exact: false,
      maxOutputTokens: 0,
    });
  });
});
