import {
  type ChatPromptInput,
  countResponseInputTokens,
  type ResponsePromptInput,
  TokenCounter,
} from '@tokenguard/estimator';
import OpenAI, {
  APIConnectionError,
  AuthenticationError,
  BadRequestError,
  InternalServerError,
  NotFoundError,
  RateLimitError,
} from 'openai';
import request from 'supertest';
import { request as httpRequest } from 'undici';
import { MockOpenAIServer, startMockOpenAI } from './index';

type ChatParams = OpenAI.Chat.ChatCompletionCreateParamsNonStreaming;
type ChatStreamParams = OpenAI.Chat.ChatCompletionCreateParamsStreaming;
type ChatChunk = OpenAI.Chat.ChatCompletionChunk;
type ResponseEvent = OpenAI.Responses.ResponseStreamEvent;
type ResponseParams = OpenAI.Responses.ResponseCreateParamsNonStreaming;
type ResponseStreamParams = OpenAI.Responses.ResponseCreateParamsStreaming;

interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

// The estimator with time to spare, so the expected counts are exact even on a cold start.
const estimator = new TokenCounter({ limits: { exactTimeMs: 1000 } });
function countChatPromptTokens(input: ChatPromptInput): { tokens: number } {
  const count = estimator.countChatPrompt(input);
  expect(count.exact).toBe(true);
  return count;
}
function countTextTokens(text: string, model: string): number {
  const count = estimator.countText(text, model);
  expect(count.exact).toBe(true);
  return count.tokens;
}

function countResponseInput(input: ResponsePromptInput): number {
  const count = countResponseInputTokens(input, estimator);
  expect(count.exact).toBe(true);
  return count.tokens;
}

const MODEL = 'gpt-4o-mini';
// Typed so that it fits both the SDK's params and the estimator's input.
const MESSAGES: { role: 'system' | 'user'; content: string; name?: string }[] = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: 'Say something about token budgets.', name: 'alice' },
];
const PROMPT_TOKENS = countChatPromptTokens({ model: MODEL, messages: MESSAGES }).tokens;
const DURATION = /^(\d+ms|(\d+h)?(\d+m)?\d+(\.\d+)?s)$/;

/** Raw SSE: the `data:` payloads in order, `[DONE]` included. */
async function sse(url: string, body: object): Promise<{ status: number; events: string[] }> {
  const res = await httpRequest(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer sk-test' },
    body: JSON.stringify(body),
  });
  const text = await res.body.text();
  const events = text
    .split('\n\n')
    .filter((block) => block.length > 0)
    .map((block) => {
      expect(block.startsWith('data: ')).toBe(true);
      return block.slice('data: '.length);
    });
  return { status: res.statusCode, events };
}

/** Raw Responses API SSE: each block's `event:` name and parsed `data:`. */
async function responseSse(
  url: string,
  body: object,
): Promise<{ status: number; events: { event: string; data: ResponseEvent }[] }> {
  const res = await httpRequest(`${url}/v1/responses`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer sk-test' },
    body: JSON.stringify(body),
  });
  const text = await res.body.text();
  const events = text
    .split('\n\n')
    .filter((block) => block.length > 0)
    .map((block) => {
      const lines = block.split('\n');
      expect(lines).toHaveLength(2);
      expect(lines[0].startsWith('event: ')).toBe(true);
      expect(lines[1].startsWith('data: ')).toBe(true);
      return {
        event: lines[0].slice('event: '.length),
        data: JSON.parse(lines[1].slice('data: '.length)) as ResponseEvent,
      };
    });
  return { status: res.statusCode, events };
}

