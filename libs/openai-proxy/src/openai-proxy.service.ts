import { Injectable, Logger, type OnModuleDestroy } from '@nestjs/common';
import {
  circuitBreaker,
  CircuitState,
  ConsecutiveBreaker,
  handleWhen,
  type IPolicy,
  timeout,
  TimeoutStrategy,
  wrap,
  type CircuitBreakerPolicy,
} from 'cockatiel';
import type { Readable } from 'node:stream';
import { Pool, type Dispatcher } from 'undici';
import type { RequestTelemetry } from '@tokenguard/common';
import { AppConfig } from '@tokenguard/config';
import { GatewayMetrics } from '@tokenguard/metrics';
import type { StreamMonitor } from './sse-relay';
import { UpstreamStreamMonitor } from './upstream-stream-monitor';
import {
  UpstreamServerError,
  UpstreamTimeoutError,
  isUpstreamFault,
  upstreamErrorKind,
  upstreamFailure,
  upstreamNotConfigured,
  upstreamKeyRejected,
} from './upstream-errors';
import { extractUsage, type UsageFigures } from './usage';

export interface UpstreamRequest {
  readonly method: 'GET' | 'POST';
  /** Path below the configured base URL, e.g. `/chat/completions`. */
  readonly path: string;
  readonly body?: Buffer | string;
  readonly requestId: string;
  readonly signal?: AbortSignal;
  /** The client request's telemetry: its route labels the metrics; upstream timings go in. */
  readonly telemetry?: RequestTelemetry;
  /** The model asked for (as the client sent it): answers are attributed to it. */
  readonly model?: string;
  /** What the request's reservation holds, for whoever learns from the answer. */
  readonly reservation?: UpstreamReservation;
}

export interface UpstreamReservation {
  /** Tokens reserved (the estimate). */
  readonly tokens: number;
  /** The reservation includes the model's upstream buckets (refunded with the rest on an error). */
  readonly upstreamCharged: boolean;
}

/** One upstream answer, as the listeners of `onAnswer` see it. */
export interface UpstreamAnswer {
  readonly model: string | undefined;
  readonly status: number;
  /** Every response header of the upstream, as received (not only those passed on). */
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly streamed: boolean;
  readonly reservation: UpstreamReservation | undefined;
}

export type UpstreamAnswerListener = (answer: UpstreamAnswer) => void;

export interface UpstreamResponse {
  readonly kind: 'buffered';
  readonly status: number;
  /** Only the upstream headers a client may see (see PASSED_HEADERS). */
  readonly headers: Record<string, string>;
  /** The upstream's body, byte for byte. */
  readonly body: Buffer;
  readonly usage: UsageFigures | undefined;
}

/** A 2xx streaming answer whose body is still arriving. */
export interface UpstreamStream {
  readonly kind: 'stream';
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: Readable;
  /** For the SseRelay: records the stream's metrics and upstream time when it ends. */
  readonly monitor: StreamMonitor;
}

/**
 * Response headers passed back to the client. The upstream's own x-ratelimit-* describe the
 * gateway's shared key, not the caller's budget, so they are replaced by ours.
 */
const PASSED_HEADERS = ['content-type', 'openai-processing-ms', 'openai-version', 'retry-after'];

export type CircuitStateName = 'closed' | 'half_open' | 'open';

export interface UpstreamProbe {
  readonly configured: boolean;
  readonly reachable: boolean;
  readonly status?: number;
  readonly latencyMs?: number;
  /** The error's class name only: messages may carry addresses or keys. */
  readonly error?: string;
}

const UPSTREAM_RATE_LIMITED = { reason: 'upstream_rate_limit', scopeType: 'upstream' } as const;

const CIRCUIT_STATE_NAMES: Readonly<Record<CircuitState, CircuitStateName>> = {
  [CircuitState.Closed]: 'closed',
  [CircuitState.HalfOpen]: 'half_open',
  [CircuitState.Open]: 'open',
  [CircuitState.Isolated]: 'open',
};

