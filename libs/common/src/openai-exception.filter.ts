import {
  type ArgumentsHost,
  Catch,
  type ExceptionFilter,
  HttpException,
  HttpStatus,
  Logger,
} from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { type OpenAIErrorBody, OpenAIException, openAIErrorBody } from './openai-error';

export type ErrorTranslator = (error: unknown) => OpenAIException | undefined;

/** Codes for the errors Fastify raises before a handler runs (Nest maps them to HttpException). */
const CODE_BY_STATUS: Readonly<Record<number, string>> = {
  404: 'not_found',
  413: 'request_body_too_large',
  415: 'unsupported_media_type',
};

/**
 * Turns every error, from any layer, into `{ error: { message, type, code, param } }`.
 * Unknown errors become a generic 500: their messages may carry internals, so they are
 * logged, never sent.
 */
@Catch()
export class OpenAIExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('Errors');

  /**
   * @param translators turn other libraries' domain errors (a store outage, say) into
   * OpenAIExceptions; the first that returns one wins.
   */
  constructor(
    private readonly translators: readonly ErrorTranslator[] = [],
    /** Told about errors nobody anticipated (the ones answered with a generic 500). */
    private readonly onUnexpected?: (error: unknown, requestId: string | undefined) => void,
  ) {}

  catch(thrown: unknown, host: ArgumentsHost): void {
    const exception = this.translate(thrown);
    const http = host.switchToHttp();
    const reply = http.getResponse<FastifyReply>();
    const request = http.getRequest<FastifyRequest>();
    const { status, body, headers } = this.toOpenAIError(exception);

    if (!(exception instanceof HttpException)) {
      this.onUnexpected?.(exception, String(request.id));
      this.logger.error({
        msg: `${request.method} ${request.url} failed: ${String(exception)}`,
        requestId: request.id,
        stack: exception instanceof Error ? exception.stack : undefined,
      });
    } else if (status >= 500) {
      // Deliberate answers (upstream down, store down): one line, no stack.
      this.logger.warn({
        msg: `${request.method} ${request.url} → ${status} ${body.error.code ?? ''}`,
        requestId: request.id,
      });
    }
    // A stream that already sent bytes cannot take an error body any more.
    if (reply.sent || reply.raw.headersSent) {
      reply.raw.destroy();
      return;
    }
    void reply.status(status).headers(headers).type('application/json').send(body);
  }

  private translate(exception: unknown): unknown {
    for (const translator of this.translators) {
      const translated = translator(exception);
      if (translated) return translated;
    }
    return exception;
  }

  private toOpenAIError(exception: unknown): {
    status: number;
    body: OpenAIErrorBody;
    headers: Record<string, string>;
  } {
    if (exception instanceof OpenAIException) {
      return {
        status: exception.getStatus(),
        body: exception.body,
        headers: { ...exception.headers },
      };
    }
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      return {
        status,
        body: openAIErrorBody(status, {
          message: describeHttpException(exception),
          code: CODE_BY_STATUS[status] ?? null,
        }),
        headers: {},
      };
    }
    return {
      status: HttpStatus.INTERNAL_SERVER_ERROR,
      body: openAIErrorBody(500, {
        message: 'The gateway hit an internal error.',
        code: 'internal_error',
      }),
      headers: {},
    };
  }
}

function describeHttpException(exception: HttpException): string {
  const response = exception.getResponse();
  if (typeof response === 'string') return response;
  const message = (response as { message?: unknown }).message;
  if (Array.isArray(message)) return message.join('; ');
  if (typeof message === 'string') return message;
  return exception.message;
}
