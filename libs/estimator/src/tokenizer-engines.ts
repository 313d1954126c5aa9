import { createRequire } from 'node:module';
import type { Tiktoken } from 'tiktoken';
import type { EncodingName } from './encoding-for-model';

/**
 * The two BPE implementations the estimator can drive. Both produce the same counts (the
 * spec checks this over a varied corpus); they differ in speed:
 *
 * - `gpt-tokenizer` (pure JS) is 2-7x faster than tiktoken on English, code and JSON, helped by
 *   its merge cache, but up to 4-5x slower on non-Latin text, whose pieces rarely repeat.
 *   It miscounts text containing U+FEFF (its JS regex takes it for whitespace and its
 *   vocabulary loader drops it), and its `\s` also differs from tiktoken's on U+0085, so
 *   text containing either goes to tiktoken.
 * - `tiktoken` (Rust compiled to WASM) is OpenAI's reference; steady speed, with a fixed cost of
 *   a few microseconds per call for crossing into WASM.
 */
export type TokenizerEngineName = 'gpt-tokenizer' | 'tiktoken';

export interface TokenizerEngine {
  readonly name: TokenizerEngineName;
  readonly encoding: EncodingName;
  /** Tokens in `text`, treating special-token markup such as `<|endoftext|>` as plain text. */
  count(text: string): number;
}

/**
 * Cost of one tokenizer call in nanoseconds, as a linear model of the text it is given.
 * Figures measured on the development machine (2-core AMD EPYC VM, Node 20).
 */
export interface EngineCost {
  /** Fixed cost of one call (argument marshalling, regex setup). */
  readonly perCall: number;
  /** Per UTF-8 byte of ASCII text. */
  readonly perAsciiByte: number;
  /** Per UTF-8 byte of non-ASCII text. */
  readonly perOtherByte: number;
  /**
   * Per squared byte of a span longer than `QUADRATIC_FROM_BYTES`: BPE on one long pre-token
   * piece is quadratic in its length, and gpt-tokenizer's merge loop is much slower on
   * multi-byte text than on ASCII.
   */
  readonly perSquaredAsciiByte: number;
  readonly perSquaredOtherByte: number;
}

export interface EngineCostModel {
  /** Ordinary prompts with a warm merge cache; used to pick the faster engine. */
  readonly typical: EngineCost;
  /**
   * The slowest text measured (random words or base64 with a cold merge cache; non-Latin
   * text before tiktoken's regex automaton has warmed up) with a margin; used to size each
   * call so that it cannot run far past the time left.
   */
  readonly worst: EngineCost;
}

/** Spans up to this length are covered by the per-byte figures (measured on such text). */
export const QUADRATIC_FROM_BYTES = 64;

export const ENGINE_COST_MODELS: Readonly<Record<TokenizerEngineName, EngineCostModel>> = {
  'gpt-tokenizer': {
    typical: {
      perCall: 1_200,
      perAsciiByte: 100,
      perOtherByte: 800,
      perSquaredAsciiByte: 4,
      perSquaredOtherByte: 10,
    },
    worst: {
      perCall: 3_000,
      perAsciiByte: 1_000,
      perOtherByte: 2_000,
      perSquaredAsciiByte: 6,
      perSquaredOtherByte: 13,
    },
  },
  tiktoken: {
    typical: {
      perCall: 6_000,
      perAsciiByte: 300,
      perOtherByte: 200,
      perSquaredAsciiByte: 1.5,
      perSquaredOtherByte: 1.5,
    },
    worst: {
      perCall: 10_000,
      perAsciiByte: 650,
      perOtherByte: 600,
      perSquaredAsciiByte: 2.5,
      perSquaredOtherByte: 2.5,
    },
  },
};

// Both libraries take 100-700 ms and tens of MB to load an encoding, so nothing is required
// until an encoding is first used; createRequire keeps that lazy in CommonJS output.
const lazyRequire = createRequire(__filename);