describe('mock-openai (e2e)', () => {
  let server: MockOpenAIServer;
  let client: OpenAI;

  beforeAll(async () => {
    server = await startMockOpenAI();
    client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'sk-test', maxRetries: 0 });
  });

  afterAll(async () => {
    await server.close();
  });

  beforeEach(() => {
    server.reset();
  });

  describe('chat completions (JSON)', () => {
    it('answers in OpenAI shape with usage counted as OpenAI does', async () => {
      const { data, response } = await client.chat.completions
        .create({ model: MODEL, messages: MESSAGES })
        .withResponse();
      expect(data).toMatchObject({
        object: 'chat.completion',
        model: MODEL,
        service_tier: 'default',
        choices: [
          {
            index: 0,
            message: { role: 'assistant', refusal: null, annotations: [] },
            logprobs: null,
            finish_reason: 'stop',
          },
        ],
      });
      expect(data.id).toMatch(/^chatcmpl-[0-9a-f]+$/);
      expect(data.system_fingerprint).toMatch(/^fp_/);
      expect(Math.abs(data.created - Date.now() / 1000)).toBeLessThan(5);
      const content = data.choices[0].message.content ?? '';
      expect(countTextTokens(content, MODEL)).toBe(16);
      expect(data.usage).toMatchObject({
        prompt_tokens: PROMPT_TOKENS,
        completion_tokens: 16,
        total_tokens: PROMPT_TOKENS + 16,
      });
      expect(response.headers.get('content-type')).toBe('application/json');
      expect(response.headers.get('x-request-id')).toMatch(/^req_[0-9a-f]{32}$/);
      expect(response.headers.get('openai-processing-ms')).toMatch(/^\d+$/);
    });

    it('generates exactly max_completion_tokens (or max_tokens) tokens, finish_reason length', async () => {
      const byMax = await client.chat.completions.create({
        model: MODEL,
        messages: MESSAGES,
        max_tokens: 5,
      });
      expect(byMax.usage?.completion_tokens).toBe(5);
      expect(countTextTokens(byMax.choices[0].message.content ?? '', MODEL)).toBe(5);
      expect(byMax.choices[0].finish_reason).toBe('length');

      const byCompletion = await client.chat.completions.create({
        model: MODEL,
        messages: MESSAGES,
        max_tokens: 5,
        max_completion_tokens: 300,
      });
      expect(byCompletion.usage?.completion_tokens).toBe(300);
      expect(countTextTokens(byCompletion.choices[0].message.content ?? '', MODEL)).toBe(300);
    });

    it('reports the promptTokens knob instead of counting the prompt', async () => {
      const counted = await client.chat.completions.create({ model: MODEL, messages: MESSAGES });
      const fixed = await client.chat.completions.create({
        model: MODEL,
        messages: MESSAGES,
        mock: { promptTokens: 512 },
      } as ChatParams);
      expect(counted.usage?.prompt_tokens).not.toBe(512);
      expect(fixed.usage?.prompt_tokens).toBe(512);
      expect(fixed.usage?.total_tokens).toBe(512 + (fixed.usage?.completion_tokens ?? NaN));
    });

    it('gives n different choices and sums their tokens', async () => {
      const data = await client.chat.completions.create({
        model: MODEL,
        messages: MESSAGES,
        n: 3,
        max_tokens: 4,
      });
      expect(data.choices.map((choice) => choice.index)).toEqual([0, 1, 2]);
      expect(new Set(data.choices.map((choice) => choice.message.content)).size).toBe(3);
      expect(data.usage?.completion_tokens).toBe(12);
    });

    it('counts tools into the prompt with the estimator', async () => {
      const tools: OpenAI.Chat.ChatCompletionTool[] = [
        {
          type: 'function',
          function: {
            name: 'get_budget',
            description: 'Remaining budget of a team',
            parameters: { type: 'object', properties: { team: { type: 'string' } } },
          },
        },
      ];
      const data = await client.chat.completions.create({
        model: MODEL,
        messages: MESSAGES,
        tools,
      });
      const expected = countChatPromptTokens({
        model: MODEL,
        messages: MESSAGES,
        tools,
      }).tokens;
      expect(data.usage?.prompt_tokens).toBe(expected);
    });
  });

  describe('chat completions (SSE)', () => {
    it('streams chunks without usage unless asked for', async () => {
      const stream = await client.chat.completions.create({
        model: MODEL,
        messages: MESSAGES,
        stream: true,
        max_tokens: 6,
      });
      const chunks: ChatChunk[] = [];
      for await (const chunk of stream) chunks.push(chunk);
      expect(chunks[0].choices[0].delta).toMatchObject({ role: 'assistant', content: '' });
      const text = chunks.map((chunk) => chunk.choices[0]?.delta.content ?? '').join('');
      expect(countTextTokens(text, MODEL)).toBe(6);
      expect(chunks).toHaveLength(1 + 6 + 1);
      expect(chunks.at(-1)?.choices[0].finish_reason).toBe('length');
      for (const chunk of chunks) {
        expect(chunk.object).toBe('chat.completion.chunk');
        expect(chunk.id).toBe(chunks[0].id);
        expect('usage' in chunk).toBe(false);
      }
    });

    it('with include_usage: usage null on every chunk, then a usage chunk with no choices', async () => {
      const { status, events } = await sse(server.url, {
        model: MODEL,
        messages: MESSAGES,
        stream: true,
        stream_options: { include_usage: true },
      });
      expect(status).toBe(200);
      expect(events.at(-1)).toBe('[DONE]');
      const chunks = events.slice(0, -1).map((event) => JSON.parse(event) as ChatChunk);
      const last = chunks.at(-1);
      expect(last?.choices).toEqual([]);
      expect(last?.usage).toMatchObject({
        prompt_tokens: PROMPT_TOKENS,
        completion_tokens: 16,
        total_tokens: PROMPT_TOKENS + 16,
      });
      for (const chunk of chunks.slice(0, -1)) expect(chunk.usage).toBeNull();
      expect(chunks.at(-2)?.choices[0].finish_reason).toBe('stop');
      const text = chunks.map((chunk) => chunk.choices[0]?.delta.content ?? '').join('');
      expect(countTextTokens(text, MODEL)).toBe(16);
    });

    it('the SDK sees the same usage', async () => {
      const stream = await client.chat.completions.create({
        model: MODEL,
        messages: MESSAGES,
        stream: true,
        stream_options: { include_usage: true },
        n: 2,
        max_tokens: 3,
      });
      let usage: OpenAI.CompletionUsage | null | undefined;
      const texts = ['', ''];
      for await (const chunk of stream) {
        if (chunk.usage) usage = chunk.usage;
        for (const choice of chunk.choices) texts[choice.index] += choice.delta.content ?? '';
      }
      expect(usage?.completion_tokens).toBe(6);
      expect(usage?.prompt_tokens).toBe(PROMPT_TOKENS);
      expect(texts.map((text) => countTextTokens(text, MODEL))).toEqual([3, 3]);
    });

    it('sends SSE headers and rate-limit headers before the first event', async () => {
      const res = await request(server.url)
        .post('/v1/chat/completions')
        .send({ model: MODEL, messages: MESSAGES, stream: true });
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toBe('text/event-stream; charset=utf-8');
      expect(res.headers['x-ratelimit-remaining-tokens']).toMatch(/^\d+$/);
    });
  });

  describe('completions', () => {
    it('answers a string prompt, with echo', async () => {
      const prompt = 'Once upon a time';
      const data = await client.completions.create({
        model: 'gpt-3.5-turbo-instruct',
        prompt,
        max_tokens: 7,
        echo: true,
      });
      expect(data.object).toBe('text_completion');
      expect(data.id).toMatch(/^cmpl-/);
      expect(data.choices[0].text.startsWith(prompt)).toBe(true);
      expect(data.choices[0].finish_reason).toBe('length');
      const promptTokens = countTextTokens(prompt, 'gpt-3.5-turbo-instruct');
      expect(data.usage).toEqual({
        prompt_tokens: promptTokens,
        completion_tokens: 7,
        total_tokens: promptTokens + 7,
      });
      const generated = data.choices[0].text.slice(prompt.length);
      expect(countTextTokens(generated, 'gpt-3.5-turbo-instruct')).toBe(7);
    });

    it('answers batches of prompts and token prompts, n per prompt', async () => {
      const data = await client.completions.create({
        model: 'gpt-3.5-turbo-instruct',
        prompt: ['first prompt', 'and a second one'],
        n: 2,
        max_tokens: 2,
      });
      expect(data.choices.map((choice) => choice.index)).toEqual([0, 1, 2, 3]);
      expect(data.usage?.completion_tokens).toBe(8);

      const tokens = await client.completions.create({
        model: 'gpt-3.5-turbo-instruct',
        prompt: [
          [1, 2, 3],
          [4, 5],
        ],
        max_tokens: 1,
      });
      expect(tokens.usage?.prompt_tokens).toBe(5);
      expect(tokens.choices).toHaveLength(2);
    });

    it('streams with include_usage', async () => {
      const stream = await client.completions.create({
        model: 'gpt-3.5-turbo-instruct',
        prompt: 'Hello',
        max_tokens: 4,
        stream: true,
        stream_options: { include_usage: true },
      });
      let text = '';
      let usage: OpenAI.CompletionUsage | undefined;
      for await (const chunk of stream) {
        text += chunk.choices[0]?.text ?? '';
        if (chunk.usage) usage = chunk.usage;
      }
      expect(countTextTokens(text, 'gpt-3.5-turbo-instruct')).toBe(4);
      expect(usage?.completion_tokens).toBe(4);
      expect(usage?.prompt_tokens).toBe(countTextTokens('Hello', 'gpt-3.5-turbo-instruct'));
    });
  });

  describe('embeddings', () => {
    it('answers base64 (the SDK default) with unit vectors and prompt-only usage', async () => {
      const input = ['hello world', 'token budgets'];
      const data = await client.embeddings.create({ model: 'text-embedding-3-small', input });
      expect(data.object).toBe('list');
      expect(data.data).toHaveLength(2);
      for (const item of data.data) {
        expect(item.object).toBe('embedding');
        expect(item.embedding).toHaveLength(1536);
        const norm = Math.sqrt(item.embedding.reduce((sum, v) => sum + v * v, 0));
        expect(norm).toBeCloseTo(1, 4);
      }
      const tokens = input.reduce(
        (sum, text) => sum + countTextTokens(text, 'text-embedding-3-small'),
        0,
      );
      expect(data.usage).toEqual({ prompt_tokens: tokens, total_tokens: tokens });
    });

    it('answers float with dimensions, deterministically and equal to base64', async () => {
      const body = { model: 'text-embedding-3-large', input: 'same text', dimensions: 256 };
      const float = await request(server.url)
        .post('/v1/embeddings')
        .send({ ...body, encoding_format: 'float' });
      const again = await request(server.url)
        .post('/v1/embeddings')
        .send({ ...body, encoding_format: 'float' });
      const base64 = await client.embeddings.create({ ...body, encoding_format: 'base64' });
      const vector = (float.body as OpenAI.CreateEmbeddingResponse).data[0].embedding;
      expect(vector).toHaveLength(256);
      expect((again.body as OpenAI.CreateEmbeddingResponse).data[0].embedding).toEqual(vector);
      const decoded = Buffer.from(base64.data[0].embedding as unknown as string, 'base64');
      const floats = new Float32Array(decoded.buffer, decoded.byteOffset, decoded.byteLength / 4);
      expect(Array.from(floats)).toEqual(vector);
    });

    it('accepts token arrays and rejects empty input', async () => {
      const data = await client.embeddings.create({
        model: 'text-embedding-3-small',
        input: [[1, 2, 3, 4]],
        encoding_format: 'float',
      });
      expect(data.usage.prompt_tokens).toBe(4);
      await expect(
        client.embeddings.create({ model: 'text-embedding-3-small', input: '' }),
      ).rejects.toBeInstanceOf(BadRequestError);
    });
  });

  describe('responses (JSON)', () => {
    const INSTRUCTIONS = 'You are a helpful assistant.';
    const QUESTION = 'What is the weather in Paris?';

    it('answers in OpenAI shape, input counted by the estimator rule (known vector)', async () => {
      const { data, response } = await client.responses
        .create({ model: MODEL, instructions: INSTRUCTIONS, input: QUESTION })
        .withResponse();
      expect(data).toMatchObject({
        object: 'response',
        status: 'completed',
        model: MODEL,
        error: null,
        incomplete_details: null,
        instructions: INSTRUCTIONS,
        max_output_tokens: null,
        tools: [],
      });
      expect(data.id).toMatch(/^resp_[0-9a-f]{32}$/);
      expect(Math.abs(data.created_at - Date.now() / 1000)).toBeLessThan(5);
      expect(data.output).toHaveLength(1);
      const [message] = data.output as OpenAI.Responses.ResponseOutputMessage[];
      expect(message).toMatchObject({ type: 'message', status: 'completed', role: 'assistant' });
      expect(message.id).toMatch(/^msg_[0-9a-f]{32}$/);
      expect(message.content).toHaveLength(1);
      expect(message.content[0]).toMatchObject({ type: 'output_text', annotations: [] });
      const text = (message.content[0] as OpenAI.Responses.ResponseOutputText).text;
      expect(data.output_text).toBe(text); // the SDK's convenience field, built from output
      expect(countTextTokens(text, MODEL)).toBe(16);
      // (3 + system 1 + 6) + (3 + user 1 + 7) + 3 priming, in o200k_base.
      expect(
        countResponseInput({ model: MODEL, instructions: INSTRUCTIONS, input: QUESTION }),
      ).toBe(24);
      expect(data.usage).toEqual({
        input_tokens: 24,
        input_tokens_details: { cached_tokens: 0 },
        output_tokens: 16,
        output_tokens_details: { reasoning_tokens: 0 },
        total_tokens: 40,
      });
      expect(response.headers.get('content-type')).toBe('application/json');
      expect(response.headers.get('x-ratelimit-remaining-tokens')).toBe(String(10_000_000 - 40));
    });

    it('counts input items (messages, parts, images, function calls, tools) like the estimator', async () => {
      const input: OpenAI.Responses.ResponseInput = [
        { role: 'developer', content: 'Answer briefly.' },
        {
          role: 'user',
          content: [
            { type: 'input_text', text: 'What is in this picture, and the weather?' },
            { type: 'input_image', detail: 'low', image_url: 'data:image/png;base64,AAAA' },
          ],
        },
        {
          type: 'function_call',
          call_id: 'call_1',
          name: 'get_weather',
          arguments: '{"city":"Paris"}',
        },
        { type: 'function_call_output', call_id: 'call_1', output: '{"temperature":21}' },
      ];
      const tools: OpenAI.Responses.Tool[] = [
        {
          type: 'function',
          name: 'get_weather',
          description: 'Current weather for a city',
          parameters: { type: 'object', properties: { city: { type: 'string' } } },
          strict: false,
        },
      ];
      const data = await client.responses.create({ model: MODEL, input, tools });
      expect(data.usage?.input_tokens).toBe(countResponseInput({ model: MODEL, input, tools }));
      expect(data.tools).toEqual(tools);
    });

    it('a reply cut by max_output_tokens is incomplete, as with OpenAI', async () => {
      const data = await client.responses.create({
        model: MODEL,
        input: QUESTION,
        max_output_tokens: 20,
      });
      expect(data.status).toBe('incomplete');
      expect(data.incomplete_details).toEqual({ reason: 'max_output_tokens' });
      expect(data.output[0]).toMatchObject({ type: 'message', status: 'incomplete' });
      expect(data.max_output_tokens).toBe(20);
      expect(data.usage?.output_tokens).toBe(20);
      expect(countTextTokens(data.output_text, MODEL)).toBe(20);
    });

    it('the completionTokens knob shortens the reply, which then completes', async () => {
      const data = await client.responses.create({
        model: MODEL,
        input: QUESTION,
        max_output_tokens: 100,
        mock: { completionTokens: 5 },
      } as ResponseParams);
      expect(data.status).toBe('completed');
      expect(data.usage?.output_tokens).toBe(5);
      expect(JSON.stringify(data)).not.toContain('mock');
    });

    it.each([
      [{ input: 'x' }, 'model'],
      [{ model: MODEL, input: 42 }, 'input'],
      [{ model: MODEL, input: ['loose'] }, 'input[0]'],
      [{ model: MODEL, input: [{ role: 'robot', content: 'x' }] }, 'input[0].role'],
      [{ model: MODEL, input: [{ content: 'x' }] }, 'input[0].role'],
      [{ model: MODEL, input: [{ role: 'user' }] }, 'input[0].content'],
      [{ model: MODEL, input: 'x', instructions: 7 }, 'instructions'],
      [{ model: MODEL, input: 'x', tools: {} }, 'tools'],
      [{ model: MODEL, input: 'x', max_output_tokens: 15 }, 'max_output_tokens'],
      [{ model: MODEL, input: 'x', stream_options: {} }, 'stream_options'],
      [
        { model: MODEL, input: 'x', stream: true, stream_options: { include_usage: true } },
        'stream_options.include_usage',
      ],
    ])('answers an invalid body %p with a 400 naming %s', async (body, param) => {
      const res = await request(server.url).post('/v1/responses').send(body);
      expect(res.status).toBe(400);
      expect((res.body as ErrorBody).error.param).toBe(param);
    });

    it('accepts any other kind of item, counted by its JSON', async () => {
      const input = [{ type: 'item_reference', id: 'msg_abc' }] as OpenAI.Responses.ResponseInput;
      const data = await client.responses.create({ model: MODEL, input });
      expect(data.usage?.input_tokens).toBe(countResponseInput({ model: MODEL, input }));
    });
  });

  describe('responses (SSE)', () => {
    const ORDER_HEAD = [
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
    ];
    const ORDER_TAIL = [
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.completed',
    ];

    it('streams typed events in OpenAI order through the SDK, usage on response.completed', async () => {
      const stream = await client.responses.create({
        model: MODEL,
        input: 'Say something about token budgets.',
        stream: true,
      });
      const events: ResponseEvent[] = [];
      for await (const event of stream) events.push(event);
      const types = events.map((event) => event.type);
      expect(types).toEqual([
        ...ORDER_HEAD,
        ...Array<string>(16).fill('response.output_text.delta'),
        ...ORDER_TAIL,
      ]);
      expect(events.map((event) => event.sequence_number)).toEqual(events.map((_, i) => i));

      const created = events[0] as OpenAI.Responses.ResponseCreatedEvent;
      expect(created.response).toMatchObject({ status: 'in_progress', output: [], usage: null });
      const added = events[2] as OpenAI.Responses.ResponseOutputItemAddedEvent;
      const itemId = added.item.id;
      expect(added.item).toMatchObject({ type: 'message', status: 'in_progress', content: [] });

      const deltas = events.filter(
        (event): event is OpenAI.Responses.ResponseTextDeltaEvent =>
          event.type === 'response.output_text.delta',
      );
      for (const delta of deltas) {
        expect(delta).toMatchObject({ item_id: itemId, output_index: 0, content_index: 0 });
        expect(countTextTokens(delta.delta, MODEL)).toBe(1);
      }
      const text = deltas.map((delta) => delta.delta).join('');
      const done = events.at(-4) as OpenAI.Responses.ResponseTextDoneEvent;
      expect(done.text).toBe(text);

      const completed = events.at(-1) as OpenAI.Responses.ResponseCompletedEvent;
      expect(completed.response.id).toBe(created.response.id);
      expect(completed.response.status).toBe('completed');
      expect(completed.response.output).toEqual([
        {
          id: itemId,
          type: 'message',
          status: 'completed',
          role: 'assistant',
          content: [{ type: 'output_text', annotations: [], logprobs: [], text }],
        },
      ]);
      const inputTokens = countResponseInput({
        model: MODEL,
        input: 'Say something about token budgets.',
      });
      expect(completed.response.usage).toEqual({
        input_tokens: inputTokens,
        input_tokens_details: { cached_tokens: 0 },
        output_tokens: 16,
        output_tokens_details: { reasoning_tokens: 0 },
        total_tokens: inputTokens + 16,
      });
      expect(countTextTokens(text, MODEL)).toBe(completed.response.usage?.output_tokens);
    });

    it('sends event: and data: lines, SSE headers, and no [DONE]', async () => {
      const { status, events } = await responseSse(server.url, {
        model: MODEL,
        input: 'hi',
        stream: true,
        stream_options: { include_obfuscation: false },
      });
      expect(status).toBe(200);
      for (const { event, data } of events) expect(data.type).toBe(event);
      expect(events.at(-1)?.event).toBe('response.completed');
      const res = await request(server.url)
        .post('/v1/responses')
        .send({ model: MODEL, input: 'hi', stream: true });
      expect(res.headers['content-type']).toBe('text/event-stream; charset=utf-8');
      expect(res.text).not.toContain('[DONE]');
    });

    it('ends with response.incomplete when max_output_tokens cuts the reply', async () => {
      const { events } = await responseSse(server.url, {
        model: MODEL,
        input: 'hi',
        stream: true,
        max_output_tokens: 16,
      });
      const last = events.at(-1)?.data as OpenAI.Responses.ResponseIncompleteEvent;
      expect(last.type).toBe('response.incomplete');
      expect(last.response.incomplete_details).toEqual({ reason: 'max_output_tokens' });
      expect(last.response.usage?.output_tokens).toBe(16);
    });

    it("is consistent enough for the SDK's stream helper to rebuild the response", async () => {
      const stream = client.responses.stream({ model: MODEL, input: 'hello world' });
      let streamed = '';
      stream.on('response.output_text.delta', (event) => {
        streamed += event.delta;
      });
      const final = await stream.finalResponse();
      expect(final.output_text).toBe(streamed);
      expect(final.usage?.output_tokens).toBe(16);
    });

    it('arrives incrementally with chunkDelayMs', async () => {
      const stream = await client.responses.create({
        model: MODEL,
        input: 'hi',
        stream: true,
        max_output_tokens: 20,
        mock: { chunkDelayMs: 20, completionTokens: 4 },
      } as ResponseStreamParams);
      const started = Date.now();
      const arrivals: number[] = [];
      for await (const event of stream) {
        void event;
        arrivals.push(Date.now() - started);
      }
      // 4 head + 4 deltas + 4 tail = 12 events, 11 gaps of 20 ms.
      expect(arrivals).toHaveLength(12);
      expect(arrivals[0]).toBeLessThan(arrivals[11] - 150);
    });

    it('omitUsage leaves usage out of JSON and of response.completed', async () => {
      server.setBehaviour({ omitUsage: true });
      const json = await request(server.url)
        .post('/v1/responses')
        .send({ model: MODEL, input: 'hi' });
      expect(json.status).toBe(200);
      expect(json.body).not.toHaveProperty('usage');
      const stream = await client.responses.create({ model: MODEL, input: 'hi', stream: true });
      let completed: OpenAI.Responses.Response | undefined;
      for await (const event of stream) {
        if (event.type === 'response.completed') completed = event.response;
      }
      expect(completed?.status).toBe('completed');
      expect(completed).not.toHaveProperty('usage');
    });

    it('failMidStreamAfterChunks: K events arrive, then the stream breaks', async () => {
      const stream = await client.responses.create({
        model: MODEL,
        input: 'hi',
        stream: true,
        mock: { failMidStreamAfterChunks: 6 },
      } as ResponseStreamParams);
      const received: ResponseEvent[] = [];
      let failure: unknown = null;
      try {
        for await (const event of stream) received.push(event);
      } catch (err) {
        failure = err;
      }
      expect(failure).not.toBeNull();
      expect(received.map((event) => event.type)).toEqual([
        ...ORDER_HEAD,
        'response.output_text.delta',
        'response.output_text.delta',
      ]);
    });

    it('status, dropConnection and latency knobs apply', async () => {
      const limited = await client.responses
        .create({ model: MODEL, input: 'hi', mock: { status: 429 } } as ResponseParams)
        .then(
          () => null,
          (err: unknown) => err,
        );
      expect(limited).toBeInstanceOf(RateLimitError);
      await expect(
        client.responses.create({
          model: MODEL,
          input: 'hi',
          stream: true,
          mock: { status: 500 },
        } as ResponseStreamParams),
      ).rejects.toBeInstanceOf(InternalServerError);
      await expect(
        client.responses.create({
          model: MODEL,
          input: 'hi',
          mock: { dropConnection: true },
        } as ResponseParams),
      ).rejects.toBeInstanceOf(APIConnectionError);
      const started = Date.now();
      await client.responses.create({
        model: MODEL,
        input: 'hi',
        mock: { latencyMs: 120 },
      } as ResponseParams);
      expect(Date.now() - started).toBeGreaterThanOrEqual(115);
      expect(server.lastRequest()?.path).toBe('/v1/responses');
    });
  });

  describe('streamed text against usage', () => {
    it.each(['gpt-4o-mini', 'gpt-4', 'gpt-3.5-turbo'])(
      'chat (%s): every delta is one token, and the deltas of a choice add up to its usage',
      async (model) => {
        const { events } = await sse(server.url, {
          model,
          messages: MESSAGES,
          stream: true,
          stream_options: { include_usage: true },
          n: 2,
          max_tokens: 37,
        });
        const chunks = events.slice(0, -1).map((event) => JSON.parse(event) as ChatChunk);
        const texts = ['', ''];
        for (const chunk of chunks) {
          for (const choice of chunk.choices) {
            const delta = choice.delta.content ?? '';
            if (delta !== '') expect(countTextTokens(delta, model)).toBe(1);
            texts[choice.index] += delta;
          }
        }
        // Usage only in the last chunk, which has no choices.
        expect(chunks.filter((chunk) => chunk.usage)).toEqual([chunks.at(-1)]);
        const usage = chunks.at(-1)?.usage;
        expect(texts.map((text) => countTextTokens(text, model))).toEqual([37, 37]);
        expect(usage?.completion_tokens).toBe(74);
      },
    );

    it('completions: the generated deltas add up to completion_tokens; an echo is its own first event', async () => {
      const model = 'gpt-3.5-turbo-instruct';
      const stream = await client.completions.create({
        model,
        prompt: 'Once upon a time',
        echo: true,
        max_tokens: 9,
        stream: true,
        stream_options: { include_usage: true },
      });
      const pieces: string[] = [];
      let usage: OpenAI.CompletionUsage | undefined;
      for await (const chunk of stream) {
        if (chunk.usage) {
          expect(chunk.choices).toEqual([]);
          usage = chunk.usage;
        }
        const text = chunk.choices[0]?.text ?? '';
        if (text !== '') pieces.push(text);
      }
      expect(pieces[0]).toBe('Once upon a time');
      const generated = pieces.slice(1);
      for (const piece of generated) expect(countTextTokens(piece, model)).toBe(1);
      expect(countTextTokens(generated.join(''), model)).toBe(9);
      expect(usage?.completion_tokens).toBe(9);
    });
  });

  describe('models', () => {
    it('lists and retrieves', async () => {
      const models = await client.models.list();
      const ids = models.data.map((model) => model.id);
      expect(ids).toContain('gpt-4o-mini');
      const model = await client.models.retrieve('anything-goes');
      expect(model).toMatchObject({ id: 'anything-goes', object: 'model', owned_by: 'system' });
    });
  });

  describe('errors', () => {
    it('answers invalid JSON with a 400 in OpenAI shape', async () => {
      const res = await request(server.url)
        .post('/v1/chat/completions')
        .set('content-type', 'application/json')
        .send('{"model": ');
      expect(res.status).toBe(400);
      const body = res.body as ErrorBody;
      expect(body.error).toMatchObject({ type: 'invalid_request_error', param: null, code: null });
      expect(body.error.message).toMatch(/JSON/);
      expect(res.headers['x-ratelimit-limit-requests']).toBeDefined();
    });

    it.each([
      [{ messages: MESSAGES }, 'model'],
      [{ model: MODEL }, 'messages'],
      [{ model: MODEL, messages: [] }, 'messages'],
      [{ model: MODEL, messages: [{ role: 'robot', content: 'x' }] }, 'messages[0].role'],
      [{ model: MODEL, messages: MESSAGES, max_tokens: 0 }, 'max_tokens'],
      [{ model: MODEL, messages: MESSAGES, n: 'two' }, 'n'],
      [
        { model: MODEL, messages: MESSAGES, stream_options: { include_usage: true } },
        'stream_options',
      ],
    ])('answers an invalid body %p with a 400 naming %s', async (body, param) => {
      const res = await request(server.url).post('/v1/chat/completions').send(body);
      expect(res.status).toBe(400);
      expect((res.body as ErrorBody).error.param).toBe(param);
    });

    it('answers an unknown route with a 404 in OpenAI shape', async () => {
      const res = await request(server.url).post('/v1/nope').send({});
      expect(res.status).toBe(404);
      expect((res.body as ErrorBody).error.message).toBe('Invalid URL (POST /v1/nope)');
    });
  });

  describe('knobs', () => {
    it('status 429: the SDK raises RateLimitError, with retry-after and reset headers', async () => {
      server.setBehaviour({ status: 429, retryAfterMs: 2500 });
      const error = await client.chat.completions.create({ model: MODEL, messages: MESSAGES }).then(
        () => null,
        (err: unknown) => err,
      );
      expect(error).toBeInstanceOf(RateLimitError);
      const rateLimit = error as RateLimitError;
      expect(rateLimit.code).toBe('rate_limit_exceeded');
      expect(rateLimit.headers.get('retry-after')).toBe('3');
      expect(rateLimit.headers.get('retry-after-ms')).toBe('2500');
      expect(rateLimit.headers.get('x-ratelimit-remaining-requests')).toBe('0');
      expect(rateLimit.headers.get('x-ratelimit-reset-requests')).toBe('2.5s');
    });

    it('status 500 with type, code and message overrides', async () => {
      server.setBehaviour({
        status: 500,
        errorType: 'server_error',
        errorCode: 'boom',
        message: 'Kaput',
      });
      const error = await client.chat.completions.create({ model: MODEL, messages: MESSAGES }).then(
        () => null,
        (err: unknown) => err,
      );
      expect(error).toBeInstanceOf(InternalServerError);
      expect((error as InternalServerError).error).toEqual({
        message: 'Kaput',
        type: 'server_error',
        param: null,
        code: 'boom',
      });
    });

    it('per-request knobs through the body field `mock`, recorded untouched, never echoed', async () => {
      const res = await request(server.url)
        .post('/v1/chat/completions')
        .send({
          model: MODEL,
          messages: MESSAGES,
          mock: { status: 503 },
          custom_field: { keep: [1, 2] },
        });
      expect(res.status).toBe(503);
      expect((res.body as ErrorBody).error.type).toBe('server_error');

      const ok = await client.chat.completions.create({
        model: MODEL,
        messages: MESSAGES,
        mock: { completionTokens: 3 },
      } as ChatParams);
      expect(ok.usage?.completion_tokens).toBe(3);
      expect(JSON.stringify(ok)).not.toContain('mock');
      expect(server.requests[0].body).toMatchObject({
        mock: { status: 503 },
        custom_field: { keep: [1, 2] },
      });
      expect(server.lastRequest()?.body).toMatchObject({ mock: { completionTokens: 3 } });
      // The global knobs are unchanged by per-request ones.
      expect(server.behaviour.status).toBeNull();
    });

    it('rejects an unknown per-request knob', async () => {
      const res = await request(server.url)
        .post('/v1/chat/completions')
        .send({ model: MODEL, messages: MESSAGES, mock: { latncyMs: 5 } });
      expect(res.status).toBe(400);
      expect((res.body as ErrorBody).error.param).toBe('mock.latncyMs');
    });

    it('errorRate 1 always fails (500 by default), 0 never', async () => {
      server.setBehaviour({ errorRate: 1 });
      const failing = await request(server.url)
        .post('/v1/chat/completions')
        .send({ model: MODEL, messages: MESSAGES });
      expect(failing.status).toBe(500);
      server.setBehaviour({ errorRate: 0, status: 500 });
      const passing = await request(server.url)
        .post('/v1/chat/completions')
        .send({ model: MODEL, messages: MESSAGES });
      expect(passing.status).toBe(200);
    });

    it('latencyMs delays the headers; chunkDelayMs spaces the events', async () => {
      const started = Date.now();
      const res = await request(server.url)
        .post('/v1/chat/completions')
        .send({ model: MODEL, messages: MESSAGES, mock: { latencyMs: 150 } });
      expect(Date.now() - started).toBeGreaterThanOrEqual(145);
      expect(Number(res.headers['openai-processing-ms'])).toBeGreaterThanOrEqual(145);

      const streamStarted = Date.now();
      const { events } = await sse(server.url, {
        model: MODEL,
        messages: MESSAGES,
        stream: true,
        max_tokens: 4,
        mock: { chunkDelayMs: 30 },
      });
      // role + 4 content + finish + [DONE] = 7 events, 6 gaps
      expect(events).toHaveLength(7);
      expect(Date.now() - streamStarted).toBeGreaterThanOrEqual(170);
    });

    it('completionTokens caps the reply length (finish_reason stop)', async () => {
      server.setBehaviour({ completionTokens: 2 });
      const data = await client.chat.completions.create({
        model: MODEL,
        messages: MESSAGES,
        max_tokens: 50,
      });
      expect(data.usage?.completion_tokens).toBe(2);
      expect(data.choices[0].finish_reason).toBe('stop');
    });

    it('omitUsage leaves usage out of JSON and streams', async () => {
      server.setBehaviour({ omitUsage: true });
      const json = await request(server.url)
        .post('/v1/chat/completions')
        .send({ model: MODEL, messages: MESSAGES });
      expect(json.body).not.toHaveProperty('usage');
      const { events } = await sse(server.url, {
        model: MODEL,
        messages: MESSAGES,
        stream: true,
        stream_options: { include_usage: true },
      });
      expect(events.at(-1)).toBe('[DONE]');
      const chunks = events.slice(0, -1).map((event) => JSON.parse(event) as ChatChunk);
      expect(chunks.every((chunk) => chunk.usage === null)).toBe(true);
    });

    it('dropConnection: the SDK sees a connection error', async () => {
      server.setBehaviour({ dropConnection: true });
      await expect(
        client.chat.completions.create({ model: MODEL, messages: MESSAGES }),
      ).rejects.toBeInstanceOf(APIConnectionError);
    });

    it('failMidStreamAfterChunks: K events arrive, then the stream breaks', async () => {
      const stream = await client.chat.completions.create({
        model: MODEL,
        messages: MESSAGES,
        stream: true,
        max_tokens: 10,
        mock: { failMidStreamAfterChunks: 3 },
      } as ChatStreamParams);
      const received: ChatChunk[] = [];
      let failure: unknown = null;
      try {
        for await (const chunk of stream) received.push(chunk);
      } catch (err) {
        failure = err;
      }
      expect(failure).not.toBeNull();
      expect(received).toHaveLength(3);
    });

    it('failMidStreamAfterChunks on a JSON answer cuts the body', async () => {
      await expect(
        client.chat.completions.create({
          model: MODEL,
          messages: MESSAGES,
          mock: { failMidStreamAfterChunks: 0 },
        } as ChatParams),
      ).rejects.toThrow();
    });
  });

  describe('rate-limit headers', () => {
    it('are present and well-formed on every answer', async () => {
      const first = await request(server.url)
        .post('/v1/chat/completions')
        .send({ model: MODEL, messages: MESSAGES });
      const second = await request(server.url).get('/v1/models');
      for (const res of [first, second]) {
        expect(res.headers['x-ratelimit-limit-requests']).toBe('10000');
        expect(res.headers['x-ratelimit-limit-tokens']).toBe('10000000');
        expect(res.headers['x-ratelimit-remaining-requests']).toMatch(/^\d+$/);
        expect(res.headers['x-ratelimit-remaining-tokens']).toMatch(/^\d+$/);
        expect(res.headers['x-ratelimit-reset-requests']).toMatch(DURATION);
        expect(res.headers['x-ratelimit-reset-tokens']).toMatch(DURATION);
      }
      expect(Number(first.headers['x-ratelimit-remaining-requests'])).toBe(9999);
      expect(Number(first.headers['x-ratelimit-remaining-tokens'])).toBe(
        10_000_000 - (PROMPT_TOKENS + 16),
      );
      expect(first.headers['x-ratelimit-reset-requests']).toBe('6ms');
    });

    it('count down from one request to the next', async () => {
      // 60 a minute refills one a second, so the count does not depend on how fast this
      // machine answers (at the default 10,000 a minute, one comes back every 6 ms).
      server.setBehaviour({ rateLimitRequests: 60 });
      const remaining = async () =>
        Number(
          (await request(server.url).get('/v1/models')).headers['x-ratelimit-remaining-requests'],
        );
      expect(await remaining()).toBe(59);
      expect(await remaining()).toBe(58);
    });

    it('enforceRateLimits answers 429 once the limit is used up', async () => {
      server.setBehaviour({ enforceRateLimits: true, rateLimitRequests: 2 });
      const statuses: number[] = [];
      for (let i = 0; i < 3; i++) {
        const res = await request(server.url)
          .post('/v1/chat/completions')
          .send({ model: MODEL, messages: MESSAGES });
        statuses.push(res.status);
        if (res.status === 429) {
          expect((res.body as ErrorBody).error).toMatchObject({
            type: 'requests',
            code: 'rate_limit_exceeded',
          });
          expect(res.headers['retry-after']).toMatch(/^\d+$/);
          expect(res.headers['x-ratelimit-remaining-requests']).toBe('0');
        }
      }
      expect(statuses).toEqual([200, 200, 429]);
    });
  });

  describe('run-time config over HTTP', () => {
    it('GET/POST /_mock/config and POST /_mock/reset', async () => {
      const initial = await request(server.url).get('/_mock/config');
      expect(initial.body).toMatchObject({ latencyMs: 0, defaultCompletionTokens: 16 });
      const set = await request(server.url).post('/_mock/config').send({ completionTokens: 4 });
      expect(set.status).toBe(200);
      expect(set.body).toMatchObject({ completionTokens: 4 });
      const data = await client.chat.completions.create({ model: MODEL, messages: MESSAGES });
      expect(data.usage?.completion_tokens).toBe(4);
      const bad = await request(server.url).post('/_mock/config').send({ latencyMs: -1 });
      expect(bad.status).toBe(400);
      expect((bad.body as ErrorBody).error.param).toBe('behaviour.latencyMs');
      const reset = await request(server.url).post('/_mock/reset');
      expect(reset.body).toMatchObject({ completionTokens: null });
      const recorded = await request(server.url).get('/_mock/requests');
      expect(recorded.body).toEqual({ data: [] });
    });
  });

  describe('recorder', () => {
    it('records method, path, headers and body; can be turned off', async () => {
      await client.chat.completions.create({ model: MODEL, messages: MESSAGES });
      const recorded = server.lastRequest();
      expect(recorded).toMatchObject({ method: 'POST', path: '/v1/chat/completions' });
      expect(recorded?.headers.authorization).toBe('Bearer sk-test');
      expect(recorded?.body).toEqual({ model: MODEL, messages: MESSAGES });
      server.setRecording(false);
      await client.models.list();
      expect(server.requests).toHaveLength(1);
      server.setRecording(true);
    });
  });
});

