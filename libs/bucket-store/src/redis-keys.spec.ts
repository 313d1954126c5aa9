import { GLOBAL_SCOPE_ID } from './bucket-store.interface';
import { assertNamespace, keyPrefix, redisKeys } from './redis-keys';

describe('redis-keys', () => {
  const keys = redisKeys('prod');

  it('puts every key of a namespace under one hash tag', () => {
    expect(keys.prefix).toBe('tg:{prod}:');
    expect(keys.bucket({ type: 'user', id: 'alice' })).toBe('tg:{prod}:b:user:alice');
    expect(keys.bucket({ type: 'global', id: GLOBAL_SCOPE_ID })).toBe('tg:{prod}:b:global:global');
    expect(keys.policy({ type: 'team', id: 'red' })).toBe('tg:{prod}:p:team:red');
    expect(keys.reservation('req-1')).toBe('tg:{prod}:r:req-1');
    expect(keys.matchAll).toBe('tg:{prod}:*');
  });

  it('keeps the type first, so ids with colons or braces cannot collide or move the tag', () => {
    const a = keys.bucket({ type: 'user', id: 'a:b' });
    const b = keys.bucket({ type: 'role', id: 'a:b' });
    expect(a).not.toBe(b);
    expect(a).toBe('tg:{prod}:b:user:a:b');
    // The first `{...}` is the namespace's, whatever the id holds.
    expect(keys.bucket({ type: 'user', id: '{x}' }).indexOf('{')).toBe(3);
  });

  it.each(['', 'a{b', 'a}b', 'a:b', 'a*b', 'x'.repeat(65), 3])('rejects the namespace %p', (ns) => {
    expect(() => assertNamespace(ns)).toThrow(RangeError);
    if (typeof ns === 'string') expect(() => keyPrefix(ns)).toThrow(RangeError);
  });

  it('accepts the identity alphabet', () => {
    expect(keyPrefix('Team.A_b-c@d+1')).toBe('tg:{Team.A_b-c@d+1}:');
  });
});
