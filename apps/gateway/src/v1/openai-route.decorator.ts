import { applyDecorators, type Type } from '@nestjs/common';
import {
  ApiBadGatewayResponse,
  ApiBadRequestResponse,
  ApiBody,
  ApiGatewayTimeoutResponse,
  ApiHeader,
  ApiOkResponse,
  ApiOperation,
  ApiServiceUnavailableResponse,
  ApiTooManyRequestsResponse,
} from '@nestjs/swagger';
import { OpenAIErrorResponse } from '../openapi/openai-error.response';

const IDENTITY = '1-128 characters from A-Z a-z 0-9 . _ @ + -';

/** Documents a charged OpenAI endpoint: identity headers, body, and every error answer. */
export function OpenAIRoute(summary: string, body: Type, description: string) {
  return applyDecorators(
    ApiOperation({ summary, description }),
    ApiBody({ type: body }),
    ApiHeader({
      name: 'x-user-id',
      required: true,
      description: `The user to charge (${IDENTITY})`,
    }),
    ApiHeader({ name: 'x-team-id', required: false, description: 'The team to charge' }),
    ApiHeader({ name: 'x-llm-rolegroup', required: false, description: 'The rolegroup to charge' }),
    ApiHeader({ name: 'x-role', required: false, description: 'The role to charge' }),
    ApiOkResponse({
      description:
        "The upstream's answer, unchanged (JSON, or SSE with stream: true), with " +
        'x-ratelimit-limit-tokens, x-ratelimit-remaining-tokens and x-ratelimit-reset-tokens.',
    }),
    ApiBadRequestResponse({ description: 'Invalid body or identity', type: OpenAIErrorResponse }),
    ApiTooManyRequestsResponse({
      description:
        'A budget is short (rate_limit_exceeded, with retry-after and retry-after-ms) or the ' +
        'request can never fit (request_too_large), or the upstream said 429',
      type: OpenAIErrorResponse,
    }),
    ApiBadGatewayResponse({ description: 'The upstream failed', type: OpenAIErrorResponse }),
    ApiServiceUnavailableResponse({
      description: 'Upstream not configured, circuit open, or budget store down (closed mode)',
      type: OpenAIErrorResponse,
    }),
    ApiGatewayTimeoutResponse({ description: 'The upstream timed out', type: OpenAIErrorResponse }),
  );
}
