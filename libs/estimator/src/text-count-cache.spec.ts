import { TextCountCache } from './text-count-cache';

const body = 'Summarise the trade-offs of token buckets for rate limiting. '.repeat(4);

describe('TextCountCache', () => {
  it('keeps a text from its second sighting on, and answers it exactly', () => {
    const cache = new TextCountCache();
    cache.set(body, 40);
    expect(cache.size).toBe(0);
    expect(cache.get(body)).toBe(-1);
    cache.set(body, 40);
    expect(cache.size).toBe(1);
    expect(cache.get(body)).toBe(40);
    expect(cache.get(`${body} `)).toBe(-1);
  });

  it('does not take texts of one template that differ only at an end for repeats', () => {
    const cache = new TextCountCache();
    for (let n = 0; n < 50; n++) {
      cache.set(`${String(n).padStart(6, '0')} ${body}`, 41);
      cache.set(`${body} ${String(n).padStart(6, '0')}`, 41);
    }
    expect(cache.size).toBe(0);
  });

  it('ignores texts too short or too long to be worth it', () => {
    const cache = new TextCountCache();
    for (const text of ['short', 'x'.repeat(TextCountCache.MAX_CHARS + 1)]) {
      cache.set(text, 1);
      cache.set(text, 1);
    }
    expect(cache.size).toBe(0);
  });

  it('drops the least recently used texts beyond the characters it may hold', () => {
    const cache = new TextCountCache(body.length * 2);
    const texts = ['a', 'b', 'c'].map((c) => c + body.slice(1));
    for (const text of texts.slice(0, 2)) {
      cache.set(text, 1);
      cache.set(text, 1);
    }
    expect(cache.get(texts[0])).toBe(1);
    cache.set(texts[2], 1);
    cache.set(texts[2], 1);
    expect(cache.size).toBe(2);
    // texts[1] was the least recently used.
    expect(cache.get(texts[1])).toBe(-1);
    expect(cache.get(texts[0])).toBe(1);
  });
});