/**
 * Forwards OpenAI API calls with the server's key over a keep-alive undici pool, behind a
 * cockatiel circuit breaker and a deadline on the response headers. A request is sent at most
 * once: nothing here retries, because a completion is not idempotent (and is paid for).
 */
@Injectable()
export class OpenAIProxyService implements OnModuleDestroy {
  private readonly logger = new Logger('Upstream');
  private readonly pool: Pool | undefined;
  private readonly pathPrefix: string;
  private readonly authorization: string | undefined;
  private readonly breaker: CircuitBreakerPolicy;
  private readonly policy: IPolicy;
  private readonly streamIdleTimeoutMs: number;
  private readonly listeners: UpstreamAnswerListener[] = [];
  /** Calls cut by a shutdown are not the upstream failing. */
  private aborting = false;

  constructor(
    config: AppConfig,
    private readonly metrics: GatewayMetrics,
  ) {
    const { apiKey, baseUrl, connections, timeoutMs } = config.upstream;
    const url = new URL(baseUrl);
    this.pathPrefix = url.pathname.replace(/\/+$/, '');
    this.authorization = apiKey ? `Bearer ${apiKey}` : undefined;
    this.streamIdleTimeoutMs = config.upstream.streamIdleTimeoutMs;
    this.pool = apiKey
      ? new Pool(url.origin, {
          connections,
          keepAliveTimeout: 30_000,
          connectTimeout: timeoutMs,
          headersTimeout: timeoutMs,
          bodyTimeout: timeoutMs,
        })
      : undefined;
    this.breaker = circuitBreaker(handleWhen(isUpstreamFault), {
      halfOpenAfter: config.upstream.circuitBreakerRecoveryMs,
      breaker: new ConsecutiveBreaker(config.upstream.circuitBreakerFailureThreshold),
    });
    this.breaker.onStateChange((state) => {
      const name = CIRCUIT_STATE_NAMES[state];
      this.logger.warn(`Upstream circuit is now ${name}.`);
      this.metrics.circuitChanged(name);
    });
    // The deadline covers the response headers only: the body (a stream, above all) must
    // outlive it, so the signal is not aborted when the call returns.
    const headersDeadline = timeout(timeoutMs, {
      strategy: TimeoutStrategy.Cooperative,
      abortOnReturn: false,
    });
    this.policy = wrap(this.breaker, headersDeadline);
  }

  get configured(): boolean {
    return this.pool !== undefined;
  }

  /**
   * Whether the upstream answers at all (any HTTP status counts): a cheap `GET /models` with
   * the server key, outside the circuit breaker so that probes never open or close it.
   */
  async probe(timeoutMs = 5000): Promise<UpstreamProbe> {
    const started = performance.now();
    if (!this.pool || !this.authorization) return { configured: false, reachable: false };
    try {
      const response = await this.pool.request({
        method: 'GET',
        path: `${this.pathPrefix}/models`,
        headers: { authorization: this.authorization, 'user-agent': 'tokenguard-probe' },
        signal: AbortSignal.timeout(timeoutMs),
      });
      await response.body.dump();
      return {
        configured: true,
        reachable: true,
        status: response.statusCode,
        latencyMs: Math.round(performance.now() - started),
      };
    } catch (error) {
      return {
        configured: true,
        reachable: false,
        error: error instanceof Error ? error.name : 'Error',
        latencyMs: Math.round(performance.now() - started),
      };
    }
  }

  get circuitState(): CircuitStateName {
    return CIRCUIT_STATE_NAMES[this.breaker.state];
  }

  /**
   * Calls `listener` with the headers of every upstream answer, as soon as they arrive:
   * buffered or streamed, success or error (5xx included). Listeners run synchronously and
   * must not throw (a throw is logged and ignored: it never fails the request).
   */
  onAnswer(listener: UpstreamAnswerListener): () => void {
    this.listeners.push(listener);
    return () => {
      const at = this.listeners.indexOf(listener);
      if (at >= 0) this.listeners.splice(at, 1);
    };
  }