type GptEncodingModule = typeof import('gpt-tokenizer/cjs/encoding/o200k_base');
type TiktokenModule = typeof import('tiktoken');

// Count every character as text; the default options throw on special-token markup.
const ORDINARY_TEXT = { disallowedSpecial: new Set<string>() };

const GPT_TOKENIZER_MODULES: Readonly<Record<EncodingName, string>> = {
  o200k_base: 'gpt-tokenizer/cjs/encoding/o200k_base',
  cl100k_base: 'gpt-tokenizer/cjs/encoding/cl100k_base',
};

class GptTokenizerEngine implements TokenizerEngine {
  readonly name = 'gpt-tokenizer';
  private readonly api: GptEncodingModule;

  constructor(readonly encoding: EncodingName) {
    this.api = lazyRequire(GPT_TOKENIZER_MODULES[encoding]) as GptEncodingModule;
  }

  count(text: string): number {
    return this.api.countTokens(text, ORDINARY_TEXT);
  }
}

class TiktokenEngine implements TokenizerEngine {
  readonly name = 'tiktoken';
  // Kept for the life of the process, so the WASM memory is never freed on purpose.
  private readonly tiktoken: Tiktoken;

  constructor(readonly encoding: EncodingName) {
    const { get_encoding } = lazyRequire('tiktoken') as TiktokenModule;
    this.tiktoken = get_encoding(encoding);
  }

  count(text: string): number {
    return this.tiktoken.encode_ordinary(text).length;
  }
}

const engines = new Map<string, TokenizerEngine>();

/** The process-wide instance for an engine and encoding, if it is loaded already. */
export function loadedTokenizerEngine(
  name: TokenizerEngineName,
  encoding: EncodingName,
): TokenizerEngine | undefined {
  return engines.get(`${name}:${encoding}`);
}

/**
 * The process-wide instance for an engine and encoding. The first use loads the encoding
 * (hundreds of ms) and runs it over mixed text a few times, because the first calls run
 * several times slower (JIT, tiktoken's lazily built regex automaton) than later ones.
 */
export function getTokenizerEngine(
  name: TokenizerEngineName,
  encoding: EncodingName,
): TokenizerEngine {
  const key = `${name}:${encoding}`;
  let engine = engines.get(key);
  if (engine === undefined) {
    engine = name === 'tiktoken' ? new TiktokenEngine(encoding) : new GptTokenizerEngine(encoding);
    for (let round = 1; round <= WARM_UP_ROUNDS; round++) {
      for (const sample of WARM_UP_SAMPLES) engine.count(sample.repeat(round));
    }
    engines.set(key, engine);
  }
  return engine;
}

const WARM_UP_ROUNDS = 4;

/** A little of every kind of text the estimator sees. */
const WARM_UP_SAMPLES: readonly string[] = [
  'The gateway reserves tokens before each call and settles them afterwards. ',
  'const total = items.reduce((sum, item) => sum + item.price * 1.2, 0); // VAT\n',
  '{"model":"gpt-4o","messages":[{"role":"user","content":"Hello!"}],"n":2}\n',
  '预算在每次调用之前预留，调用结束后结算。团队共享配额。',
  'トークンの予算は呼び出しの前に確保され、後で精算されます。',
  '토큰 예산은 호출 전에 예약되고 나중에 정산됩니다.',
  'Бюджет токенов резервируется перед каждым вызовом и уточняется после него.',
  'تُحجز ميزانية الرموز قبل كل طلب وتُسوّى بعده.',
  'टोकन बजट हर कॉल से पहले आरक्षित किया जाता है।',
  'งบประมาณโทเค็นถูกจองไว้ก่อนการเรียกแต่ละครั้ง',
  'Ο προϋπολογισμός δεσμεύεται πριν από κάθε κλήση. Ça coûte 12,50 € — naïve café. 🚀👩‍💻',
];
