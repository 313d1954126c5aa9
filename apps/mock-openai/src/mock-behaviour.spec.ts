import { DEFAULT_BEHAVIOUR, parseBehaviourPatch } from './mock-behaviour';
import { OpenAIHttpError } from './openai-error';

function rejection(input: unknown): OpenAIHttpError {
  try {
    parseBehaviourPatch(input, 'mock');
  } catch (err) {
    return err as OpenAIHttpError;
  }
  throw new Error('expected a rejection');
}

describe('parseBehaviourPatch', () => {
  it('accepts valid knobs, null for nullable ones', () => {
    const patch = {
      latencyMs: 5,
      status: 429,
      errorRate: 0.5,
      completionTokens: null,
      failMidStreamAfterChunks: 0,
      dropConnection: false,
      message: 'boom',
    };
    expect(parseBehaviourPatch(patch, 'mock')).toEqual(patch);
  });

  it('accepts every default value back', () => {
    expect(parseBehaviourPatch({ ...DEFAULT_BEHAVIOUR }, 'behaviour')).toEqual(DEFAULT_BEHAVIOUR);
  });

  it.each([
    [{ latencyMs: -1 }, 'mock.latencyMs'],
    [{ latencyMs: 1.5 }, 'mock.latencyMs'],
    [{ latencyMs: null }, 'mock.latencyMs'],
    [{ status: 200 }, 'mock.status'],
    [{ errorRate: 2 }, 'mock.errorRate'],
    [{ omitUsage: 'yes' }, 'mock.omitUsage'],
    [{ completionTokens: 0 }, 'mock.completionTokens'],
    [{ latencyMS: 5 }, 'mock.latencyMS'],
  ])('rejects %p with a 400 naming %s', (input, param) => {
    const error = rejection(input);
    expect(error).toBeInstanceOf(OpenAIHttpError);
    expect(error.status).toBe(400);
    expect(error.param).toBe(param);
  });

  it('rejects a non-object', () => {
    expect(rejection([1]).param).toBe('mock');
    expect(rejection('x').status).toBe(400);
  });

  it('does not let __proto__ through', () => {
    expect(rejection(JSON.parse('{"__proto__": {"latencyMs": 1}}')).status).toBe(400);
  });
});
