import { OpenAIException } from '@tokenguard/common';
import {
  ADMIN_BODY_LIMIT,
  bodyKindOf,
  checkBodySize,
  checkJsonBody,
  decodeJsonText,
  MAX_JSON_DEPTH,
} from './json-body.parser';

const codeOf = (run: () => unknown): string | null | undefined => {
  try {
    run();
  } catch (error) {
    return error instanceof OpenAIException ? error.body.error.code : 'not an OpenAIException';
  }
  return undefined;
};

const nested = (depth: number) => JSON.parse('['.repeat(depth) + ']'.repeat(depth)) as unknown;

describe('JSON body checks', () => {
  it('decodes UTF-8 and refuses bytes that are not', () => {
    expect(decodeJsonText(Buffer.from('{"a":"é✓"}'))).toBe('{"a":"é✓"}');
    for (const bytes of [[0xff], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xe2, 0x82]]) {
      expect(codeOf(() => decodeJsonText(Buffer.from([0x22, ...bytes, 0x22])))).toBe(
        'invalid_json',
      );
    }
  });

  it(`accepts ${MAX_JSON_DEPTH} levels of nesting and refuses one more, without recursing deeper`, () => {
    expect(codeOf(() => checkJsonBody(nested(MAX_JSON_DEPTH), 'openai'))).toBeUndefined();
    expect(codeOf(() => checkJsonBody(nested(MAX_JSON_DEPTH + 1), 'openai'))).toBe(
      'nesting_too_deep',
    );
    expect(codeOf(() => checkJsonBody(nested(100_000), 'admin'))).toBe('nesting_too_deep');
    expect(
      codeOf(() => checkJsonBody({ a: { b: [{ c: nested(MAX_JSON_DEPTH) }] } }, 'openai')),
    ).toBe('nesting_too_deep');
  });

  it('refuses the prototype-pollution paths at any level: __proto__, constructor.prototype', () => {
    for (const text of [
      '{"__proto__":{"x":1}}',
      '{"messages":[{"content":[{"__proto__":{"x":1}}]}]}',
      '{"tools":[{"function":{"parameters":{"__proto__":1}}}]}',
      '{"constructor":{"prototype":{"x":1}}}',
      '{"a":[{"b":{"constructor":{"prototype":1}}}]}',
    ]) {
      for (const kind of ['openai', 'admin'] as const) {
        expect(codeOf(() => checkJsonBody(JSON.parse(text), kind))).toBe('reserved_key');
      }
    }
  });

  it('takes constructor and prototype alone as data (JSON schemas have such properties)', () => {
    const schema = {
      type: 'object',
      properties: {
        constructor: { type: 'string', description: 'the class to build' },
        prototype: { type: 'object', properties: { constructor: { type: 'string' } } },
      },
      required: ['constructor', 'prototype'],
    };
    const body = {
      model: 'gpt-4o',
      tools: [{ type: 'function', function: { name: 'build', parameters: schema } }],
      response_format: { type: 'json_schema', json_schema: { name: 's', schema } },
      messages: [{ role: 'user', content: 'hi', prototype: 1 }],
    };
    expect(codeOf(() => checkJsonBody(JSON.parse(JSON.stringify(body)), 'openai'))).toBeUndefined();
    // Not in an admin body: flat DTOs, where Nest's ValidationPipe would drop them silently.
    for (const text of ['{"constructor":1}', '{"id":"a","x":{"prototype":1}}']) {
      expect(codeOf(() => checkJsonBody(JSON.parse(text), 'admin'))).toBe('reserved_key');
    }
    // As values, or as parts of a key, they are just text.
    expect(
      codeOf(() => checkJsonBody({ constructor_name: 'prototype', a: ['__proto__'] }, 'admin')),
    ).toBeUndefined();
  });

  it('lets scalars and flat bodies through', () => {
    for (const value of [null, 1, 'x', true, [], {}, { model: 'gpt-4o', n: 1 }]) {
      expect(codeOf(() => checkJsonBody(value, 'openai'))).toBeUndefined();
    }
  });

  it('tells OpenAI bodies from admin ones by their path', () => {
    expect(bodyKindOf('/v1/chat/completions')).toBe('openai');
    expect(bodyKindOf('/config/budget')).toBe('admin');
    expect(bodyKindOf('/v1')).toBe('admin');
  });

  it('limits admin bodies, not those of the OpenAI routes', () => {
    expect(codeOf(() => checkBodySize('/config/budget', ADMIN_BODY_LIMIT))).toBeUndefined();
    expect(codeOf(() => checkBodySize('/config/budget', ADMIN_BODY_LIMIT + 1))).toBe(
      'request_body_too_large',
    );
    expect(codeOf(() => checkBodySize('/v1/chat/completions', 10 * 1024 * 1024))).toBeUndefined();
  });
});
