import OpenAI from 'openai';
import request from 'supertest';
import { type Harness, startHarness, UPSTREAM_KEY } from './support/gateway-harness';

/** The official SDK as a real client: only the base URL and identity headers change. */
function client(h: Harness, userId: string, extra: Record<string, string> = {}): OpenAI {
  return new OpenAI({
    baseURL: `${h.url}/v1`,
    apiKey: 'client-side-key',
    maxRetries: 0,
    defaultHeaders: { 'x-user-id': userId, ...extra },
  });
}

describe('the openai SDK against the gateway', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({ RATE_USER: '1' });
  });
  afterAll(async () => {
    await h.close();
  });

  it('gets a typed completion and the rate-limit headers', async () => {
    const { data, response } = await client(h, 'sdk-alice')
      .chat.completions.create({
        model: 'gpt-4o-mini',
        messages: [
          { role: 'system', content: 'You are terse.' },
          { role: 'user', content: 'Name three colours.', name: 'alice' },
        ],
        max_completion_tokens: 30,
      })
      .withResponse();
    expect(data.object).toBe('chat.completion');
    expect(data.choices[0].message.role).toBe('assistant');
    expect(data.usage?.total_tokens).toBeGreaterThan(0);
    expect(response.headers.get('x-ratelimit-limit-tokens')).toBe('1000');
    expect(Number(response.headers.get('x-ratelimit-remaining-tokens'))).toBe(
      1000 - (data.usage?.total_tokens ?? 0),
    );
    expect(h.mock.lastRequest()?.headers.authorization).toBe(`Bearer ${UPSTREAM_KEY}`);
  });

  it('surfaces a gateway 429 as RateLimitError with retry-after', async () => {
    await request(h.url)
      .post('/config/budget')
      .send({ scope: 'user', id: 'sdk-bob', capacity: 120, refillPerSec: 1 })
      .expect(200);
    const sdk = client(h, 'sdk-bob');
    await sdk.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 100,
    });
    const error: unknown = await sdk.chat.completions
      .create({
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: 'hi' }],
        max_tokens: 100,
      })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(error).toBeInstanceOf(OpenAI.RateLimitError);
    const rateLimit = error as InstanceType<typeof OpenAI.RateLimitError>;
    expect(rateLimit.status).toBe(429);
    expect(rateLimit.code).toBe('rate_limit_exceeded');
    expect(rateLimit.type).toBe('tokens');
    expect(rateLimit.message).toContain('user:sdk-bob');
    expect(Number(rateLimit.headers?.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(Number(rateLimit.headers?.get('retry-after-ms'))).toBeGreaterThan(0);
  });

  it('surfaces bad input as BadRequestError with the param', async () => {
    const error: unknown = await client(h, 'sdk-carol')
      .chat.completions.create({ model: 'gpt-4o-mini', messages: [], max_tokens: 5 })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect((error as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('messages');
  });

  it('surfaces a missing identity as BadRequestError', async () => {
    const sdk = new OpenAI({ baseURL: `${h.url}/v1`, apiKey: 'k', maxRetries: 0 });
    await expect(
      sdk.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] }),
    ).rejects.toBeInstanceOf(OpenAI.BadRequestError);
  });

  it('does not retry request_too_large even when the SDK would retry a 429', async () => {
    const sdk = new OpenAI({
      baseURL: `${h.url}/v1`,
      apiKey: 'k',
      maxRetries: 3,
      defaultHeaders: { 'x-user-id': 'sdk-dan' },
    });
    const started = Date.now();
    const error: unknown = await sdk.chat.completions
      .create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }], max_tokens: 50_000 })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(error).toBeInstanceOf(OpenAI.RateLimitError);
    expect((error as InstanceType<typeof OpenAI.RateLimitError>).code).toBe('request_too_large');
    // Three retries with backoff would take seconds; one answer takes milliseconds.
    expect(Date.now() - started).toBeLessThan(1500);
  });
});
