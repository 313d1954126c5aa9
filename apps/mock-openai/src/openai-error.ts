/** The error body the OpenAI SDKs parse. */
export interface OpenAIErrorBody {
  error: {
    message: string;
    type: string;
    param: string | null;
    code: string | null;
  };
}

/**
 * An error the mock answers with as is. Not a Nest HttpException: the request pipeline
 * writes it itself (with the rate-limit headers), and the exception filter knows it too.
 */
export class OpenAIHttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: string = defaultErrorType(status),
    readonly param: string | null = null,
    readonly code: string | null = null,
    /** Extra response headers, e.g. `retry-after` on a 429. */
    readonly headers: Record<string, string> | null = null,
  ) {
    super(message);
    this.name = 'OpenAIHttpError';
  }

  toBody(): OpenAIErrorBody {
    return {
      error: { message: this.message, type: this.type, param: this.param, code: this.code },
    };
  }
}

export function invalidRequest(
  message: string,
  param: string | null = null,
  code: string | null = null,
): OpenAIHttpError {
  return new OpenAIHttpError(400, message, 'invalid_request_error', param, code);
}

/** The `type` OpenAI uses for a status when nothing more specific is known. */
export function defaultErrorType(status: number): string {
  if (status === 429) return 'requests';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
}

/** The `code` OpenAI uses for a status when nothing more specific is known. */
export function defaultErrorCode(status: number): string | null {
  switch (status) {
    case 401:
      return 'invalid_api_key';
    case 404:
      return 'model_not_found';
    case 429:
      return 'rate_limit_exceeded';
    default:
      return null;
  }
}

/** A plausible message per status, for errors forced through the `status` knob. */
export function defaultErrorMessage(status: number): string {
  switch (status) {
    case 400:
      return 'Invalid request (forced by the mock).';
    case 401:
      return 'Incorrect API key provided (forced by the mock).';
    case 403:
      return 'You are not allowed to make this request (forced by the mock).';
    case 404:
      return 'The requested resource does not exist (forced by the mock).';
    case 429:
      return 'Rate limit reached for requests (forced by the mock). Please try again later.';
    case 503:
      return 'The engine is currently overloaded, please try again later (forced by the mock).';
    default:
      return status >= 500
        ? 'The server had an error while processing your request (forced by the mock).'
        : `Request failed with status ${status} (forced by the mock).`;
  }
}
