import { chatMessagesProblem } from './chat-messages';

describe('chatMessagesProblem', () => {
  it('accepts the message shapes OpenAI accepts', () => {
    expect(
      chatMessagesProblem([
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: [{ type: 'text', text: 'Hi' }], name: 'alice' },
        { role: 'assistant', content: null, tool_calls: [{ id: '1' }] },
        { role: 'tool', content: 'done', tool_call_id: '1', name: null, tool_calls: null },
      ]),
    ).toBeUndefined();
  });

  it.each([
    [[7], 'messages[0]', 'must be an object'],
    [[null], 'messages[0]', 'must be an object'],
    [[[]], 'messages[0]', 'must be an object'],
    [[{ content: 'x' }], 'messages[0].role', 'must be a string'],
    [[{ role: '' }], 'messages[0].role', 'should not be empty'],
    [[{ role: 'user' }, { role: 'user', content: 42 }], 'messages[1].content', expect.any(String)],
    [[{ role: 'user', content: [{ text: 'no type' }] }], 'messages[0].content', expect.any(String)],
    [[{ role: 'user', name: 5 }], 'messages[0].name', 'must be a string'],
    [[{ role: 'user', tool_calls: {} }], 'messages[0].tool_calls', 'must be an array'],
  ])('names the first field at fault: %j', (messages, param, message) => {
    expect(chatMessagesProblem(messages)).toEqual({ param, message });
  });

  it('checks a million messages in about a second at most (class-validator: 20 s)', () => {
    const messages = Array.from({ length: 1_000_000 }, () => ({ role: 'user', content: 'hi' }));
    const started = performance.now();
    expect(chatMessagesProblem(messages)).toBeUndefined();
    expect(performance.now() - started).toBeLessThan(1500);
  });
});
