import type OpenAI from 'openai';
import {
  TOKENS_PER_TOOL_CALL,
  TOKENS_PER_TOOL_DEFINITION,
  TOOL_SECTION_TOKENS,
} from './chat-prompt-counter';
import {
  COMPLETIONS_DEFAULT_MAX_TOKENS,
  completionOutputAllowance,
  countCompletionPromptTokens,
  countEmbeddingInputTokens,
  countResponseInputTokens,
  responseOutputAllowance,
} from './endpoint-counters';
import type {
  CompletionEstimateInput,
  EmbeddingEstimateInput,
  ResponseEstimateInput,
  ResponseInputItem,
} from './endpoint-inputs';
import { encodingForModel } from './encoding-for-model';
import type { ChatMessageInput } from './estimator.types';
import { FILE_PART_TOKENS, imageAllowance } from './non-text-allowances';
import { referenceCount } from './testing/reference-counts';
import { TokenCounter, countChatPromptTokens } from './token-counter';

const ref = (text: string, model = 'gpt-4o') => referenceCount(text, encodingForModel(model));
const INSTRUCT = 'gpt-3.5-turbo-instruct';
/** Differs between cl100k_base and o200k_base, so it shows which encoding was used. */
const MIXED = 'Tokenizers differ: 中文 and emoji 🚀 split differently.';

describe('countCompletionPromptTokens', () => {
  const prompt = (value: CompletionEstimateInput['prompt'], model = INSTRUCT) =>
    countCompletionPromptTokens({ model, prompt: value });

  it('counts a string prompt with no overhead (known vector)', () => {
    // "Say this is a test" is 5 tokens in cl100k_base (tiktoken), OpenAI's own example.
    expect(prompt('Say this is a test')).toEqual({ tokens: 5, exact: true, prompts: 1 });
  });

  it('sums a batch of strings and counts token arrays by their length', () => {
    expect(prompt(['Say this is a test', 'Once upon a time'])).toEqual({
      tokens: 5 + 4,
      exact: true,
      prompts: 2,
    });
    expect(prompt([15339, 1917, 0])).toEqual({ tokens: 3, exact: true, prompts: 1 });
    expect(
      prompt([
        [1, 2, 3],
        [4, 5],
      ]),
    ).toEqual({ tokens: 5, exact: true, prompts: 2 });
  });

  it('counts nothing for an empty or missing prompt', () => {
    expect(prompt('')).toEqual({ tokens: 0, exact: true, prompts: 1 });
    expect(prompt([])).toEqual({ tokens: 0, exact: true, prompts: 0 });
    expect(prompt(null)).toEqual({ tokens: 0, exact: true, prompts: 0 });
  });

  it.each([
    ['gpt-3.5-turbo-instruct', 'cl100k_base'],
    ['davinci-002', 'cl100k_base'],
    ['babbage-002', 'cl100k_base'],
    ['some-unknown-model', 'o200k_base'],
  ] as const)('uses the encoding of %s (%s)', (model, encoding) => {
    expect(prompt(MIXED, model).tokens).toBe(referenceCount(MIXED, encoding));
  });

  it('tolerates malformed items, counting them as their JSON', () => {
    const odd = ['Once upon a time', { x: 1 }, 7, 8] as unknown as string[];
    expect(prompt(odd)).toEqual({
      tokens: 4 + ref('{"x":1}', INSTRUCT) + 2,
      exact: true,
      prompts: 3,
    });
  });

  it('bounds a huge or pathological prompt and says so', () => {
    const huge = 'word '.repeat(2_000_000); // 10 MB
    const big = prompt(huge);
    expect(big.exact).toBe(false);
    expect(big.tokens).toBeGreaterThanOrEqual(2_000_000);
    const blob = prompt(['a'.repeat(6_000), 'fine']);
    expect(blob.exact).toBe(false);
    expect(blob.tokens).toBeGreaterThanOrEqual(ref('a'.repeat(6_000), INSTRUCT) + 1);
  });

  it('uses the given counter and its limits', () => {
    const tiny = new TokenCounter({ limits: { maxSpanBytes: 2 } });
    expect(countCompletionPromptTokens({ model: INSTRUCT, prompt: 'hello world' }, tiny)).toEqual({
      tokens: 11,
      exact: false,
      prompts: 1,
    });
  });
});

