import type { Socket } from 'node:net';
import OpenAI from 'openai';
import request from 'supertest';
import { Client } from 'undici';
import { countChatPromptTokens, countTextTokens } from '@tokenguard/estimator';
import { chatBody, type Harness, startHarness, UPSTREAM_KEY } from './support/gateway-harness';
import { settledUserTokens, userTokens } from './support/buckets';

const MODEL = 'gpt-4o-mini';
const MESSAGES = [{ role: 'user' as const, content: 'Stream a short story about tokens.' }];
const PROMPT_TOKENS = countChatPromptTokens({ model: MODEL, messages: MESSAGES }).tokens;

function sdk(h: Harness, userId: string): OpenAI {
  return new OpenAI({
    baseURL: `${h.url}/v1`,
    apiKey: 'client-key',
    maxRetries: 0,
    defaultHeaders: { 'x-user-id': userId },
  });
}

describe('streaming chat completions', () => {
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

  it('relays chunks as they come, hides the usage chunk the client did not ask for, and charges the actual usage', async () => {
    const started = Date.now();
    const { data: stream, response } = await sdk(h, 'stream-alice')
      .chat.completions.create({
        model: MODEL,
        messages: MESSAGES,
        max_tokens: 40,
        stream: true,
        // 12 content chunks, 60 ms apart: the whole stream takes ~0.8 s upstream.
        mock: { completionTokens: 12, chunkDelayMs: 60 },
      } as OpenAI.ChatCompletionCreateParamsStreaming)
      .withResponse();

    expect(response.headers.get('content-type')).toMatch(/text\/event-stream/);
    expect(response.headers.get('x-request-id')).toEqual(expect.any(String));
    expect(response.headers.get('x-ratelimit-limit-tokens')).toBe('1000');
    expect(response.headers.get('x-ratelimit-remaining-tokens')).toBe(
      String(1000 - PROMPT_TOKENS - 40),
    );

    let firstChunkAt: number | undefined;
    let text = '';
    let sawUsage = false;
    for await (const chunk of stream) {
      firstChunkAt ??= Date.now();
      text += chunk.choices[0]?.delta?.content ?? '';
      if (chunk.usage) sawUsage = true;
    }
    const endedAt = Date.now();
    expect(sawUsage).toBe(false);
    // Incremental: the first chunk arrived well before the upstream finished.
    expect((firstChunkAt as number) - started).toBeLessThan((endedAt - started) / 2);

    // The upstream was asked for usage; the client never saw it.
    const sent = h.mock.lastRequest()?.body as { stream_options?: { include_usage?: boolean } };
    expect(sent.stream_options?.include_usage).toBe(true);

    const actual = PROMPT_TOKENS + countTextTokens(text, MODEL);
    expect(countTextTokens(text, MODEL)).toBe(12);
    expect(await settledUserTokens(h.url, 'stream-alice', 1000 - PROMPT_TOKENS - 40)).toBe(
      1000 - actual,
    );
  });

  it('passes the usage chunk through when the client asked for it', async () => {
    const stream = await sdk(h, 'stream-bob').chat.completions.create({
      model: MODEL,
      messages: MESSAGES,
      max_tokens: 30,
      stream: true,
      stream_options: { include_usage: true },
      mock: { completionTokens: 7 },
    } as OpenAI.ChatCompletionCreateParamsStreaming);
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) usage = chunk.usage ?? usage;
    expect(usage).toEqual(
      expect.objectContaining({ prompt_tokens: PROMPT_TOKENS, completion_tokens: 7 }),
    );
    expect(await settledUserTokens(h.url, 'stream-bob', 1000 - PROMPT_TOKENS - 30)).toBe(
      1000 - (usage?.total_tokens ?? NaN),
    );
  });

  it('relays the upstream bytes unchanged', async () => {
    const body = JSON.stringify({
      model: MODEL,
      messages: MESSAGES,
      max_tokens: 10,
      stream: true,
      stream_options: { include_usage: true },
      mock: { completionTokens: 5 },
    });
    const headers = { 'content-type': 'application/json' };
    const mockClient = new Client(h.mock.url);
    const gatewayClient = new Client(h.url);
    try {
      const direct = await mockClient.request({
        method: 'POST',
        path: '/v1/chat/completions',
        headers: { ...headers, authorization: `Bearer ${UPSTREAM_KEY}` },
        body,
      });
      const viaGateway = await gatewayClient.request({
        method: 'POST',
        path: '/v1/chat/completions',
        headers: { ...headers, 'x-user-id': 'stream-bytes' },
        body,
      });
      // Ids and timestamps differ per call; everything else must be identical.
      const normalise = (text: string) =>
        text.replace(/"id":"[^"]+"/g, '"id":"x"').replace(/"created":\d+/g, '"created":0');
      expect(normalise(await viaGateway.body.text())).toBe(normalise(await direct.body.text()));
    } finally {
      await mockClient.close();
      await gatewayClient.close();
    }
  });

  it('charges prompt + streamed tokens and aborts the upstream when the client hangs up', async () => {
    const sockets = new Set<Socket>();
    const server = h.mock.app.getHttpServer();
    const track = (socket: Socket) => sockets.add(socket);
    server.on('connection', track);
    const abort = new AbortController();
    const client = new Client(h.url);
    const res = await client.request({
      path: '/v1/chat/completions',
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-user-id': 'stream-quitter' },
      body: JSON.stringify({
        model: MODEL,
        messages: MESSAGES,
        max_tokens: 200,
        stream: true,
        mock: { completionTokens: 200, chunkDelayMs: 50 },
      }),
      signal: abort.signal,
    });
    const reserved = 1000 - PROMPT_TOKENS - 200;
    let received = '';
    for await (const chunk of res.body) {
      received += (chunk as Buffer).toString();
      // The role chunk, then the first content chunk.
      if ((received.match(/"content":/g) ?? []).length >= 2) break;
    }
    abort.abort();
    await client.destroy();
    server.off('connection', track);

    const charged = 1000 - (await settledUserTokens(h.url, 'stream-quitter', reserved));
    // At least the prompt, at most the prompt plus a few chunks: never the whole estimate.
    expect(charged).toBeGreaterThanOrEqual(PROMPT_TOKENS + 1);
    expect(charged).toBeLessThanOrEqual(PROMPT_TOKENS + 5);

    // The upstream connection carrying the stream was closed within a second.
    const deadline = Date.now() + 1000;
    while ([...sockets].some((s) => !s.destroyed) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    expect([...sockets].filter((s) => !s.destroyed)).toHaveLength(0);
  });

  it('charges what was streamed when the upstream dies mid-stream, and tells the client', async () => {
    const stream = await sdk(h, 'stream-cut').chat.completions.create({
      model: MODEL,
      messages: MESSAGES,
      max_tokens: 50,
      stream: true,
      mock: { completionTokens: 50, failMidStreamAfterChunks: 4 },
    } as OpenAI.ChatCompletionCreateParamsStreaming);
    let text = '';
    const error: unknown = await (async () => {
      for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
    })().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect(String((error as Error).message)).toMatch(/upstream provider stopped the stream/);
    const charged =
      1000 - (await settledUserTokens(h.url, 'stream-cut', 1000 - PROMPT_TOKENS - 50));
    expect(charged).toBe(PROMPT_TOKENS + countTextTokens(text, MODEL));
    expect(charged).toBeLessThan(PROMPT_TOKENS + 50);
  });

  it.each([
    ['a 500 before the first byte', { status: 500 }, 502],
    ['a 429', { status: 429 }, 429],
    ['a 400', { status: 400 }, 400],
  ])(
    'refunds in full on %s, and the upstream saw exactly one request',
    async (_n, mock, status) => {
      const res = await request(h.url)
        .post('/v1/chat/completions')
        .set('x-user-id', `stream-fail-${status}`)
        .send(chatBody({ stream: true, mock }))
        .expect(status);
      expect((res.body as { error: { message: string } }).error.message).toEqual(
        expect.any(String),
      );
      expect(await userTokens(h.url, `stream-fail-${status}`)).toBe(1000);
      expect(h.mock.requests).toHaveLength(1);
    },
  );
});

