import type { IncomingMessage } from 'node:http';

/** Route labels: a small fixed set, safe for metric labels. */
export type RouteLabel =
  | 'chat.completions'
  | 'completions'
  | 'embeddings'
  | 'responses'
  | 'models'
  | 'admin'
  | 'health'
  | 'status'
  | 'metrics'
  | 'docs'
  | 'other';

/** How a charged request's reservation was closed. */
export type SettlementLabel = 'complete' | 'aborted' | 'upstream_error' | 'refund' | 'unmetered';

/**
 * What one request did, filled in by whichever layer knows it (limiter, proxy, relay) and
 * read once when the response closes by the request log line and the metrics. Lives on the
 * raw Node request so that Fastify hooks, Nest handlers and pino-http all reach the same one.
 */
export class RequestTelemetry {
  /** `performance.now()` when the request arrived. */
  readonly startedAt = performance.now();
  route: RouteLabel = 'other';
  /** Normalised model label (a known model family or `other`). */
  model: string | undefined;
  /** Scope types charged, outermost first (never ids: those are personal data). */
  scopeTypes: readonly string[] = [];
  estimatedTokens: number | undefined;
  /** What the request was finally charged after settlement. */
  chargedTokens: number | undefined;
  /** admitted | rejected | invalid | error | degraded_open | degraded_local … */
  outcome: string | undefined;
  settlement: SettlementLabel | undefined;
  /** Why a request was rejected (`insufficient`, `too_large`, …) and by which scope type. */
  rejection: { reason: string; scopeType: string } | undefined;
  /**
   * Milliseconds spent waiting on the upstream: from sending the call to the end of its
   * response (the whole body, streamed or buffered), or to its failure.
   */
  upstreamMs = 0;
  /** Milliseconds from sending the upstream request to its response headers. */
  upstreamTtfbMs: number | undefined;
  upstreamStatus: number | undefined;
  /** How the upstream call failed (`timeout`, `connection`, `server_error`, `circuit_open`, `stream_error`, `stream_idle`). */
  upstreamError: string | undefined;
  streamed = false;
}

const TELEMETRY = Symbol('tokenguard:telemetry');

type Carrier = { [TELEMETRY]?: RequestTelemetry; raw?: IncomingMessage };

/** The request's telemetry (created on first use); accepts a Fastify or a raw Node request. */
export function telemetryOf(request: object): RequestTelemetry {
  const carrier = ((request as Carrier).raw ?? request) as Carrier;
  return (carrier[TELEMETRY] ??= new RequestTelemetry());
}