describe('completionOutputAllowance', () => {
  it('defaults to 16 per completion, as OpenAI does for this endpoint', () => {
    expect(COMPLETIONS_DEFAULT_MAX_TOKENS).toBe(16);
    expect(completionOutputAllowance({}, 1)).toBe(16);
    expect(completionOutputAllowance({ max_tokens: null }, 1)).toBe(16);
    expect(completionOutputAllowance({ max_tokens: 100 }, 1)).toBe(100);
    expect(completionOutputAllowance({ max_tokens: 0 }, 1)).toBe(0);
  });

  it('charges max(n, best_of) completions for every prompt of a batch', () => {
    expect(completionOutputAllowance({ max_tokens: 10, n: 2 }, 1)).toBe(20);
    expect(completionOutputAllowance({ max_tokens: 10, n: 2, best_of: 5 }, 1)).toBe(50);
    expect(completionOutputAllowance({ max_tokens: 10, n: 3, best_of: 1 }, 1)).toBe(30);
    expect(completionOutputAllowance({ max_tokens: 10, best_of: 4 }, 3)).toBe(120);
    expect(completionOutputAllowance({ max_tokens: 10, n: null, best_of: null }, 2)).toBe(20);
    // An empty batch is still charged as one prompt.
    expect(completionOutputAllowance({ max_tokens: 10 }, 0)).toBe(10);
  });

  it('ignores values that are not token counts', () => {
    expect(completionOutputAllowance({ max_tokens: -1, n: Number.NaN }, 1)).toBe(16);
    expect(completionOutputAllowance({ max_tokens: 10.9, n: 2.7, best_of: -3 }, 1)).toBe(20);
  });
});

describe('countEmbeddingInputTokens', () => {
  const model = 'text-embedding-3-small';
  const input = (value: EmbeddingEstimateInput['input'], name = model) =>
    countEmbeddingInputTokens({ model: name, input: value });

  it('counts strings (known vector) and token arrays, with no overhead', () => {
    // 10 tokens in cl100k_base (tiktoken).
    expect(input('The quick brown fox jumps over the lazy dog.')).toEqual({
      tokens: 10,
      exact: true,
    });
    expect(input(['hello world', 'Once upon a time'])).toEqual({ tokens: 6, exact: true });
    expect(input([1, 2, 3, 4])).toEqual({ tokens: 4, exact: true });
    expect(input([[1, 2], [3], [4, 5, 6]])).toEqual({ tokens: 6, exact: true });
  });

  it.each(['text-embedding-3-small', 'text-embedding-3-large', 'text-embedding-ada-002'])(
    'uses cl100k_base for %s',
    (name) => {
      expect(input(MIXED, name).tokens).toBe(referenceCount(MIXED, 'cl100k_base'));
    },
  );

  it('bounds huge input', () => {
    const text = 'x'.repeat(1 << 20);
    // Given the time, the bound is the text's UTF-8 length: no piece that long is tokenized.
    const patient = new TokenCounter({ limits: { exactTimeMs: 1e6 } });
    expect(countEmbeddingInputTokens({ model, input: [text] }, patient)).toEqual({
      tokens: 1 << 20,
      exact: false,
    });
    // Under the default time limit a busy machine may run out of time while measuring, and
    // bound the unmeasured part by 3 UTF-8 bytes per UTF-16 unit: never below the length.
    const hurried = input([text]);
    expect(hurried.exact).toBe(false);
    expect(hurried.tokens).toBeGreaterThanOrEqual(1 << 20);
    expect(hurried.tokens).toBeLessThanOrEqual(3 * (1 << 20));
  });
});

