import { PassThrough } from 'node:stream';
import { BrokenCircuitError, TaskCancelledError } from 'cockatiel';
import { errors } from 'undici';
import { OpenAIException, RequestTelemetry } from '@tokenguard/common';
import { NoopGatewayMetrics } from '@tokenguard/metrics';
import { SseRelay } from './sse-relay';
import { UpstreamServerError, UpstreamTimeoutError, upstreamErrorKind } from './upstream-errors';
import { UpstreamStreamMonitor } from './upstream-stream-monitor';

function relayed() {
  const metrics = new NoopGatewayMetrics();
  const spies = {
    opened: jest.spyOn(metrics, 'streamOpened'),
    closed: jest.spyOn(metrics, 'streamClosed'),
    completed: jest.spyOn(metrics, 'upstreamCompleted'),
    failed: jest.spyOn(metrics, 'upstreamFailed'),
  };
  const telemetry = Object.assign(new RequestTelemetry(), { route: 'responses' as const });
  const upstream = new PassThrough();
  const monitor = new UpstreamStreamMonitor(metrics, telemetry, performance.now() - 25);
  const relay = new SseRelay(upstream, { kind: 'chat', hideUsageChunk: false, monitor });
  relay.resume();
  return { upstream, relay, telemetry, spies };
}

const ended = (relay: SseRelay) => new Promise((resolve) => relay.onceEnded(resolve));

describe('UpstreamStreamMonitor with an SseRelay', () => {
  it('is in flight while relayed and records the whole upstream time at the end', async () => {
    const { upstream, relay, telemetry, spies } = relayed();
    expect(spies.opened).toHaveBeenCalledWith('responses');
    upstream.end('data: {"choices":[]}\n\n');
    await expect(ended(relay)).resolves.toBe('complete');
    expect(spies.closed).toHaveBeenCalledTimes(1);
    expect(spies.completed).toHaveBeenCalledWith('responses', expect.any(Number));
    expect(telemetry.upstreamMs).toBeGreaterThanOrEqual(25);
    expect(spies.failed).not.toHaveBeenCalled();
    expect(telemetry.upstreamError).toBeUndefined();
  });

  it.each([
    ['an idle upstream', new errors.BodyTimeoutError(), 'stream_idle'],
    ['a broken upstream', new Error('socket hang up'), 'stream_error'],
  ])('names the failure of %s', async (_name, error, kind) => {
    const { upstream, relay, telemetry, spies } = relayed();
    upstream.destroy(error);
    await expect(ended(relay)).resolves.toBe('upstream_error');
    expect(spies.failed).toHaveBeenCalledWith(kind);
    expect(telemetry.upstreamError).toBe(kind);
    expect(spies.closed).toHaveBeenCalledTimes(1);
  });

  it('counts a client that leaves as no upstream failure', async () => {
    const { relay, spies } = relayed();
    relay.destroy();
    await expect(ended(relay)).resolves.toBe('client_gone');
    expect(spies.closed).toHaveBeenCalledTimes(1);
    expect(spies.failed).not.toHaveBeenCalled();
  });
});

describe('upstreamErrorKind', () => {
  it.each([
    [new UpstreamServerError(503, undefined), 'server_error'],
    [new BrokenCircuitError(), 'circuit_open'],
    [new UpstreamTimeoutError(), 'timeout'],
    [new TaskCancelledError(), 'timeout'],
    [new errors.HeadersTimeoutError(), 'timeout'],
    [new errors.ConnectTimeoutError(), 'timeout'],
    [new errors.SocketError('other side closed'), 'connection'],
    [new Error('ECONNREFUSED'), 'connection'],
  ])('classifies %p as %s', (error, kind) => {
    expect(upstreamErrorKind(error)).toBe(kind);
  });

  it('does not count the gateway refusing to call (no upstream configured)', () => {
    expect(upstreamErrorKind(OpenAIException.badRequest('no'))).toBeUndefined();
  });
});