describe('streaming against a slow or absent upstream', () => {
  it('cuts a stream that goes idle and charges what was streamed', async () => {
    const h = await startHarness({ UPSTREAM_STREAM_IDLE_TIMEOUT_MS: '300' });
    try {
      const stream = await sdk(h, 'idle').chat.completions.create({
        model: MODEL,
        messages: MESSAGES,
        max_tokens: 20,
        stream: true,
        mock: { completionTokens: 20, chunkDelayMs: 1000 },
      } as OpenAI.ChatCompletionCreateParamsStreaming);
      const error: unknown = await (async () => {
        for await (const _chunk of stream) void _chunk;
      })().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(OpenAI.APIError);
      const charged = 1000 - (await settledUserTokens(h.url, 'idle', 1000 - PROMPT_TOKENS - 20));
      expect(charged).toBeGreaterThanOrEqual(PROMPT_TOKENS);
      expect(charged).toBeLessThan(PROMPT_TOKENS + 20);
    } finally {
      await h.close();
    }
  });

  it('answers 504 when the upstream hangs before headers, refunding, with one upstream request', async () => {
    const h = await startHarness({ UPSTREAM_TIMEOUT_MS: '200' });
    try {
      await request(h.url)
        .post('/v1/chat/completions')
        .set('x-user-id', 'hang')
        .send(chatBody({ stream: true, mock: { latencyMs: 2000 } }))
        .expect(504);
      expect(await userTokens(h.url, 'hang')).toBe(1000);
      expect(h.mock.requests).toHaveLength(1);
    } finally {
      await h.close();
    }
  });
});

