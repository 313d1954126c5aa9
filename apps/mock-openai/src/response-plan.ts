import type { MockBehaviour } from './mock-behaviour';

export type JsonObject = Record<string, unknown>;

/** A JSON answer, already serialised. */
export interface JsonPlan {
  readonly stream: false;
  readonly body: string;
  /** Tokens this request costs against the token limit (prompt + completion). */
  readonly tokens: number;
}

/** An SSE answer: complete `data: …\n\n` events, `[DONE]` included. */
export interface StreamPlan {
  readonly stream: true;
  readonly events: readonly string[];
  readonly tokens: number;
}

export type ResponsePlan = JsonPlan | StreamPlan;

/**
 * Turns a validated request into the full answer up front (the reply is deterministic),
 * so the pipeline owns everything about timing and failure. Throws `OpenAIHttpError`.
 */
export type Planner = (body: JsonObject, behaviour: MockBehaviour) => ResponsePlan;

export const SSE_DONE = 'data: [DONE]\n\n';
