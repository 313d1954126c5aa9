import { setMaxListeners } from 'node:events';
import { Inject, Injectable, OnApplicationShutdown } from '@nestjs/common';
import { formatResetDuration } from './duration-format';
import { DEFAULT_BEHAVIOUR, MockBehaviour, parseBehaviourPatch } from './mock-behaviour';
import { MOCK_OPTIONS, MockOpenAIOptions } from './mock-options';
import { OpenAIHttpError } from './openai-error';
import { RateLimitCounter } from './rate-limit-counter';
import { RequestRecorder } from './request-recorder';

/** Everything mutable about one mock instance: knobs, limits, recorder, auth, models. */
@Injectable()
export class MockStateService implements OnApplicationShutdown {
  readonly recorder: RequestRecorder;
  /** Aborted once the server is closed, so pending latency/chunk timers do not outlive it. */
  readonly shutdown = new AbortController();

  private readonly defaults: Readonly<MockBehaviour>;
  private current: Readonly<MockBehaviour>;
  private readonly requestCounter = new RateLimitCounter();
  private readonly tokenCounter = new RateLimitCounter();
  private readonly apiKeys: ReadonlySet<string> | null;
  private readonly authRequired: boolean;
  private readonly allowedModels: ReadonlySet<string> | null;

  constructor(@Inject(MOCK_OPTIONS) options: MockOpenAIOptions) {
    // Every pending latency/chunk timer listens on this signal: hundreds at once is normal.
    setMaxListeners(0, this.shutdown.signal);
    this.defaults = Object.freeze({
      ...DEFAULT_BEHAVIOUR,
      ...parseBehaviourPatch(options.behaviour ?? {}, 'behaviour'),
    });
    this.current = this.defaults;
    const keys = options.apiKey === undefined ? [] : [options.apiKey].flat();
    this.apiKeys = keys.length > 0 ? new Set(keys) : null;
    this.authRequired = this.apiKeys !== null || options.requireAuth === true;
    this.allowedModels =
      options.models && options.models.length > 0 ? new Set(options.models) : null;
    this.recorder = new RequestRecorder(options.recordLimit ?? 1000, options.record ?? true);
  }

  /** The global knobs (frozen: patch them with `setBehaviour`). */
  get behaviour(): Readonly<MockBehaviour> {
    return this.current;
  }

  get defaultBehaviour(): Readonly<MockBehaviour> {
    return this.defaults;
  }

  /** Validates and merges `patch` into the global knobs; null clears a nullable knob. */
  setBehaviour(patch: unknown): Readonly<MockBehaviour> {
    this.current = Object.freeze({ ...this.current, ...parseBehaviourPatch(patch, 'behaviour') });
    return this.current;
  }

  /** Back to the startup knobs, with empty rate-limit counters and recorder. */
  reset(): Readonly<MockBehaviour> {
    this.current = this.defaults;
    this.requestCounter.reset();
    this.tokenCounter.reset();
    this.recorder.clear();
    return this.current;
  }

  /** The configured allow-list, or null when any model is accepted. */
  get models(): readonly string[] | null {
    return this.allowedModels ? [...this.allowedModels] : null;
  }

  assertModel(model: string): void {
    if (this.allowedModels !== null && !this.allowedModels.has(model)) {
      throw new OpenAIHttpError(
        404,
        `The model \`${model}\` does not exist or you do not have access to it.`,
        'invalid_request_error',
        'model',
        'model_not_found',
      );
    }
  }

  checkAuth(header: string | undefined): void {
    if (!this.authRequired) return;
    const match = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (match === null) {
      throw new OpenAIHttpError(
        401,
        "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        'invalid_request_error',
      );
    }
    const key = match[1];
    if (this.apiKeys !== null && !this.apiKeys.has(key)) {
      throw new OpenAIHttpError(
        401,
        `Incorrect API key provided: ${redact(key)}.`,
        'invalid_request_error',
        null,
        'invalid_api_key',
      );
    }
  }

  /**
   * Counts one request and its tokens. With `enforceRateLimits` a request that does not fit
   * is refused with OpenAI's 429 (and counts nothing); otherwise the counters only feed the
   * headers.
   */
  admit(tokens: number, behaviour: MockBehaviour): void {
    const rpm = behaviour.rateLimitRequests;
    const tpm = behaviour.rateLimitTokens;
    if (behaviour.enforceRateLimits) {
      const requestWait = this.requestCounter.waitFor(1, rpm);
      const tokenWait = this.tokenCounter.waitFor(tokens, tpm);
      if (requestWait > 0 || tokenWait > 0) {
        const byTokens = tokenWait >= requestWait;
        const waitMs = Math.max(requestWait, tokenWait);
        const what = byTokens
          ? `tokens per min (TPM): Limit ${tpm}`
          : `requests per min (RPM): Limit ${rpm}`;
        throw new OpenAIHttpError(
          429,
          `Rate limit reached for ${what}. Please try again in ${formatResetDuration(waitMs)}.`,
          byTokens ? 'tokens' : 'requests',
          null,
          'rate_limit_exceeded',
          retryHeaders(waitMs),
        );
      }
    }
    this.requestCounter.consume(1, rpm);
    this.tokenCounter.consume(tokens, tpm);
  }

  /** Adds the six `x-ratelimit-*` headers to `headers`. */
  addRateLimitHeaders(headers: Record<string, string>, behaviour: MockBehaviour): void {
    const requests = this.requestCounter.snapshot(behaviour.rateLimitRequests);
    const tokens = this.tokenCounter.snapshot(behaviour.rateLimitTokens);
    headers['x-ratelimit-limit-requests'] = String(requests.limit);
    headers['x-ratelimit-limit-tokens'] = String(tokens.limit);
    headers['x-ratelimit-remaining-requests'] = String(requests.remaining);
    headers['x-ratelimit-remaining-tokens'] = String(tokens.remaining);
    headers['x-ratelimit-reset-requests'] = formatResetDuration(requests.resetMs);
    headers['x-ratelimit-reset-tokens'] = formatResetDuration(tokens.resetMs);
  }

  onApplicationShutdown(): void {
    this.shutdown.abort();
  }
}

/** `retry-after` (whole seconds, at least 1) and `retry-after-ms`, as the OpenAI SDKs read them. */
export function retryHeaders(waitMs: number): Record<string, string> {
  return {
    'retry-after': String(Math.max(1, Math.ceil(waitMs / 1000))),
    'retry-after-ms': String(Math.max(0, Math.ceil(waitMs))),
  };
}

function redact(key: string): string {
  return key.length <= 8 ? '***' : `${key.slice(0, 3)}***${key.slice(-4)}`;
}
