import type { MockBehaviour } from './mock-behaviour';

/** Startup configuration of a mock instance. */
export interface MockOpenAIOptions {
  /** Startup knob values; `reset()` and `POST /_mock/reset` return to these. */
  behaviour?: Partial<MockBehaviour>;
  /** Accepted bearer keys. When set (non-empty), requests without one of them get 401. */
  apiKey?: string | readonly string[];
  /** Require some `Authorization: Bearer …` header even when no `apiKey` is set. */
  requireAuth?: boolean;
  /** Model allow-list: other models get 404, and it is what `GET /v1/models` lists. */
  models?: readonly string[];
  /** Record received requests (default true; turn off for benchmarks). */
  record?: boolean;
  /** How many recent requests the recorder keeps (default 1000). */
  recordLimit?: number;
  /** Let Nest log warnings and errors. Default false. There is never per-request logging. */
  logger?: boolean;
  /** Load every tokenizer encoding at startup (about a second) instead of on first use. */
  warmUp?: boolean;
  /** Largest accepted request body in bytes (default 64 MiB). */
  bodyLimit?: number;
}

export const MOCK_OPTIONS = Symbol('MOCK_OPENAI_OPTIONS');
