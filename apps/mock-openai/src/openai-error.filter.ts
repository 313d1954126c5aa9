import { ArgumentsHost, Catch, ExceptionFilter, HttpException } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { MockStateService } from './mock-state.service';
import { requestId } from './openai-ids';
import { defaultErrorType, OpenAIHttpError } from './openai-error';

/**
 * Answers errors raised outside the request pipeline (body parsing, unknown routes, the
 * `/_mock` endpoints) in OpenAI's error shape, with the same headers as any answer.
 */
@Catch()
export class OpenAIErrorFilter implements ExceptionFilter {
  constructor(private readonly state: MockStateService) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const reply = http.getResponse<FastifyReply>();
    const req = http.getRequest<FastifyRequest>();
    if (reply.sent || reply.raw.headersSent) {
      reply.raw.destroy();
      return;
    }
    const error = toOpenAIError(exception, req);
    const headers: Record<string, string> = {
      'x-request-id': requestId(),
      'openai-version': '2020-10-01',
    };
    this.state.addRateLimitHeaders(headers, this.state.behaviour);
    if (error.headers !== null) Object.assign(headers, error.headers);
    void reply
      .status(error.status)
      .headers(headers)
      .type('application/json')
      .send(JSON.stringify(error.toBody()));
  }
}

function toOpenAIError(exception: unknown, req: FastifyRequest): OpenAIHttpError {
  if (exception instanceof OpenAIHttpError) return exception;
  if (exception instanceof HttpException) {
    const status = exception.getStatus();
    // Nest's not-found handler is the only source of a 404 here: an unknown route.
    const message = status === 404 ? `Invalid URL (${req.method} ${req.url})` : exception.message;
    return new OpenAIHttpError(status, message, defaultErrorType(status));
  }
  const status = (exception as { statusCode?: unknown } | null)?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 600) {
    return new OpenAIHttpError(status, (exception as Error).message, defaultErrorType(status));
  }
  return new OpenAIHttpError(500, 'The mock failed unexpectedly.', 'server_error');
}
