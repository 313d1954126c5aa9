import { HttpStatus } from '@nestjs/common';
import { BucketStoreUnavailableError } from '@tokenguard/bucket-store';
import { type ErrorTranslator, OpenAIException } from '@tokenguard/common';

/** A store outage under STORE_FAILURE_MODE=closed (or an admin call during one) is a 503. */
export const translateStoreErrors: ErrorTranslator = (error) =>
  error instanceof BucketStoreUnavailableError
    ? new OpenAIException(HttpStatus.SERVICE_UNAVAILABLE, {
        message:
          'The budget store is unavailable, so the gateway cannot check or change budgets. ' +
          'Retry shortly.',
        type: 'server_error',
        code: 'store_unavailable',
        headers: { 'retry-after': '1' },
      })
    : undefined;
