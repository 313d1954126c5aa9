import { HttpStatus } from '@nestjs/common';
import { isBrokenCircuitError, isTaskCancelledError, TaskCancelledError } from 'cockatiel';
import { errors } from 'undici';
import { OpenAIException } from '@tokenguard/common';
import type { UpstreamErrorKind } from '@tokenguard/metrics';

/** An upstream 5xx, thrown inside the breaker so that it counts as a failure. */
export class UpstreamServerError extends Error {
  override readonly name = 'UpstreamServerError';

  constructor(
    readonly status: number,
    readonly upstreamMessage: string | undefined,
  ) {
    super(`upstream answered ${status}`);
  }
}

/** The response headers did not arrive before UPSTREAM_TIMEOUT_MS. */
export class UpstreamTimeoutError extends Error {
  override readonly name = 'UpstreamTimeoutError';

  constructor() {
    super('upstream response headers timed out');
  }
}

/** What the circuit breaker counts: the provider failing, never the caller's own mistakes. */
export function isUpstreamFault(error: unknown): boolean {
  return !(error instanceof OpenAIException);
}

/** Whether an error is one of the upstream timeouts (headers deadline, connect, body). */
function isTimeout(error: unknown): boolean {
  return (
    error instanceof UpstreamTimeoutError ||
    // cockatiel 3.2's isTaskCancelledError tests for the wrong marker property.
    error instanceof TaskCancelledError ||
    isTaskCancelledError(error) ||
    error instanceof errors.HeadersTimeoutError ||
    error instanceof errors.BodyTimeoutError ||
    error instanceof errors.ConnectTimeoutError
  );
}

/**
 * The metric kind of a failed upstream call, before it is mapped to an answer; undefined for
 * the gateway's own refusals (no upstream configured), which are no upstream failure.
 */
export function upstreamErrorKind(error: unknown): UpstreamErrorKind | undefined {
  if (error instanceof OpenAIException) return undefined;
  if (error instanceof UpstreamServerError) return 'server_error';
  if (isBrokenCircuitError(error)) return 'circuit_open';
  return isTimeout(error) ? 'timeout' : 'connection';
}

export function upstreamNotConfigured(): OpenAIException {
  return new OpenAIException(HttpStatus.SERVICE_UNAVAILABLE, {
    message:
      'The gateway has no upstream configured: set OPENAI_API_KEY (and OPENAI_BASE_URL) on the gateway.',
    type: 'server_error',
    code: 'upstream_not_configured',
  });
}

/**
 * Maps a failed upstream call to the OpenAI error shape: 503 while the circuit is open,
 * 504 for timeouts, 502 for an upstream 5xx or a connection failure.
 */
/** The provider answered 401 to the server's own key (OPENAI_API_KEY): a 502, body withheld. */
export function upstreamKeyRejected(): OpenAIException {
  return new OpenAIException(HttpStatus.BAD_GATEWAY, {
    message: "The upstream provider rejected the gateway's API key; an operator must fix it.",
    type: 'server_error',
    code: 'upstream_auth_failed',
  });
}

export function upstreamFailure(error: unknown): OpenAIException {
  if (error instanceof OpenAIException) return error;
  if (error instanceof UpstreamServerError) {
    const detail = error.upstreamMessage ? `: ${error.upstreamMessage.slice(0, 300)}` : '.';
    return new OpenAIException(HttpStatus.BAD_GATEWAY, {
      message: `The upstream provider failed with HTTP ${error.status}${detail}`,
      type: 'server_error',
      code: 'upstream_error',
    });
  }
  if (isBrokenCircuitError(error)) {
    return new OpenAIException(HttpStatus.SERVICE_UNAVAILABLE, {
      message:
        'The upstream provider is failing; the gateway stops sending it requests for a while. ' +
        'Retry later.',
      type: 'server_error',
      code: 'upstream_unavailable',
    });
  }
  if (isTimeout(error)) {
    return new OpenAIException(HttpStatus.GATEWAY_TIMEOUT, {
      message: 'The upstream provider did not answer in time.',
      type: 'server_error',
      code: 'upstream_timeout',
    });
  }
  return new OpenAIException(HttpStatus.BAD_GATEWAY, {
    message: 'The upstream provider could not be reached.',
    type: 'server_error',
    code: 'upstream_unavailable',
  });
}
