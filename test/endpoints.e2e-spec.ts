import OpenAI from 'openai';
import request from 'supertest';
import {
  countCompletionPromptTokens,
  countEmbeddingInputTokens,
  countResponseInputTokens,
  countTextTokens,
} from '@tokenguard/estimator';
import { type Harness, startHarness } from './support/gateway-harness';
import { settledUserTokens, userTokens } from './support/buckets';

function sdk(h: Harness, userId: string): OpenAI {
  return new OpenAI({
    baseURL: `${h.url}/v1`,
    apiKey: 'client-key',
    maxRetries: 0,
    defaultHeaders: { 'x-user-id': userId },
  });
}

describe('the rest of the OpenAI surface', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h.close();
  });
  beforeEach(() => {
    h.mock.reset();
  });

  describe('POST /v1/completions', () => {
    it('charges prompt + output for an array prompt, settled to usage', async () => {
      const prompt = ['Say this is a test', 'And this too'];
      const { data, response } = await sdk(h, 'cmp-alice')
        .completions.create({
          model: 'gpt-3.5-turbo-instruct',
          prompt,
          max_tokens: 10,
          mock: { completionTokens: 4 },
        } as OpenAI.CompletionCreateParamsNonStreaming)
        .withResponse();
      const promptTokens = countCompletionPromptTokens({
        model: 'gpt-3.5-turbo-instruct',
        prompt,
      }).tokens;
      expect(data.usage?.prompt_tokens).toBe(promptTokens);
      // Reserved: prompt + 10 per prompt; settled: the actual total.
      expect(response.headers.get('x-ratelimit-remaining-tokens')).toBe(
        String(1000 - (data.usage?.total_tokens ?? NaN)),
      );
      expect(await userTokens(h.url, 'cmp-alice')).toBe(1000 - (data.usage?.total_tokens ?? NaN));
    });

    it('streams and settles to the usage the upstream reported', async () => {
      const stream = await sdk(h, 'cmp-bob').completions.create({
        model: 'gpt-3.5-turbo-instruct',
        prompt: 'Once upon a time',
        max_tokens: 30,
        stream: true,
        mock: { completionTokens: 6 },
      } as OpenAI.CompletionCreateParamsStreaming);
      let text = '';
      let sawUsage = false;
      for await (const chunk of stream) {
        text += chunk.choices[0]?.text ?? '';
        if (chunk.usage) sawUsage = true;
      }
      expect(sawUsage).toBe(false);
      const promptTokens = countCompletionPromptTokens({
        model: 'gpt-3.5-turbo-instruct',
        prompt: 'Once upon a time',
      }).tokens;
      const actual = promptTokens + countTextTokens(text, 'gpt-3.5-turbo-instruct');
      expect(await settledUserTokens(h.url, 'cmp-bob', 1000 - promptTokens - 30)).toBe(
        1000 - actual,
      );
    });

    it('refuses a malformed prompt', async () => {
      const res = await request(h.url)
        .post('/v1/completions')
        .set('x-user-id', 'cmp-bad')
        .send({ model: 'gpt-3.5-turbo-instruct', prompt: [1, 'two'] })
        .expect(400);
      expect((res.body as { error: { param: string } }).error.param).toBe('prompt');
      expect(h.mock.requests).toHaveLength(0);
    });
  });

  describe('POST /v1/embeddings', () => {
    it.each([
      ['a string', 'The quick brown fox jumps over the lazy dog'],
      ['an array of strings', ['first input', 'second input here']],
      ['token ids', [1212, 318, 257, 1332]],
      [
        'arrays of token ids',
        [
          [1212, 318],
          [257, 1332, 13],
        ],
      ],
    ])('charges input tokens only for %s', async (_name, input) => {
      const user = `emb-${String(_name).replace(/\W+/g, '-')}`;
      const { data, response } = await sdk(h, user)
        .embeddings.create({ model: 'text-embedding-3-small', input })
        .withResponse();
      const expected = countEmbeddingInputTokens({ model: 'text-embedding-3-small', input }).tokens;
      expect(data.usage.prompt_tokens).toBe(expected);
      expect(data.data).toHaveLength(
        Array.isArray(input) && typeof input[0] !== 'number' ? input.length : 1,
      );
      // No output allowance was ever reserved: the header already shows the final level.
      expect(response.headers.get('x-ratelimit-remaining-tokens')).toBe(String(1000 - expected));
      expect(await userTokens(h.url, user)).toBe(1000 - expected);
    });

    it('refuses an empty input array', async () => {
      await request(h.url)
        .post('/v1/embeddings')
        .set('x-user-id', 'emb-bad')
        .send({ model: 'text-embedding-3-small', input: [] })
        .expect(400);
    });
  });

  describe('POST /v1/responses', () => {
    const instructions = 'You are a helpful assistant.';
    const input = 'What is the weather in Paris?';

    it('charges a JSON response to its input/output usage', async () => {
      const response = await sdk(h, 'resp-alice').responses.create({
        model: 'gpt-4o',
        instructions,
        input,
        max_output_tokens: 64,
        mock: { completionTokens: 9 },
      } as OpenAI.Responses.ResponseCreateParamsNonStreaming);
      const inputTokens = countResponseInputTokens({ model: 'gpt-4o', instructions, input }).tokens;
      expect(response.usage?.input_tokens).toBe(inputTokens);
      expect(response.usage?.output_tokens).toBe(9);
      expect(await userTokens(h.url, 'resp-alice')).toBe(1000 - inputTokens - 9);
    });

    it('streams through the SDK and settles on response.completed', async () => {
      const stream = await sdk(h, 'resp-bob').responses.create({
        model: 'gpt-4o',
        input: [{ role: 'user', content: [{ type: 'input_text', text: input }] }],
        max_output_tokens: 64,
        stream: true,
        mock: { completionTokens: 11, chunkDelayMs: 20 },
      } as OpenAI.Responses.ResponseCreateParamsStreaming);
      let deltas = 0;
      let completed: OpenAI.Responses.Response | undefined;
      for await (const event of stream) {
        if (event.type === 'response.output_text.delta') deltas += 1;
        if (event.type === 'response.completed') completed = event.response;
      }
      expect(deltas).toBeGreaterThan(1);
      expect(completed?.usage?.output_tokens).toBe(11);
      // The Responses API has no stream_options: the request went upstream untouched.
      expect((h.mock.lastRequest()?.body as { stream_options?: unknown }).stream_options).toBe(
        undefined,
      );
      const total = completed?.usage?.total_tokens ?? NaN;
      const inputTokens = completed?.usage?.input_tokens ?? NaN;
      expect(await settledUserTokens(h.url, 'resp-bob', 1000 - inputTokens - 64)).toBe(
        1000 - total,
      );
    });

    it('refuses input of the wrong type', async () => {
      const res = await request(h.url)
        .post('/v1/responses')
        .set('x-user-id', 'resp-bad')
        .send({ model: 'gpt-4o', input: 42 })
        .expect(400);
      expect((res.body as { error: { param: string } }).error.param).toBe('input');
    });
  });

  describe('GET /v1/models', () => {
    it('passes the list and one model through without a charge or an identity', async () => {
      const models = await sdk(h, 'models-user').models.list();
      expect(models.data.length).toBeGreaterThan(0);
      const one = await request(h.url).get(`/v1/models/${models.data[0].id}`).expect(200);
      expect((one.body as { id: string }).id).toBe(models.data[0].id);
      expect(await userTokens(h.url, 'models-user')).toBe(1000);
      expect(h.mock.lastRequest()?.headers.authorization).toMatch(/^Bearer sk-upstream/);
    });
  });
});
