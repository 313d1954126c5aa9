import { errors } from 'undici';
import type { RequestTelemetry, RouteLabel } from '@tokenguard/common';
import type { GatewayMetrics } from '@tokenguard/metrics';
import type { StreamEnd, StreamMonitor } from './sse-relay';

/**
 * Follows one relayed upstream stream: in flight while relayed, then the upstream's whole
 * duration (sent to last byte, or to the cut) and, when the upstream failed, how.
 */
export class UpstreamStreamMonitor implements StreamMonitor {
  private readonly route: RouteLabel;

  constructor(
    private readonly metrics: GatewayMetrics,
    private readonly telemetry: RequestTelemetry | undefined,
    /** `performance.now()` when the upstream request was sent. */
    private readonly sentAt: number,
  ) {
    this.route = telemetry?.route ?? 'other';
  }

  opened(): void {
    this.metrics.streamOpened(this.route);
  }

  closed(end: StreamEnd, error: unknown): void {
    const durationMs = performance.now() - this.sentAt;
    this.metrics.streamClosed(this.route);
    this.metrics.upstreamCompleted(this.route, durationMs);
    if (this.telemetry) this.telemetry.upstreamMs = durationMs;
    if (end !== 'upstream_error') return;
    // undici's body timeout is UPSTREAM_STREAM_IDLE_TIMEOUT_MS on a stream.
    const kind = error instanceof errors.BodyTimeoutError ? 'stream_idle' : 'stream_error';
    this.metrics.upstreamFailed(kind);
    if (this.telemetry) this.telemetry.upstreamError = kind;
  }
}
