import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * The request id of the request being served, for every log line written while serving it
 * (a pino mixin reads it). One AsyncLocalStorage entry per request replaces pino-http's
 * per-request child logger, which cost more than the rest of the logging together.
 */
export const requestContext = new AsyncLocalStorage<{ readonly requestId: string }>();

export function requestIdMixin(): { requestId?: string } {
  const store = requestContext.getStore();
  return store ? { requestId: store.requestId } : {};
}
