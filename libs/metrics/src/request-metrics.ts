import type { ServerResponse } from 'node:http';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { type RequestTelemetry, telemetryOf } from '@tokenguard/common';
import { GatewayMetrics } from './gateway-metrics';
import { CHARGED_ROUTES, type HttpOutcome } from './labels';
import { routeLabel } from './route-label';

/** Recorded for a response that closed before anything was sent: the client went away. */
export const CLIENT_CLOSED_REQUEST = 499;

const CHARGED = new Set<string>(CHARGED_ROUTES);

/**
 * Request-level telemetry and metrics, installed once on the gateway's Fastify instance:
 *
 * - on arrival, the request's route label (from its registered pattern) and, for routes that
 *   charge nothing, the `unlimited` outcome; a charged route starts as `invalid` until the
 *   limiter decides, so a body the parser refuses (400/413/415) is counted as such;
 * - when the response closes (sent, or the client gone mid-stream, which Fastify's onResponse
 *   never reports), `http_requests_total`, the duration and the gateway's overhead.
 *
 * With metrics off only the labels are set (the request log reads them too).
 */
export function installRequestMetrics(app: NestFastifyApplication): void {
  const metrics = app.get(GatewayMetrics);
  const fastify = app.getHttpAdapter().getInstance();
  const onClose = metrics.enabled ? responseClosedListener(metrics) : undefined;
  fastify.addHook('onRequest', (request, reply, done) => {
    const telemetry = telemetryOf(request.raw);
    const route = routeLabel(request.routeOptions.url);
    telemetry.route = route;
    telemetry.outcome = CHARGED.has(route) ? 'invalid' : 'unlimited';
    // One shared listener (it finds the request through `this.req`): nothing allocated here.
    if (onClose) reply.raw.on('close', onClose);
    done();
  });
}

/**
 * The outcome a finished request is counted under. A charged request that was admitted (or
 * never got past validation) and still ended in a 5xx failed: `error`.
 */
export function finalOutcome(telemetry: RequestTelemetry, status: number): HttpOutcome {
  const outcome = telemetry.outcome as HttpOutcome | undefined;
  if (outcome === undefined) {
    if (status >= 500) return 'error';
    return CHARGED.has(telemetry.route) ? 'invalid' : 'unlimited';
  }
  if (status >= 500 && outcome !== 'rejected' && outcome !== 'unlimited') return 'error';
  return outcome;
}

function responseClosedListener(metrics: GatewayMetrics): (this: ServerResponse) => void {
  const record = (response: ServerResponse, closedAt: number): void => {
    const telemetry = telemetryOf(response.req);
    const status = response.headersSent ? response.statusCode : CLIENT_CLOSED_REQUEST;
    telemetry.outcome = finalOutcome(telemetry, status);
    metrics.requestCompleted(telemetry, status, closedAt - telemetry.startedAt);
  };
  return function onResponseClosed(this: ServerResponse): void {
    const closedAt = performance.now();
    // A relayed stream learns that the client left in a later 'close' listener; recording
    // after them all lets the upstream time cover the whole stream.
    if (telemetryOf(this.req).streamed) setImmediate(record, this, closedAt);
    else record(this, closedAt);
  };
}
