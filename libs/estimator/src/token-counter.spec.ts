import {
  REPLY_PRIMING_TOKENS,
  TOKENS_PER_MESSAGE,
  TOKENS_PER_NAME,
  TOKENS_PER_TOOL_CALL,
  TOKENS_PER_TOOL_DEFINITION,
  TOOL_SECTION_TOKENS,
} from './chat-prompt-counter';
import { encodingForModel } from './encoding-for-model';
import type { ChatEstimateInput, ChatMessageInput } from './estimator.types';
import { FILE_PART_TOKENS, imageAllowance } from './non-text-allowances';
import { referenceCount } from './testing/reference-counts';
import { TokenCounter, countChatPromptTokens, countTextTokens } from './token-counter';

/** The OpenAI cookbook's example conversation ("How to count tokens with tiktoken"). */
const COOKBOOK_MESSAGES = [
  {
    role: 'system',
    content:
      'You are a helpful, pattern-following assistant that translates corporate jargon into plain English.',
  },
  {
    role: 'system',
    name: 'example_user',
    content: 'New synergies will help drive top-line growth.',
  },
  {
    role: 'system',
    name: 'example_assistant',
    content: 'Things working well together will increase revenue.',
  },
  {
    role: 'system',
    name: 'example_user',
    content:
      "Let's circle back when we have more bandwidth to touch base on opportunities for increased leverage.",
  },
  {
    role: 'system',
    name: 'example_assistant',
    content: "Let's talk later when we're less busy about how to do better.",
  },
  {
    role: 'user',
    content:
      "This late pivot means we don't have time to boil the ocean for the client deliverable.",
  },
];

/** The cookbook's formula, computed with tiktoken itself. */
function cookbookCount(
  messages: ReadonlyArray<Readonly<Record<string, string | undefined>>>,
  model: string,
): number {
  const encoding = encodingForModel(model);
  let tokens = REPLY_PRIMING_TOKENS;
  for (const message of messages) {
    tokens += TOKENS_PER_MESSAGE;
    for (const [key, value] of Object.entries(message)) {
      if (value === undefined) continue;
      tokens += referenceCount(value, encoding);
      if (key === 'name') tokens += TOKENS_PER_NAME;
    }
  }
  return tokens;
}

const ref = (text: string, model = 'gpt-4o') => referenceCount(text, encodingForModel(model));
const prompt = (input: Omit<ChatEstimateInput, 'model'> & { model?: string }) =>
  countChatPromptTokens({ model: 'gpt-4o', ...input });

describe('countTextTokens', () => {
  it('counts with the model encoding', () => {
    expect(countTextTokens('hello world', 'gpt-4o')).toBe(2);
    expect(countTextTokens('hello world', 'gpt-4')).toBe(2);
    const text = 'Tokenizers differ: 中文 and emoji 🚀 split differently.';
    expect(countTextTokens(text, 'gpt-4o')).toBe(referenceCount(text, 'o200k_base'));
    expect(countTextTokens(text, 'gpt-3.5-turbo')).toBe(referenceCount(text, 'cl100k_base'));
  });

  it('is pure: the same input always gives the same count', () => {
    const text = 'Repeatable counts make usage figures testable.';
    const first = countTextTokens(text, 'gpt-4o-mini');
    for (let i = 0; i < 5; i++) expect(countTextTokens(text, 'gpt-4o-mini')).toBe(first);
  });

  it('treats special-token markup as text', () => {
    expect(countTextTokens('<|endoftext|>', 'gpt-4o')).toBe(ref('<|endoftext|>'));
  });
});