  /**
   * One JSON request/response. 2xx–4xx come back for the caller to pass through; connection
   * failures, timeouts, 5xx and an open circuit throw an OpenAI-shaped 502/503/504.
   */
  async forward(request: UpstreamRequest): Promise<UpstreamResponse> {
    const sentAt = performance.now();
    const response = await this.dispatch(request, undefined, sentAt);
    return this.buffer(request, response, sentAt);
  }

  /**
   * A streaming request: a 2xx answer comes back with its body still arriving (idle-timed by
   * UPSTREAM_STREAM_IDLE_TIMEOUT_MS); any other answer is read whole, like `forward`.
   */
  async forwardStream(request: UpstreamRequest): Promise<UpstreamStream | UpstreamResponse> {
    const sentAt = performance.now();
    const response = await this.dispatch(request, this.streamIdleTimeoutMs, sentAt);
    if (response.statusCode >= 300) return this.buffer(request, response, sentAt);
    if (request.telemetry) request.telemetry.streamed = true;
    return {
      kind: 'stream',
      status: response.statusCode,
      headers: pickHeaders(response.headers),
      body: response.body,
      monitor: new UpstreamStreamMonitor(this.metrics, request.telemetry, sentAt),
    };
  }

  /**
   * Aborts every upstream call still in flight (a shutdown past its grace period): their
   * clients are gone, and waiting for them could take up to UPSTREAM_TIMEOUT_MS.
   */
  async abortInFlight(): Promise<void> {
    this.aborting = true;
    if (this.pool && !this.pool.destroyed) await this.pool.destroy();
  }

  async onModuleDestroy(): Promise<void> {
    if (this.pool && !this.pool.destroyed && !this.pool.closed) await this.pool.close();
  }

  /** Sends the request and waits for the response headers, under the breaker and deadline. */
  private async dispatch(
    request: UpstreamRequest,
    bodyTimeout: number | undefined,
    sentAt: number,
  ): Promise<Dispatcher.ResponseData> {
    const pool = this.pool;
    const authorization = this.authorization;
    if (!pool || !authorization) throw upstreamNotConfigured();
    const streamed = bodyTimeout !== undefined;
    let answeredAt = 0;
    try {
      const response = await this.policy.execute(async ({ signal }) => {
        const response = await pool
          .request({
            method: request.method,
            path: this.pathPrefix + request.path,
            body: request.body,
            signal,
            bodyTimeout,
            headers: {
              authorization,
              'content-type': 'application/json',
              accept: bodyTimeout === undefined ? 'application/json' : 'text/event-stream',
              'x-client-request-id': request.requestId,
              'user-agent': 'tokenguard',
            },
          })
          .catch((error: unknown) => {
            // The deadline aborted the request: say so, rather than "aborted".
            throw signal.aborted && !request.signal?.aborted ? new UpstreamTimeoutError() : error;
          });
        answeredAt = performance.now();
        this.notify(request, response.statusCode, response.headers, streamed);
        if (response.statusCode >= 500) {
          // A provider failure counts against the circuit; its body only feeds the message.
          const body = await response.body.text().catch(() => '');
          throw new UpstreamServerError(response.statusCode, errorMessageOf(body));
        }
        return response;
        // A parent signal per call: cockatiel's default one is shared by every call and would
        // collect one listener per request in flight.
      }, request.signal ?? new AbortController().signal);
      this.answered(request.telemetry, response.statusCode, answeredAt - sentAt, streamed);
      return response;
    } catch (error) {
      if (error instanceof UpstreamServerError) {
        // A 5xx is an answer too (its body was read to build the message).
        this.answered(request.telemetry, error.status, answeredAt - sentAt, streamed);
        this.completed(request.telemetry, sentAt);
      }
      this.failed(request, error, sentAt);
      throw upstreamFailure(error);
    }
  }

