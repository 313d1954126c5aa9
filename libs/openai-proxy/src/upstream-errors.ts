import { HttpStatus } from '@nestjs/common';
import { errors } from 'undici';
import { OpenAIException } from '@tokenguard/common';

export function upstreamNotConfigured(): OpenAIException {
  return new OpenAIException(HttpStatus.SERVICE_UNAVAILABLE, {
    message:
      'The gateway has no upstream configured: set OPENAI_API_KEY (and OPENAI_BASE_URL) on the gateway.',
    type: 'server_error',
    code: 'upstream_not_configured',
  });
}

/** Maps a failure to reach or read the upstream to 504 (timeouts) or 502 (everything else). */
export function upstreamFailure(error: unknown): OpenAIException {
  if (
    error instanceof errors.HeadersTimeoutError ||
    error instanceof errors.BodyTimeoutError ||
    error instanceof errors.ConnectTimeoutError
  ) {
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

/** An upstream 5xx: the client gets a 502 that names the provider's status, not its internals. */
export function upstreamServerError(status: number, upstreamMessage?: string): OpenAIException {
  const detail = upstreamMessage ? `: ${upstreamMessage.slice(0, 300)}` : '.';
  return new OpenAIException(HttpStatus.BAD_GATEWAY, {
    message: `The upstream provider failed with HTTP ${status}${detail}`,
    type: 'server_error',
    code: 'upstream_error',
  });
}
