/*
 * A family's series (cells, see cells.ts) resolved once per label combination and then found
 * by label values through nested maps: no label object or key string is built on the request
 * path. Every label value comes from a small fixed set, so the maps stay small.
 */

export class Children1<C> {
  private readonly cache = new Map<string, C>();

  constructor(private readonly resolve: (a: string) => C) {}

  get(a: string): C {
    let child = this.cache.get(a);
    if (child === undefined) {
      child = this.resolve(a);
      this.cache.set(a, child);
    }
    return child;
  }
}

export class Children2<C> {
  private readonly cache = new Map<string, Children1<C>>();

  constructor(private readonly resolve: (a: string, b: string) => C) {}

  get(a: string, b: string): C {
    let inner = this.cache.get(a);
    if (inner === undefined) {
      inner = new Children1((value) => this.resolve(a, value));
      this.cache.set(a, inner);
    }
    return inner.get(b);
  }
}

export class Children3<C> {
  private readonly cache = new Map<string, Children2<C>>();

  constructor(private readonly resolve: (a: string, b: string, c: string) => C) {}

  get(a: string, b: string, c: string): C {
    let inner = this.cache.get(a);
    if (inner === undefined) {
      inner = new Children2((second, third) => this.resolve(a, second, third));
      this.cache.set(a, inner);
    }
    return inner.get(b, c);
  }
}
