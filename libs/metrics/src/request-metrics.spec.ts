import { RequestTelemetry, type RouteLabel } from '@tokenguard/common';
import { finalOutcome } from './request-metrics';

function telemetry(route: RouteLabel, outcome: string | undefined): RequestTelemetry {
  return Object.assign(new RequestTelemetry(), { route, outcome });
}

describe('finalOutcome', () => {
  it('keeps what the limiter decided', () => {
    expect(finalOutcome(telemetry('chat.completions', 'admitted'), 200)).toBe('admitted');
    expect(finalOutcome(telemetry('chat.completions', 'rejected'), 429)).toBe('rejected');
    expect(finalOutcome(telemetry('embeddings', 'degraded_local'), 200)).toBe('degraded_local');
    expect(finalOutcome(telemetry('responses', 'invalid'), 400)).toBe('invalid');
  });

  it('turns an admitted (or unvalidated) charged request that ended in a 5xx into an error', () => {
    expect(finalOutcome(telemetry('chat.completions', 'admitted'), 502)).toBe('error');
    expect(finalOutcome(telemetry('chat.completions', 'degraded_open'), 500)).toBe('error');
    expect(finalOutcome(telemetry('chat.completions', 'invalid'), 500)).toBe('error');
  });

  it('keeps refusals and routes that charge nothing as they are, whatever the status', () => {
    // STORE_FAILURE_MODE=closed refuses with a 503: still a refusal.
    expect(finalOutcome(telemetry('chat.completions', 'rejected'), 503)).toBe('rejected');
    expect(finalOutcome(telemetry('models', 'unlimited'), 502)).toBe('unlimited');
  });

  it('derives an outcome when nobody set one', () => {
    expect(finalOutcome(telemetry('completions', undefined), 413)).toBe('invalid');
    expect(finalOutcome(telemetry('admin', undefined), 200)).toBe('unlimited');
    expect(finalOutcome(telemetry('other', undefined), 500)).toBe('error');
  });
});