  private async buffer(
    request: UpstreamRequest,
    response: Dispatcher.ResponseData,
    sentAt: number,
  ): Promise<UpstreamResponse> {
    let body: Buffer;
    try {
      body = Buffer.from(await response.body.arrayBuffer());
    } catch (error) {
      this.failed(request, error, sentAt);
      throw upstreamFailure(error);
    }
    this.completed(request.telemetry, sentAt);
    // The provider refused the gateway's own key: not the client's doing (in AUTH_MODE=keys it
    // would read as "your key is wrong"), and its message may quote part of the server key.
    if (response.statusCode === 401) throw upstreamKeyRejected();
    const ok = response.statusCode < 300;
    return {
      kind: 'buffered',
      status: response.statusCode,
      headers: pickHeaders(response.headers),
      body,
      usage: ok ? extractUsage(parseJson(body, response.headers['content-type'])) : undefined,
    };
  }

  /** The upstream's response headers arrived. */
  private answered(
    telemetry: RequestTelemetry | undefined,
    status: number,
    ttfbMs: number,
    streamed: boolean,
  ): void {
    this.metrics.upstreamAnswered(telemetry?.route ?? 'other', status, ttfbMs, streamed);
    if (status === 429) this.metrics.rejected('upstream', 'upstream_rate_limit');
    if (!telemetry) return;
    telemetry.upstreamStatus = status;
    telemetry.upstreamTtfbMs = ttfbMs;
    telemetry.upstreamMs = ttfbMs;
    if (status === 429) {
      telemetry.outcome = 'rejected';
      telemetry.rejection = UPSTREAM_RATE_LIMITED;
    }
  }

  /** The one place every upstream answer's headers pass through. */
  private notify(
    request: UpstreamRequest,
    status: number,
    headers: Record<string, string | string[] | undefined>,
    streamed: boolean,
  ): void {
    if (this.listeners.length === 0) return;
    const answer: UpstreamAnswer = {
      model: request.model,
      status,
      headers,
      streamed,
      reservation: request.reservation,
    };
    for (const listener of this.listeners) {
      try {
        listener(answer);
      } catch (error) {
        this.logger.error(`An upstream answer listener failed: ${String(error)}`);
      }
    }
  }

  /** The upstream's response was read to its end. */
  private completed(telemetry: RequestTelemetry | undefined, sentAt: number): void {
    const durationMs = performance.now() - sentAt;
    this.metrics.upstreamCompleted(telemetry?.route ?? 'other', durationMs);
    if (telemetry) telemetry.upstreamMs = durationMs;
  }

  private failed(request: UpstreamRequest, error: unknown, sentAt: number): void {
    const kind = upstreamErrorKind(error);
    // The caller's own cancellation (or a shutdown's) is not the upstream failing.
    if (kind === undefined || request.signal?.aborted || this.aborting) return;
    this.metrics.upstreamFailed(kind);
    const telemetry = request.telemetry;
    if (!telemetry) return;
    telemetry.upstreamError = kind;
    // An open circuit sent nothing, so nothing was waited for.
    if (kind !== 'circuit_open') telemetry.upstreamMs = performance.now() - sentAt;
  }
}

function pickHeaders(raw: Record<string, string | string[] | undefined>): Record<string, string> {
  const picked: Record<string, string> = {};
  for (const name of PASSED_HEADERS) {
    const value = raw[name];
    if (typeof value === 'string') picked[name] = value;
  }
  const upstreamId = raw['x-request-id'];
  if (typeof upstreamId === 'string') picked['x-upstream-request-id'] = upstreamId;
  return picked;
}

function parseJson(body: Buffer, contentType: string | string[] | undefined): unknown {
  if (typeof contentType !== 'string' || !contentType.includes('json')) return undefined;
  try {
    return JSON.parse(body.toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

function errorMessageOf(text: string): string | undefined {
  try {
    const message = (JSON.parse(text) as { error?: { message?: unknown } }).error?.message;
    return typeof message === 'string' ? message : undefined;
  } catch {
    return undefined;
  }
}
