import { HttpException, HttpStatus } from '@nestjs/common';

/** The error body every OpenAI SDK parses. */
export interface OpenAIErrorBody {
  error: {
    message: string;
    type: string;
    code: string | null;
    param: string | null;
  };
}

export interface OpenAIErrorInit {
  readonly message: string;
  readonly type?: string;
  readonly code?: string | null;
  readonly param?: string | null;
  /** Extra response headers, e.g. `retry-after`. */
  readonly headers?: Readonly<Record<string, string>>;
}

const DEFAULT_TYPE_BY_STATUS: Readonly<Record<number, string>> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  409: 'conflict_error',
  413: 'invalid_request_error',
  415: 'invalid_request_error',
  422: 'invalid_request_error',
  429: 'rate_limit_error',
};

export function defaultErrorType(status: number): string {
  return (
    DEFAULT_TYPE_BY_STATUS[status] ?? (status >= 500 ? 'server_error' : 'invalid_request_error')
  );
}

export function openAIErrorBody(status: number, init: OpenAIErrorInit): OpenAIErrorBody {
  return {
    error: {
      message: init.message,
      type: init.type ?? defaultErrorType(status),
      code: init.code ?? null,
      param: init.param ?? null,
    },
  };
}

/** An HTTP error that is already in the OpenAI shape; the exception filter sends it as is. */
export class OpenAIException extends HttpException {
  readonly headers: Readonly<Record<string, string>>;

  constructor(status: number, init: OpenAIErrorInit) {
    super(openAIErrorBody(status, init), status);
    this.headers = init.headers ?? {};
  }

  get body(): OpenAIErrorBody {
    return this.getResponse() as OpenAIErrorBody;
  }

  static badRequest(message: string, param: string | null = null, code: string | null = null) {
    return new OpenAIException(HttpStatus.BAD_REQUEST, { message, param, code });
  }
}