describe('circuit breaker', () => {
  it('opens after the threshold, fails fast while open, closes after a successful trial', async () => {
    const h = await startHarness({
      CIRCUIT_BREAKER_FAILURE_THRESHOLD: '2',
      CIRCUIT_BREAKER_RECOVERY_TIMEOUT: '1',
    });
    try {
      const call = (user: string, mock?: object) =>
        request(h.url)
          .post('/v1/chat/completions')
          .set('x-user-id', user)
          .send(chatBody(mock ? { mock } : {}));
      await call('cb', { status: 500 }).expect(502);
      await call('cb', { status: 503 }).expect(502);
      expect(h.mock.requests).toHaveLength(2);

      const open = await call('cb').expect(503);
      expect((open.body as { error: { code: string } }).error.code).toBe('upstream_unavailable');
      expect(h.mock.requests).toHaveLength(2); // failed fast: never sent
      expect(await userTokens(h.url, 'cb')).toBe(1000);

      await new Promise((r) => setTimeout(r, 1100));
      await call('cb').expect(200); // the half-open trial
      await call('cb').expect(200);
      expect(h.mock.requests).toHaveLength(4);
    } finally {
      await h.close();
    }
  });

  it('does not count client errors (4xx) against the upstream', async () => {
    const h = await startHarness({ CIRCUIT_BREAKER_FAILURE_THRESHOLD: '1' });
    try {
      for (let i = 0; i < 3; i++) {
        await request(h.url)
          .post('/v1/chat/completions')
          .set('x-user-id', 'cb4xx')
          .send(chatBody({ mock: { status: 400 } }))
          .expect(400);
      }
      await request(h.url)
        .post('/v1/chat/completions')
        .set('x-user-id', 'cb4xx')
        .send(chatBody())
        .expect(200);
    } finally {
      await h.close();
    }
  });
});

describe('request hygiene', () => {
  it('answers 413 in the OpenAI shape above BODY_LIMIT, reserving nothing', async () => {
    const h = await startHarness({ BODY_LIMIT: '2048' });
    try {
      const res = await request(h.url)
        .post('/v1/chat/completions')
        .set('x-user-id', 'big')
        .send(chatBody({ messages: [{ role: 'user', content: 'x'.repeat(5000) }] }))
        .expect(413);
      expect((res.body as { error: { code: string; type: string } }).error).toMatchObject({
        code: 'request_body_too_large',
        type: 'invalid_request_error',
      });
      expect(await userTokens(h.url, 'big')).toBe(1000);
      expect(h.mock.requests).toHaveLength(0);
    } finally {
      await h.close();
    }
  });
});
