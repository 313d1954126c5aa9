import { Injectable } from '@nestjs/common';
import { isTokenArray, optionalInt, requireModel } from './body-fields';
import type { MockBehaviour } from './mock-behaviour';
import { MockStateService } from './mock-state.service';
import { invalidRequest } from './openai-error';
import type { JsonObject, ResponsePlan } from './response-plan';
import { TokenCountCache } from './token-count-cache';

const MAX_INPUTS = 2048;

/** One input: the seed that makes its vector deterministic, and its token count. */
interface EmbeddingInput {
  readonly seed: string;
  readonly tokens: number;
}

/** `POST /v1/embeddings`: deterministic unit vectors, float or base64. */
@Injectable()
export class EmbeddingsService {
  constructor(
    private readonly state: MockStateService,
    private readonly counter: TokenCountCache,
  ) {}

  plan(body: JsonObject, behaviour: MockBehaviour): ResponsePlan {
    const model = requireModel(body);
    const inputs = readInputs(body.input, model, this.counter);
    const format = body.encoding_format ?? 'float';
    if (format !== 'float' && format !== 'base64') {
      throw invalidRequest(
        `Invalid value: ${JSON.stringify(format)}. Supported values are: 'float' and 'base64'.`,
        'encoding_format',
        'invalid_value',
      );
    }
    const native = nativeDimensions(model);
    const dimensions = optionalInt(body, 'dimensions', 1, native) ?? native;
    this.state.assertModel(model);

    let promptTokens = 0;
    const data = inputs.map((input, index) => {
      promptTokens += input.tokens;
      const vector = embed(input.seed, dimensions);
      return {
        object: 'embedding',
        index,
        embedding:
          format === 'base64'
            ? Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength).toString('base64')
            : Array.from(vector),
      };
    });
    const answer: JsonObject = { object: 'list', data, model };
    if (!behaviour.omitUsage) {
      answer.usage = { prompt_tokens: promptTokens, total_tokens: promptTokens };
    }
    return { stream: false, body: JSON.stringify(answer), tokens: promptTokens };
  }
}

function nativeDimensions(model: string): number {
  return model.includes('embedding-3-large') ? 3072 : 1536;
}

function readInputs(input: unknown, model: string, counter: TokenCountCache): EmbeddingInput[] {
  if (input === undefined || input === null) {
    throw invalidRequest(
      "Missing required parameter: 'input'.",
      'input',
      'missing_required_parameter',
    );
  }
  const text = (value: string): EmbeddingInput => ({
    seed: `t:${value}`,
    tokens: counter.text(value, model),
  });
  const tokens = (value: number[]): EmbeddingInput => ({
    seed: `k:${value.join(',')}`,
    tokens: value.length,
  });
  if (typeof input === 'string' && input.length > 0) return [text(input)];
  if (Array.isArray(input) && input.length > 0 && input.length <= MAX_INPUTS) {
    if (input.every((item) => typeof item === 'string' && item.length > 0)) {
      return input.map((item: string) => text(item));
    }
    if (isTokenArray(input)) return [tokens(input)];
    if (input.every(isTokenArray)) return input.map((item: number[]) => tokens(item));
  }
  throw invalidRequest(
    `'$.input' is invalid: expected a non-empty string, an array of at most ${MAX_INPUTS} non-empty strings, an array of tokens, or an array of token arrays.`,
    'input',
    'invalid_value',
  );
}

/**
 * A unit vector derived from the input alone (FNV-1a hash as the seed of an xorshift32
 * stream), so equal inputs embed equally across requests and runs. Float32, as OpenAI's
 * base64 payload is (little-endian on every platform Node runs on here).
 */
export function embed(seed: string, dimensions: number): Float32Array {
  let state = 0x811c9dc5;
  for (let i = 0; i < seed.length; i++) {
    state = Math.imul(state ^ seed.charCodeAt(i), 0x01000193);
  }
  if (state === 0) state = 1; // xorshift never leaves zero
  const vector = new Float32Array(dimensions);
  let norm = 0;
  for (let i = 0; i < dimensions; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    const value = (state >>> 0) / 2147483648 - 1;
    vector[i] = value;
    norm += value * value;
  }
  const scale = norm > 0 ? 1 / Math.sqrt(norm) : 0;
  for (let i = 0; i < dimensions; i++) vector[i] *= scale;
  return vector;
}
