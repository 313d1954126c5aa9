import fc from 'fast-check';
import { streamingBody, withMember } from './upstream-call';

const chat = (body: object, indent?: number) => {
  const raw = Buffer.from(JSON.stringify(body, null, indent));
  return { parsed: JSON.parse(raw.toString()) as unknown, raw };
};

const sent = (body: Buffer | string | undefined) =>
  JSON.parse(Buffer.isBuffer(body) ? body.toString() : String(body)) as unknown;

describe('streamingBody', () => {
  it('adds include_usage to the bytes of any body without stream options', () => {
    fc.assert(
      fc.property(
        fc.dictionary(
          fc.string().filter((key) => key !== 'stream_options' && key !== '__proto__'),
          fc.jsonValue(),
        ),
        fc.constantFrom(undefined, 2, '\t'),
        (extra, indent) => {
          const body = { ...extra, model: 'gpt-4o', stream: true };
          const { parsed, raw } = chat(body, indent as number | undefined);
          const result = streamingBody(parsed, raw, { injectUsage: true });
          expect(result?.hideUsageChunk).toBe(true);
          expect(Buffer.isBuffer(result?.body)).toBe(true);
          // Through JSON on both sides: fc.jsonValue() may give -0, which JSON writes as 0.
          const expected = { ...body, stream_options: { include_usage: true } };
          expect(sent(result?.body)).toEqual(JSON.parse(JSON.stringify(expected)));
        },
      ),
    );
  });

  it("keeps the client's other stream options", () => {
    const { parsed, raw } = chat({
      model: 'gpt-4o',
      stream: true,
      stream_options: { include_obfuscation: false },
    });
    const result = streamingBody(parsed, raw, { injectUsage: true });
    expect(result?.hideUsageChunk).toBe(true);
    expect(sent(result?.body)).toEqual({
      model: 'gpt-4o',
      stream: true,
      stream_options: { include_obfuscation: false, include_usage: true },
    });
  });

  it('sends the bytes unchanged when the client asked for usage, or for Responses', () => {
    const asked = chat({ model: 'm', stream: true, stream_options: { include_usage: true } });
    expect(streamingBody(asked.parsed, asked.raw, { injectUsage: true })).toEqual({
      body: asked.raw,
      model: 'm',
      hideUsageChunk: false,
    });
    const responses = chat({ model: 'm', stream: true });
    expect(streamingBody(responses.parsed, responses.raw, { injectUsage: false })?.body).toBe(
      responses.raw,
    );
  });

  it('is not for bodies that do not stream', () => {
    const { parsed, raw } = chat({ model: 'm', stream: 'true' });
    expect(streamingBody(parsed, raw, { injectUsage: true })).toBeUndefined();
  });
});

describe('withMember', () => {
  const member = Buffer.from(',"x":1');

  it('goes before the closing brace, past trailing blanks', () => {
    expect(withMember(Buffer.from('{"a":2} \r\n'), member)?.toString()).toBe('{"a":2,"x":1} \r\n');
    expect(withMember(Buffer.from('{\n  "a": 2\n}'), member)?.toString()).toBe(
      '{\n  "a": 2\n,"x":1}',
    );
  });

  it('declines what it cannot extend with a leading comma', () => {
    expect(withMember(undefined, member)).toBeUndefined();
    expect(withMember(Buffer.from('{ }'), member)).toBeUndefined();
    expect(withMember(Buffer.from('[1]'), member)).toBeUndefined();
    expect(withMember(Buffer.from('   '), member)).toBeUndefined();
  });
});