describe('countResponseInputTokens', () => {
  const MODEL = 'gpt-4o';
  const count = (input: Omit<ResponseEstimateInput, 'model'>, model = MODEL) =>
    countResponseInputTokens({ model, ...input });

  it('counts a string input as one user message, plus reply priming (known vector)', () => {
    // 3 + "user" (1) + "What is the weather in Paris?" (7) + 3 priming, in o200k_base.
    expect(count({ input: 'What is the weather in Paris?' })).toEqual({
      tokens: 14,
      exact: true,
    });
  });

  it('counts instructions as a system message before the input (known vector)', () => {
    // (3 + "system" 1 + 6) + (3 + "user" 1 + 7) + 3
    expect(
      count({
        instructions: 'You are a helpful assistant.',
        input: 'What is the weather in Paris?',
      }),
    ).toEqual({ tokens: 24, exact: true });
    // Empty or null instructions add nothing.
    expect(count({ instructions: '', input: 'hello world' }).tokens).toBe(3 + 1 + 2 + 3);
    expect(count({ instructions: null, input: 'hello world' }).tokens).toBe(3 + 1 + 2 + 3);
  });

  it('counts an empty request as the reply priming alone', () => {
    expect(count({})).toEqual({ tokens: 3, exact: true });
    expect(count({ input: [] })).toEqual({ tokens: 3, exact: true });
    expect(count({ input: '' })).toEqual({ tokens: 3 + 1 + 3, exact: true });
  });

  it('counts message items exactly as chat counts the same messages', () => {
    const conversation = [
      { role: 'developer', content: 'Answer in French.' },
      { role: 'user', content: 'Good morning, how are you?' },
      { role: 'assistant', content: 'Bonjour, ça va bien.' },
      { role: 'user', content: 'And the weather?' },
    ];
    const asItems: ResponseInputItem[] = conversation.map((message, i) =>
      i % 2 === 0 ? { type: 'message', ...message } : message,
    );
    const chat = countChatPromptTokens({
      model: MODEL,
      messages: [{ role: 'system', content: 'Be brief.' }, ...conversation],
    });
    expect(count({ instructions: 'Be brief.', input: asItems })).toEqual(chat);
  });

  it('counts text parts by their text, as chat counts text parts', () => {
    const parts = [
      { type: 'input_text', text: 'Describe this' },
      { type: 'input_text', text: ' in one sentence.' },
    ];
    const previous = {
      type: 'message',
      role: 'assistant',
      id: 'msg_1',
      status: 'completed',
      content: [{ type: 'output_text', text: 'A cat on a mat.', annotations: [] }],
    };
    const chat = countChatPromptTokens({
      model: MODEL,
      messages: [
        { role: 'user', content: parts.map((part) => ({ type: 'text', text: part.text })) },
        { role: 'assistant', content: 'A cat on a mat.' },
      ],
    });
    expect(count({ input: [{ role: 'user', content: parts }, previous] })).toEqual(chat);
  });

  it('gives images, files and audio their allowances (known vector)', () => {
    const image = (detail: string) => ({
      type: 'input_image',
      detail,
      image_url: 'data:image/png;base64,AAAA',
    });
    const item = (part: Record<string, unknown>, model = MODEL) =>
      count({ input: [{ role: 'user', content: [part] }] }, model).tokens - (3 + 1 + 3);
    expect(item(image('low'))).toBe(85);
    expect(item(image('high'))).toBe(1445);
    expect(item(image('auto'))).toBe(1445);
    expect(item(image('low'), 'gpt-4o-mini')).toBe(imageAllowance('gpt-4o-mini', 'low'));
    expect(item({ type: 'input_file', file_id: 'file-abc' })).toBe(FILE_PART_TOKENS);
    expect(
      item({ type: 'input_audio', input_audio: { data: 'A'.repeat(448_000), format: 'wav' } }),
    ).toBe(210);
    // 3 + "user" + "Describe this image." (4) + low-detail image + 3 priming.
    expect(
      count({
        input: [
          {
            role: 'user',
            content: [{ type: 'input_text', text: 'Describe this image.' }, image('low')],
          },
        ],
      }).tokens,
    ).toBe(3 + 1 + 4 + 85 + 3);
  });

  it('counts function calls and their outputs like chat tool calls and tool messages', () => {
    const args = '{"city":"Paris"}';
    const result = '{"temperature":21}';
    const items: ResponseInputItem[] = [
      { role: 'user', content: 'What is the weather in Paris?' },
      { type: 'function_call', call_id: 'call_1', name: 'get_weather', arguments: args },
      { type: 'function_call_output', call_id: 'call_1', output: result },
    ] as ResponseInputItem[];
    const chatMessages: ChatMessageInput[] = [
      { role: 'user', content: 'What is the weather in Paris?' },
      {
        role: 'assistant',
        content: null,
        tool_calls: [
          { id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: args } },
        ],
      },
      { role: 'tool', content: result },
    ];
    const expected = countChatPromptTokens({ model: MODEL, messages: chatMessages });
    expect(count({ input: items })).toEqual(expected);
    // Known vector: 11 (user) + (3 + 1 + 4 + 2 + 5) + (3 + 1 + 5) + 3.
    expect(expected.tokens).toBe(11 + 15 + 9 + 3);
    expect(TOKENS_PER_TOOL_CALL).toBe(4);
  });

  it('counts custom tool calls, and tool outputs given as content parts', () => {
    const call = { type: 'custom_tool_call', call_id: 'c', name: 'run_sql', input: 'SELECT 1' };
    const output = {
      type: 'function_call_output',
      call_id: 'c',
      output: [{ type: 'input_text', text: 'one row' }],
    };
    expect(count({ input: [call, output] }).tokens).toBe(
      3 + 1 + 4 + ref('run_sql') + ref('SELECT 1') + (3 + 1 + ref('one row')) + 3,
    );
  });

  it('counts unknown items and parts by their compact JSON, plus the item overhead', () => {
    const reasoning = {
      type: 'reasoning',
      id: 'rs_1',
      summary: [{ type: 'summary_text', text: 'Thought.' }],
    };
    const reference = { type: 'item_reference', id: 'msg_123' };
    expect(count({ input: [reasoning, reference] }).tokens).toBe(
      3 + ref(JSON.stringify(reasoning)) + 3 + ref(JSON.stringify(reference)) + 3,
    );
    const part = { type: 'hologram', frames: 3 };
    expect(count({ input: [{ role: 'user', content: [part] }] }).tokens).toBe(
      3 + 1 + ref(JSON.stringify(part)) + 3,
    );
  });

  it('counts tool definitions as chat does; flat Responses tools are rendered whole', () => {
    const fn = {
      name: 'get_weather',
      description: 'Current weather for a city',
      parameters: { type: 'object', properties: { city: { type: 'string' } } },
    };
    const flat = { type: 'function', ...fn, strict: true };
    const builtIn = { type: 'web_search' };
    const base = count({ input: 'hi' }).tokens;
    expect(count({ input: 'hi', tools: [flat, builtIn] }).tokens).toBe(
      base +
        TOOL_SECTION_TOKENS +
        (TOKENS_PER_TOOL_DEFINITION + ref(JSON.stringify(flat))) +
        (TOKENS_PER_TOOL_DEFINITION + ref(JSON.stringify(builtIn))),
    );
    const chatStyle = [{ type: 'function', function: fn }];
    expect(count({ input: 'hi', tools: chatStyle }).tokens).toBe(
      countChatPromptTokens({
        model: MODEL,
        messages: [{ role: 'user', content: 'hi' }],
        tools: chatStyle,
      }).tokens,
    );
    expect(count({ input: 'hi', tools: [] }).tokens).toBe(base);
    expect(count({ input: 'hi', tools: null }).tokens).toBe(base);
  });

  it('uses the encoding of the model', () => {
    const o200k = count({ input: MIXED }, 'gpt-4.1').tokens;
    const cl100k = count({ input: MIXED }, 'gpt-4-turbo').tokens;
    expect(o200k).toBe(3 + 1 + referenceCount(MIXED, 'o200k_base') + 3);
    expect(cl100k).toBe(3 + 1 + referenceCount(MIXED, 'cl100k_base') + 3);
  });

  it('bounds huge or pathological input across all items and says so', () => {
    const huge = 'word '.repeat(2_000_000); // 10 MB
    const big = count({ instructions: 'Summarise.', input: [{ role: 'user', content: huge }] });
    expect(big.exact).toBe(false);
    expect(big.tokens).toBeGreaterThanOrEqual(2_000_000);

    const many: ResponseInputItem[] = [];
    for (let i = 0; i < 50_000; i++) many.push({ role: 'user', content: `message number ${i}` });
    const wide = count({ input: many });
    expect(wide.tokens).toBeGreaterThanOrEqual(50_000 * (3 + 1 + 3));

    const blob = count({
      input: [{ type: 'function_call', name: 'f', arguments: 'a'.repeat(6_000) }],
    });
    expect(blob.exact).toBe(false);
    expect(blob.tokens).toBeGreaterThanOrEqual(ref('a'.repeat(6_000)));
  });

  it('tolerates malformed input without throwing', () => {
    const odd = (value: unknown) =>
      count({ input: value as ResponseEstimateInput['input'] }).tokens;
    expect(odd(42)).toBe(3 + ref('42') + 3);
    expect(odd(['loose text'])).toBe(3 + ref('loose text') + 3);
    expect(odd([null])).toBe(3 + ref('null') + 3);
    expect(odd([{ role: 7, content: { nested: true } }])).toBe(3 + ref('{"nested":true}') + 3);
  });

  it('accepts validated DTO classes and the OpenAI SDK request types', () => {
    class PartDto {
      type!: string;
      text?: string;
      detail?: string;
    }
    class ItemDto {
      type?: string;
      role?: string;
      content?: string | PartDto[];
      call_id?: string;
      name?: string;
      arguments?: string;
      output?: string | PartDto[];
    }
    class RequestDto {
      model!: string;
      input?: string | ItemDto[];
      instructions?: string | null;
      max_output_tokens?: number | null;
      tools?: Record<string, unknown>[];
      stream?: boolean;
    }
    const body = Object.assign(new RequestDto(), {
      model: MODEL,
      input: [Object.assign(new ItemDto(), { role: 'user', content: 'hello world' })],
    });
    const input: ResponseEstimateInput = body;
    expect(countResponseInputTokens(input).tokens).toBe(3 + 1 + 2 + 3);

    // Compile-time: the SDK's own parameter types fit the estimator's inputs.
    const sdk: OpenAI.Responses.ResponseCreateParamsNonStreaming = {
      model: MODEL,
      input: [{ role: 'user', content: [{ type: 'input_text', text: 'hello world' }] }],
    };
    const fromSdk: ResponseEstimateInput = { ...sdk, model: MODEL };
    expect(countResponseInputTokens(fromSdk).tokens).toBe(3 + 1 + 2 + 3);
    const sdkCompletion: OpenAI.CompletionCreateParamsNonStreaming = {
      model: INSTRUCT,
      prompt: 'hello world',
    };
    const completion: CompletionEstimateInput = { ...sdkCompletion, prompt: sdkCompletion.prompt };
    const sdkEmbedding: OpenAI.EmbeddingCreateParams = {
      model: 'text-embedding-3-small',
      input: ['hello world'],
    };
    const embedding: EmbeddingEstimateInput = sdkEmbedding;
    expect(countCompletionPromptTokens(completion).tokens).toBe(2);
    expect(countEmbeddingInputTokens(embedding).tokens).toBe(2);
  });
});

describe('responseOutputAllowance', () => {
  it('uses max_output_tokens, else the default', () => {
    expect(responseOutputAllowance({ max_output_tokens: 256 }, 4096)).toBe(256);
    expect(responseOutputAllowance({ max_output_tokens: null }, 4096)).toBe(4096);
    expect(responseOutputAllowance({}, 1000)).toBe(1000);
    expect(responseOutputAllowance({ max_output_tokens: -5 }, 64)).toBe(64);
  });
});
