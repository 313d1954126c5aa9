import type { EncodingName } from './encoding-for-model';

/**
 * One chat message as the estimator reads it. Only these fields are counted; anything else on
 * the object is ignored. (No index signature, so that class DTOs are assignable.)
 */
export interface ChatMessageInput {
  readonly role: string;
  /** A string, null, or content parts (`text`, `image_url`, `input_audio`, `file`, `refusal`…). */
  readonly content?: string | ReadonlyArray<Record<string, unknown>> | null;
  readonly name?: string | null;
  /** Assistant tool calls: `{ id, type: 'function', function: { name, arguments } }`. */
  readonly tool_calls?: readonly unknown[] | null;
  /** Legacy assistant function call: `{ name, arguments }`. */
  readonly function_call?: unknown;
  /** Assistant refusal text. */
  readonly refusal?: string | null;
}

/** The fields of a chat completion request that decide its cost. */
export interface ChatEstimateInput {
  readonly model: string;
  readonly messages: ReadonlyArray<ChatMessageInput>;
  readonly tools?: readonly unknown[] | null;
  readonly functions?: readonly unknown[] | null;
  readonly max_tokens?: number | null;
  readonly max_completion_tokens?: number | null;
  readonly n?: number | null;
}

export type ChatPromptInput = Pick<ChatEstimateInput, 'model' | 'messages' | 'tools' | 'functions'>;

/** A token count and whether it is exact (false: some text was bounded by its UTF-8 length). */
export interface TokenCount {
  readonly tokens: number;
  readonly exact: boolean;
}

/** What one request may cost, reserved before it is forwarded. */
export interface TokenEstimate {
  readonly model: string;
  readonly encoding: EncodingName;
  /** Prompt tokens, chat overhead included. */
  readonly promptTokens: number;
  /** Output allowance for all `n` choices together. */
  readonly maxOutputTokens: number;
  /** promptTokens + maxOutputTokens. */
  readonly totalTokens: number;
  /**
   * True when every piece of text was tokenized; false when the work budget made some of it
   * count as its UTF-8 length (an upper bound). Fixed allowances for images, audio, files and
   * the tool-definition approximation do not make an estimate inexact.
   */
  readonly exact: boolean;
}
