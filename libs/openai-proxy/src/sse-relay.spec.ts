import { PassThrough } from 'node:stream';
import fc from 'fast-check';
import { SseRelay, type SseRelayOptions, mayCarryUsage } from './sse-relay';

const HEAD = '{"id":"c1","object":"chat.completion.chunk","model":"gpt-4o-mini","choices":[';

/** A chat stream as OpenAI sends it with `include_usage`: usage null until the last chunk. */
function chatEvents(words: readonly string[], eol = '\n'): string[] {
  const sep = `${eol}${eol}`;
  return [
    ...words.map(
      (word) =>
        `data: ${HEAD}{"index":0,"delta":{"content":${JSON.stringify(word)}}}],"usage":null}${sep}`,
    ),
    `data: ${HEAD}],"usage":{"prompt_tokens":7,"completion_tokens":${words.length},` +
      `"total_tokens":${7 + words.length}}}${sep}`,
    `data: [DONE]${sep}`,
  ];
}

interface Relayed {
  readonly relay: SseRelay;
  /** The bytes the client got, and in how many pushes. */
  readonly output: () => Promise<{ text: string; pushes: number }>;
}

function relayOf(chunks: readonly (string | Buffer)[], options: Partial<SseRelayOptions> = {}) {
  const upstream = new PassThrough();
  const relay = new SseRelay(upstream, { kind: 'chat', hideUsageChunk: false, ...options });
  const parts: Buffer[] = [];
  relay.on('data', (part: Buffer | string) => parts.push(Buffer.from(part)));
  const ended = new Promise<void>((resolve) => relay.once('end', resolve));
  for (const chunk of chunks) upstream.write(chunk);
  upstream.end();
  const result: Relayed = {
    relay,
    output: async () => {
      await ended;
      return { text: Buffer.concat(parts).toString('utf8'), pushes: parts.length };
    },
  };
  return result;
}

/** `text` cut at the given offsets (sorted, deduplicated), as bytes. */
function cutAt(text: string, offsets: readonly number[]): Buffer[] {
  const bytes = Buffer.from(text);
  const cuts = [...new Set(offsets.map((o) => o % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const cut of [...cuts, bytes.length]) {
    if (cut > from) chunks.push(bytes.subarray(from, cut));
    from = Math.max(from, cut);
  }
  return chunks;
}

describe('SseRelay', () => {
  it('passes every byte through and reads usage and text, however the upstream cuts it', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 6 }), { maxLength: 12 }),
        fc.constantFrom('\n', '\r\n'),
        fc.array(fc.nat(), { maxLength: 8 }),
        async (words, eol, offsets) => {
          const events = chatEvents(words, eol);
          const { relay, output } = relayOf(cutAt(events.join(''), offsets));
          const { text } = await output();
          expect(text).toBe(events.join(''));
          expect(relay.usage).toEqual({
            promptTokens: 7,
            completionTokens: words.length,
            totalTokens: 7 + words.length,
          });
          expect(relay.generatedText()).toBe(words.join(''));
          expect(relay.eventsRelayed).toBe(events.length);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('drops only the usage-only chunk when asked to hide it', async () => {
    const events = chatEvents(['a', 'b']);
    const { relay, output } = relayOf([events.join('')], { hideUsageChunk: true });
    const { text } = await output();
    expect(text).toBe(events[0] + events[1] + events[3]);
    expect(relay.usage?.totalTokens).toBe(9);
    expect(relay.eventsRelayed).toBe(3);
  });

  it('sends the complete events of one upstream chunk in one push', async () => {
    const events = chatEvents(['one', 'two', 'three', 'four']);
    const { output } = relayOf([events.join('')]);
    const { text, pushes } = await output();
    expect(text).toBe(events.join(''));
    expect(pushes).toBe(1);
  });

  it('keeps the text of a stream cut short, in order, across the step it reads events in', async () => {
    // Over 64 KiB of content events and no usage: read in steps while streaming, the rest on
    // demand.
    const words = Array.from({ length: 2_000 }, (_, i) => `w${i} `);
    const events = chatEvents(words).slice(0, words.length);
    const { relay, output } = relayOf(events);
    await output();
    expect(relay.usage).toBeUndefined();
    expect(relay.generatedText()).toBe(words.join(''));
    expect(relay.eventsRelayed).toBe(words.length);
  });

  it('keeps text that comes with the usage chunk after the text before it', async () => {
    const last =
      `data: ${HEAD}{"index":0,"delta":{"content":"end"}}],` +
      `"usage":{"prompt_tokens":1,"completion_tokens":3,"total_tokens":4}}\n\n`;
    const { relay, output } = relayOf([chatEvents(['start ', 'middle '])[0], last]);
    await output();
    expect(relay.usage?.totalTokens).toBe(4);
    expect(relay.generatedText()).toBe('start end');
  });

  it('reads completions text and tool calls', async () => {
    const completion = relayOf(['data: {"choices":[{"text":"abc"}]}\n\n'], { kind: 'completion' });
    await completion.output();
    expect(completion.relay.generatedText()).toBe('abc');
    const tools = relayOf([
      'data: {"choices":[{"delta":{"tool_calls":[{"function":{"name":"f","arguments":"{\\"x\\""}}]}}]}\n\n',
      'data: {"choices":[{"delta":{"refusal":"no"}}]}\n\n',
    ]);
    await tools.output();
    expect(tools.relay.generatedText()).toBe('f{"x"no');
  });

  it('reads Responses events: text deltas, and usage from the final response', async () => {
    const events = [
      'event: response.created\ndata: {"type":"response.created","response":{"usage":null}}\n\n',
      'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","delta":"Hi"}\n\n',
      'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","delta":"!"}\n\n',
      'event: response.completed\ndata: {"type":"response.completed","response":' +
        '{"usage":{"input_tokens":5,"output_tokens":2,"total_tokens":7}}}\n\n',
    ];
    const { relay, output } = relayOf([events.join('')], { kind: 'response' });
    const { text } = await output();
    expect(text).toBe(events.join(''));
    expect(relay.usage).toEqual({ promptTokens: 5, completionTokens: 2, totalTokens: 7 });
    expect(relay.generatedText()).toBe('Hi!');
  });

  it('passes a trailing partial event on as it came', async () => {
    const { relay, output } = relayOf([
      'data: {"choices":[{"delta":{"content":"a"}}]}\n\ndata: {"cho',
    ]);
    const { text } = await output();
    expect(text).toBe('data: {"choices":[{"delta":{"content":"a"}}]}\n\ndata: {"cho');
    expect(relay.generatedText()).toBe('a');
    expect(relay.eventsRelayed).toBe(1);
  });
});

describe('mayCarryUsage', () => {
  const carries = (text: string) => mayCarryUsage(Buffer.from(text));

  it('tells usage figures from the null usage of every other chunk', () => {
    expect(carries('data: {"choices":[],"usage":{"total_tokens":3}}')).toBe(true);
    expect(carries('data: {"choices":[{"delta":{}}],"usage":null}')).toBe(false);
    expect(carries('data: {"usage" :\tnull, "x": 1}')).toBe(false);
    expect(carries('data: {"usage":null,"response":{"usage":{"input_tokens":1}}}')).toBe(true);
    expect(carries('data: {"choices":[{"delta":{"content":"usage"}}]}')).toBe(true);
    expect(carries('data: {"choices":[{"delta":{"content":"the \\"usage\\" key"}}]}')).toBe(false);
    expect(carries('data: {"choices":[]}')).toBe(false);
    expect(carries('data: {"usage":nul')).toBe(true);
  });
});
