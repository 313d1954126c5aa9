import { Children1, Children2, Children3 } from './label-children';

describe('label children', () => {
  it('resolves each combination once and returns the same child afterwards', () => {
    const resolve = jest.fn((a: string, b: string, c: string) => ({ key: `${a}/${b}/${c}` }));
    const children = new Children3(resolve);
    const first = children.get('x', 'y', 'z');
    expect(children.get('x', 'y', 'z')).toBe(first);
    expect(children.get('x', 'y', 'w')).toEqual({ key: 'x/y/w' });
    expect(children.get('x', 'v', 'z')).toEqual({ key: 'x/v/z' });
    expect(resolve).toHaveBeenCalledTimes(3);
  });

  it('works for one and two labels', () => {
    const one = new Children1((a) => ({ a }));
    expect(one.get('p')).toBe(one.get('p'));
    const two = new Children2((a, b) => ({ a, b }));
    expect(two.get('p', 'q')).toBe(two.get('p', 'q'));
    expect(two.get('p', 'r')).not.toBe(two.get('p', 'q'));
  });
});
