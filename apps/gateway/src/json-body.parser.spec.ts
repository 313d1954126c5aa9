import { OpenAIException } from '@tokenguard/common';
import {
  ADMIN_BODY_LIMIT,
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
    expect(codeOf(() => checkJsonBody(nested(MAX_JSON_DEPTH)))).toBeUndefined();
    expect(codeOf(() => checkJsonBody(nested(MAX_JSON_DEPTH + 1)))).toBe('nesting_too_deep');
    expect(codeOf(() => checkJsonBody(nested(100_000)))).toBe('nesting_too_deep');
    expect(codeOf(() => checkJsonBody({ a: { b: [{ c: nested(MAX_JSON_DEPTH) }] } }))).toBe(
      'nesting_too_deep',
    );
  });

  it('refuses the keys that reach for a prototype, at any level', () => {
    for (const key of ['__proto__', 'constructor', 'prototype']) {
      const text = `{"messages":[{"content":[{"${key}":{"x":1}}]}]}`;
      expect(codeOf(() => checkJsonBody(JSON.parse(text)))).toBe('reserved_key');
    }
    // As values, or as parts of a key, they are just text.
    expect(
      codeOf(() => checkJsonBody({ constructor_name: 'prototype', a: ['__proto__'] })),
    ).toBeUndefined();
  });

  it('lets scalars and flat bodies through', () => {
    for (const value of [null, 1, 'x', true, [], {}, { model: 'gpt-4o', n: 1 }]) {
      expect(codeOf(() => checkJsonBody(value))).toBeUndefined();
    }
  });

  it('limits admin bodies, not those of the OpenAI routes', () => {
    expect(codeOf(() => checkBodySize('/config/budget', ADMIN_BODY_LIMIT))).toBeUndefined();
    expect(codeOf(() => checkBodySize('/config/budget', ADMIN_BODY_LIMIT + 1))).toBe(
      'request_body_too_large',
    );
    expect(codeOf(() => checkBodySize('/v1/chat/completions', 10 * 1024 * 1024))).toBeUndefined();
  });
});
