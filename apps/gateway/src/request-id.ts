import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

const CLIENT_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Keeps a caller's `x-request-id` when it is a sane token, so traces join up; else a UUID.
 * The id is also left on the raw request, where pino-http picks it up for every log line.
 */
export function requestIdFor(request: IncomingMessage): string {
  const given = request.headers['x-request-id'];
  const id = typeof given === 'string' && CLIENT_REQUEST_ID.test(given) ? given : randomUUID();
  (request as IncomingMessage & { id?: string }).id = id;
  return id;
}
