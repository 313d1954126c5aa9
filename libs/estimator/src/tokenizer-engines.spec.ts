import { ENCODING_NAMES } from './encoding-for-model';
import { mixedCorpus } from './testing/text-corpus';
import { referenceCount } from './testing/reference-counts';
import {
  getTokenizerEngine,
  loadedTokenizerEngine,
  type TokenizerEngine,
} from './tokenizer-engines';

const SPECIAL_MARKUP = [
  '<|endoftext|>',
  'before <|endoftext|> after',
  '<|im_start|>system\nYou are helpful.<|im_end|>',
  '<|fim_prefix|>a<|fim_middle|>b<|fim_suffix|><|endofprompt|>',
  '<|im_sep|><|endoftext',
];

// gpt-tokenizer's JS regex and vocabulary loader disagree with tiktoken on these two.
const AMBIGUOUS = /[\u0085\ufeff]/;

describe.each(ENCODING_NAMES)('tokenizer engines with %s', (encoding) => {
  let gpt: TokenizerEngine;
  let tiktoken: TokenizerEngine;

  beforeAll(() => {
    gpt = getTokenizerEngine('gpt-tokenizer', encoding);
    tiktoken = getTokenizerEngine('tiktoken', encoding);
  });

  it('count "hello world" as 2 tokens', () => {
    expect(gpt.count('hello world')).toBe(2);
    expect(tiktoken.count('hello world')).toBe(2);
    expect(referenceCount('hello world', encoding)).toBe(2);
  });

  it('count nothing in an empty string', () => {
    expect(gpt.count('')).toBe(0);
    expect(tiktoken.count('')).toBe(0);
  });

  it('agree with the reference over a varied corpus', () => {
    const corpus = mixedCorpus(20240611, 15, 20, 3000);
    let checked = 0;
    for (const { kind, text } of corpus) {
      const expected = referenceCount(text, encoding);
      expect({ kind, text, tokens: tiktoken.count(text) }).toEqual({
        kind,
        text,
        tokens: expected,
      });
      if (!AMBIGUOUS.test(text)) {
        expect({ kind, text, tokens: gpt.count(text) }).toEqual({ kind, text, tokens: expected });
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(corpus.length / 2);
  });

  it.each(SPECIAL_MARKUP)('count special-token markup %j as plain text', (text) => {
    const expected = referenceCount(text, encoding);
    expect(gpt.count(text)).toBe(expected);
    expect(tiktoken.count(text)).toBe(expected);
  });

  it('never give a special token its single id', () => {
    expect(gpt.count('<|endoftext|>')).toBeGreaterThan(1);
    expect(tiktoken.count('<|endoftext|>')).toBeGreaterThan(1);
  });

  it('load each engine once and reuse it', () => {
    expect(getTokenizerEngine('gpt-tokenizer', encoding)).toBe(gpt);
    expect(loadedTokenizerEngine('tiktoken', encoding)).toBe(tiktoken);
  });
});
