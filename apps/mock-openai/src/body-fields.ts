import { invalidRequest } from './openai-error';
import type { JsonObject } from './response-plan';

/** Small field readers that fail with OpenAI's 400 wording and `param`. */

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function requireJsonObject(body: unknown): JsonObject {
  if (body === undefined || body === null || body === '') {
    throw invalidRequest(
      'The request body is empty. The API expects a JSON object, sent with Content-Type: application/json.',
    );
  }
  if (!isJsonObject(body)) {
    throw invalidRequest('The request body must be a JSON object.');
  }
  return body;
}

export function requireModel(body: JsonObject): string {
  const model = body.model;
  if (model === undefined || model === null) {
    throw invalidRequest(
      'you must provide a model parameter',
      'model',
      'missing_required_parameter',
    );
  }
  if (typeof model !== 'string' || model.length === 0) {
    throw invalidRequest(
      `Invalid type for 'model': expected a non-empty string.`,
      'model',
      'invalid_type',
    );
  }
  return model;
}

/** An optional integer in [min, max]; JSON null counts as absent, as OpenAI treats it. */
export function optionalInt(
  body: JsonObject,
  key: string,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw invalidRequest(`Invalid type for '${key}': expected an integer.`, key, 'invalid_type');
  }
  if (value < min) {
    throw invalidRequest(
      `Invalid '${key}': integer below minimum value. Expected a value >= ${min}, but got ${value} instead.`,
      key,
      'integer_below_min_value',
    );
  }
  if (value > max) {
    throw invalidRequest(
      `Invalid '${key}': integer above maximum value. Expected a value <= ${max}, but got ${value} instead.`,
      key,
      'integer_above_max_value',
    );
  }
  return value;
}

export function optionalBool(body: JsonObject, key: string): boolean | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'boolean') {
    throw invalidRequest(`Invalid type for '${key}': expected a boolean.`, key, 'invalid_type');
  }
  return value;
}

/** `stream` and `stream_options.include_usage`, with OpenAI's rule that options need a stream. */
export function readStreaming(body: JsonObject): { stream: boolean; includeUsage: boolean } {
  const stream = optionalBool(body, 'stream') ?? false;
  const options = body.stream_options;
  if (options === undefined || options === null) return { stream, includeUsage: false };
  if (!isJsonObject(options)) {
    throw invalidRequest(
      `Invalid type for 'stream_options': expected an object.`,
      'stream_options',
      'invalid_type',
    );
  }
  if (!stream) {
    throw invalidRequest(
      "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
      'stream_options',
    );
  }
  const includeUsage = options.include_usage;
  if (includeUsage !== undefined && includeUsage !== null && typeof includeUsage !== 'boolean') {
    throw invalidRequest(
      `Invalid type for 'stream_options.include_usage': expected a boolean.`,
      'stream_options.include_usage',
      'invalid_type',
    );
  }
  return { stream, includeUsage: includeUsage === true };
}

/** Reply length: what the request allows, bounded by the `completionTokens` knob. */
export function replyLength(
  requested: number | undefined,
  defaultTokens: number,
  cap: number | null,
): { tokens: number; finishReason: 'stop' | 'length' } {
  const wanted = requested ?? defaultTokens;
  const tokens = cap !== null && cap < wanted ? cap : wanted;
  // "length" means the request's own limit cut the reply, as with OpenAI.
  return {
    tokens,
    finishReason: requested !== undefined && tokens === requested ? 'length' : 'stop',
  };
}

/** A non-empty array of token ids. */
export function isTokenArray(value: unknown): value is number[] {
  return (
    Array.isArray(value) &&
    value.length > 0 &&
    value.every((token) => Number.isInteger(token) && (token as number) >= 0)
  );
}