describe('countChatPromptTokens', () => {
  it.each(['gpt-3.5-turbo-0613', 'gpt-4-0613'])(
    "gives 129 for the cookbook's example with %s",
    (model) => {
      expect(cookbookCount(COOKBOOK_MESSAGES, model)).toBe(129);
      expect(countChatPromptTokens({ model, messages: COOKBOOK_MESSAGES })).toEqual({
        tokens: 129,
        exact: true,
      });
    },
  );

  it.each(['gpt-4o', 'gpt-4.1-mini', 'o3', 'gpt-5'])(
    "follows the cookbook's method with %s (o200k_base)",
    (model) => {
      expect(countChatPromptTokens({ model, messages: COOKBOOK_MESSAGES }).tokens).toBe(
        cookbookCount(COOKBOOK_MESSAGES, model),
      );
    },
  );

  it('charges 3 per message, the role, the content, and 3 for reply priming', () => {
    expect(prompt({ messages: [] }).tokens).toBe(3);
    expect(prompt({ messages: [{ role: 'user', content: 'Hi there' }] }).tokens).toBe(
      3 + ref('user') + ref('Hi there') + 3,
    );
  });

  it('charges a name its tokens plus 1', () => {
    const plain = prompt({ messages: [{ role: 'user', content: 'Hi' }] }).tokens;
    const named = prompt({ messages: [{ role: 'user', name: 'alice_42', content: 'Hi' }] }).tokens;
    expect(named - plain).toBe(ref('alice_42') + 1);
  });

  it('counts null and absent content as nothing', () => {
    const base = 3 + ref('assistant') + 3;
    expect(prompt({ messages: [{ role: 'assistant', content: null }] }).tokens).toBe(base);
    expect(prompt({ messages: [{ role: 'assistant' }] }).tokens).toBe(base);
  });

  it('counts every text part of array content exactly', () => {
    const parts = [
      { type: 'text', text: 'Describe this picture' },
      { type: 'text', text: ' in one sentence.' },
    ];
    expect(prompt({ messages: [{ role: 'user', content: parts }] }).tokens).toBe(
      3 + ref('user') + ref('Describe this picture') + ref(' in one sentence.') + 3,
    );
  });

  it('gives images, audio and files their documented allowances', () => {
    const base = 3 + ref('user') + 3;
    const image = (detail?: string) => ({
      type: 'image_url',
      image_url: { url: 'data:image/png;base64,AAAA', ...(detail ? { detail } : {}) },
    });
    const one = (part: Record<string, unknown>, model = 'gpt-4o') =>
      prompt({ model, messages: [{ role: 'user', content: [part] }] }).tokens - base;

    expect(one(image('low'))).toBe(85);
    expect(one(image('high'))).toBe(1445);
    expect(one(image())).toBe(1445);
    expect(one(image('low'), 'gpt-4o-mini')).toBe(imageAllowance('gpt-4o-mini', 'low'));
    const audio = {
      type: 'input_audio',
      input_audio: { data: 'A'.repeat(448_000), format: 'wav' },
    };
    expect(one(audio)).toBe(210); // 336 kB of WAV: 21 s at 16 kB/s, 10 tokens/s
    expect(one({ type: 'file', file: { file_id: 'file-abc' } })).toBe(FILE_PART_TOKENS);
  });

  it('counts refusals, and unknown parts by their JSON', () => {
    const base = 3 + ref('assistant') + 3;
    const refusal = { type: 'refusal', refusal: 'I cannot help with that.' };
    expect(prompt({ messages: [{ role: 'assistant', content: [refusal] }] }).tokens).toBe(
      base + ref('I cannot help with that.'),
    );
    const odd = { type: 'hologram', payload: { frames: 3 } };
    expect(prompt({ messages: [{ role: 'assistant', content: [odd] }] }).tokens).toBe(
      base + ref(JSON.stringify(odd)),
    );
  });

  it('counts tool calls by name and arguments, and tool results by content', () => {
    const args = '{"city":"Paris","unit":"celsius"}';
    const call: ChatMessageInput = {
      role: 'assistant',
      content: null,
      tool_calls: [
        { id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: args } },
        { id: 'call_2', type: 'function', function: { name: 'get_time', arguments: '{}' } },
      ],
    };
    expect(prompt({ messages: [call] }).tokens).toBe(
      3 +
        ref('assistant') +
        (TOKENS_PER_TOOL_CALL + ref('get_weather') + ref(args)) +
        (TOKENS_PER_TOOL_CALL + ref('get_time') + ref('{}')) +
        3,
    );
    const result = { role: 'tool', tool_call_id: 'call_1', content: '{"temp":21}' };
    expect(prompt({ messages: [result] }).tokens).toBe(3 + ref('tool') + ref('{"temp":21}') + 3);
  });

  it('counts a legacy function_call like a tool call', () => {
    const message = {
      role: 'assistant',
      content: null,
      function_call: { name: 'lookup', arguments: '{"q":"x"}' },
    };
    expect(prompt({ messages: [message] }).tokens).toBe(
      3 + ref('assistant') + TOKENS_PER_TOOL_CALL + ref('lookup') + ref('{"q":"x"}') + 3,
    );
  });

  it('counts tool definitions as compact JSON plus fixed overheads', () => {
    const fn = {
      name: 'get_weather',
      description: 'Current weather for a city',
      parameters: {
        type: 'object',
        properties: { city: { type: 'string' } },
        required: ['city'],
      },
    };
    const messages = [{ role: 'user', content: 'Weather in Paris?' }];
    const without = prompt({ messages }).tokens;
    const perTool = TOKENS_PER_TOOL_DEFINITION + ref(JSON.stringify(fn));
    expect(prompt({ messages, tools: [{ type: 'function', function: fn }] }).tokens).toBe(
      without + TOOL_SECTION_TOKENS + perTool,
    );
    expect(prompt({ messages, functions: [fn, fn] }).tokens).toBe(
      without + TOOL_SECTION_TOKENS + 2 * perTool,
    );
    expect(prompt({ messages, tools: [], functions: null }).tokens).toBe(without);
  });

  it('bounds huge or pathological content and says so', () => {
    const blob = 'a'.repeat(6_000);
    const result = prompt({ messages: [{ role: 'user', content: `Summarise: ${blob}` }] });
    expect(result.exact).toBe(false);
    expect(result.tokens).toBeGreaterThanOrEqual(3 + ref('user') + ref(`Summarise: ${blob}`) + 3);

    const huge = 'word '.repeat(2_000_000); // 10 MB
    const big = prompt({ messages: [{ role: 'user', content: huge }] });
    expect(big.exact).toBe(false);
    expect(big.tokens).toBeGreaterThanOrEqual(2_000_000); // at least one token per word
  });

  it('bounds huge tool definitions without rendering them in full', () => {
    const fn = { name: 'f', description: 'd'.repeat(1_000_000) };
    const result = prompt({ messages: [], tools: [{ type: 'function', function: fn }] });
    expect(result.exact).toBe(false);
    expect(result.tokens).toBeGreaterThanOrEqual(ref(JSON.stringify(fn).slice(0, 20)));
  });

  it('accepts class instances such as validated DTOs', () => {
    class MessageDto {
      role!: string;
      content?: string | Array<Record<string, unknown>> | null;
      name?: string | null;
      tool_calls?: unknown[] | null;
    }
    class RequestDto {
      model!: string;
      messages!: MessageDto[];
      tools?: unknown[] | null;
      functions?: unknown[] | null;
      max_tokens?: number | null;
    }
    const body = Object.assign(new RequestDto(), {
      model: 'gpt-4o',
      messages: [Object.assign(new MessageDto(), { role: 'user', content: 'Hi' })],
    });
    const input: ChatEstimateInput = body;
    expect(countChatPromptTokens(input).tokens).toBe(3 + ref('user') + ref('Hi') + 3);
  });

  it('tolerates malformed input without throwing', () => {
    const odd = { model: 'gpt-4o', messages: 'not-an-array' } as unknown as ChatEstimateInput;
    expect(countChatPromptTokens(odd)).toEqual({ tokens: 3, exact: true });
    const weird = [{ role: 42, content: 7 }] as unknown as ChatMessageInput[];
    expect(prompt({ messages: weird }).tokens).toBe(3 + ref('7') + 3);
  });
});

describe('TokenCounter', () => {
  it('uses its own engine policy and limits', () => {
    const text = 'The same words, counted by either engine.';
    const viaTiktoken = new TokenCounter({ engine: 'tiktoken' });
    const viaGpt = new TokenCounter({ engine: 'gpt-tokenizer' });
    expect(viaTiktoken.countText(text, 'gpt-4o')).toEqual({ tokens: ref(text), exact: true });
    expect(viaGpt.countText(text, 'gpt-4o')).toEqual({ tokens: ref(text), exact: true });
    const tiny = new TokenCounter({ limits: { maxSpanBytes: 3 } });
    expect(tiny.countText(text, 'gpt-4o').exact).toBe(false);
  });

  it('rejects nonsensical limits', () => {
    expect(() => new TokenCounter({ limits: { exactTimeMs: -1 } })).toThrow(RangeError);
    expect(() => new TokenCounter({ limits: { scanChars: Number.NaN } })).toThrow(RangeError);
  });
});