describe('mock-openai with auth and a model allow-list (e2e)', () => {
  let server: MockOpenAIServer;

  beforeAll(async () => {
    server = await startMockOpenAI({ apiKey: 'sk-right', models: ['gpt-4o-mini'] });
  });

  afterAll(async () => {
    await server.close();
  });

  const clientWith = (apiKey: string) =>
    new OpenAI({ baseURL: `${server.url}/v1`, apiKey, maxRetries: 0 });

  it('answers 401 without or with a wrong key', async () => {
    const missing = await request(server.url)
      .post('/v1/chat/completions')
      .send({ model: MODEL, messages: MESSAGES });
    expect(missing.status).toBe(401);
    expect((missing.body as ErrorBody).error.type).toBe('invalid_request_error');
    await expect(
      clientWith('sk-wrong').chat.completions.create({ model: MODEL, messages: MESSAGES }),
    ).rejects.toBeInstanceOf(AuthenticationError);
  });

  it('accepts the right key and records it', async () => {
    const data = await clientWith('sk-right').chat.completions.create({
      model: MODEL,
      messages: MESSAGES,
    });
    expect(data.choices).toHaveLength(1);
    expect(server.lastRequest()?.headers.authorization).toBe('Bearer sk-right');
  });

  it('answers 404 model_not_found for a model outside the allow-list', async () => {
    const client = clientWith('sk-right');
    const error = await client.chat.completions
      .create({ model: 'gpt-5-imaginary', messages: MESSAGES })
      .then(
        () => null,
        (err: unknown) => err,
      );
    expect(error).toBeInstanceOf(NotFoundError);
    expect((error as NotFoundError).code).toBe('model_not_found');
    await expect(client.models.retrieve('gpt-5-imaginary')).rejects.toBeInstanceOf(NotFoundError);
    const list = await client.models.list();
    expect(list.data.map((model) => model.id)).toEqual(['gpt-4o-mini']);
  });
});
