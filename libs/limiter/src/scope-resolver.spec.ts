import { OpenAIException } from '@tokenguard/common';
import { IDENTITY_PATTERN, resolveScopes } from './scope-resolver';

function errorOf(fn: () => unknown): OpenAIException {
  try {
    fn();
  } catch (e) {
    if (e instanceof OpenAIException) return e;
    throw e;
  }
  throw new Error('expected an OpenAIException');
}

describe('resolveScopes', () => {
  it('orders scopes outermost first and skips absent ones', () => {
    expect(
      resolveScopes({ 'x-user-id': 'alice', 'x-team-id': 'blue', 'x-role': 'dev' }, false),
    ).toEqual([
      { type: 'team', id: 'blue' },
      { type: 'role', id: 'dev' },
      { type: 'user', id: 'alice' },
    ]);
  });

  it('adds the global scope only when enforced', () => {
    const headers = { 'x-user-id': 'alice', 'x-llm-rolegroup': 'eng' };
    expect(resolveScopes(headers, true)).toEqual([
      { type: 'global', id: 'global' },
      { type: 'rolegroup', id: 'eng' },
      { type: 'user', id: 'alice' },
    ]);
  });

  it('requires x-user-id', () => {
    const error = errorOf(() => resolveScopes({ 'x-team-id': 'blue' }, false));
    expect(error.getStatus()).toBe(400);
    expect(error.body.error).toMatchObject({ param: 'x-user-id', code: 'missing_identity' });
    expect(errorOf(() => resolveScopes({ 'x-user-id': '' }, false)).getStatus()).toBe(400);
  });

  it.each([['alice:x'], ['a b'], ['x'.repeat(129)], ['team/1'], ['ünïcode'], ['{tag}'], ['*']])(
    'rejects the id %p',
    (id) => {
      const error = errorOf(() => resolveScopes({ 'x-user-id': 'ok', 'x-team-id': id }, false));
      expect(error.body.error).toMatchObject({ param: 'x-team-id', code: 'invalid_identity' });
    },
  );

  it('rejects repeated identity headers', () => {
    expect(errorOf(() => resolveScopes({ 'x-user-id': ['a', 'b'] }, false)).getStatus()).toBe(400);
  });

  it.each([['alice'], ['a.b_c-d@example.com'], ['u+1'], ['x'.repeat(128)], ['0']])(
    'accepts %p',
    (id) => {
      expect(IDENTITY_PATTERN.test(id)).toBe(true);
      expect(resolveScopes({ 'x-user-id': id }, false)).toEqual([{ type: 'user', id }]);
    },
  );
});
