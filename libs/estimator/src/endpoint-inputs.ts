/*
 * The request fields the estimator reads for the endpoints other than chat completions.
 * Like `ChatEstimateInput`, these have no index signatures, so that a plain class-validator
 * DTO with the same (or more) fields is assignable to them; fields not listed are ignored.
 */

/**
 * A prompt or an embedding input as OpenAI accepts it: one string, several strings, one
 * array of token ids, or several arrays of token ids.
 */
export type TextOrTokens =
  string | readonly string[] | readonly number[] | ReadonlyArray<readonly number[]>;

/** The fields of a legacy `POST /v1/completions` request that decide its cost. */
export interface CompletionEstimateInput {
  readonly model: string;
  readonly prompt: TextOrTokens | null;
  /** Per choice; OpenAI's default for this endpoint is 16. */
  readonly max_tokens?: number | null;
  /** Choices returned per prompt. */
  readonly n?: number | null;
  /** Completions generated (and billed) per prompt, of which the best `n` are returned. */
  readonly best_of?: number | null;
  /** Echoes the prompt back in the output text; billed as prompt, not as output. */
  readonly echo?: boolean | null;
}

export type CompletionPromptInput = Pick<CompletionEstimateInput, 'model' | 'prompt'>;

/** The fields of a `POST /v1/embeddings` request that decide its cost. */
export interface EmbeddingEstimateInput {
  readonly model: string;
  readonly input: TextOrTokens | null;
  /** Has no effect on the token count. */
  readonly dimensions?: number | null;
}

export type EmbeddingPromptInput = Pick<EmbeddingEstimateInput, 'model' | 'input'>;

/**
 * One item of a Responses API `input` array. Only these fields are read:
 * - a message (`type: 'message'`, or no `type` and a `role`): `role` and `content`, a string
 *   or parts (`input_text`/`output_text` with `text`, `refusal`, `input_image`, `input_file`,
 *   `input_audio`);
 * - `function_call`: `name` and `arguments`; `custom_tool_call`: `name` and `input`;
 * - `function_call_output` / `custom_tool_call_output`: `output`, a string or content parts;
 * - anything else: its compact JSON.
 */
export interface ResponseInputItem {
  readonly type?: string | null;
  readonly role?: string | null;
  readonly content?: string | readonly unknown[] | null;
  readonly name?: string | null;
  readonly arguments?: unknown;
  readonly input?: unknown;
  readonly output?: unknown;
}

/** The fields of a `POST /v1/responses` request that decide its cost. */
export interface ResponseEstimateInput {
  readonly model: string;
  readonly input?: string | ReadonlyArray<ResponseInputItem> | null;
  /** A system (developer) message placed before `input`. */
  readonly instructions?: string | null;
  /** Output allowance, reasoning tokens included; else the configured default. */
  readonly max_output_tokens?: number | null;
  readonly tools?: readonly unknown[] | null;
}

export type ResponsePromptInput = Pick<
  ResponseEstimateInput,
  'model' | 'input' | 'instructions' | 'tools'
>;
