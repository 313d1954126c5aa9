import { randomBytes } from 'node:crypto';

// One random prefix per process plus a counter: unique enough for a mock and far cheaper
// than random bytes per id on the hot path.
const PROCESS_TAG = randomBytes(8).toString('hex');
let counter = 0;

function nextSuffix(): string {
  counter = (counter + 1) % Number.MAX_SAFE_INTEGER;
  return counter.toString(16).padStart(16, '0');
}

/** `chatcmpl-…`, `cmpl-…`: the id forms OpenAI uses for completions. */
export function completionId(prefix: 'chatcmpl-' | 'cmpl-'): string {
  return prefix + PROCESS_TAG.slice(0, 12) + nextSuffix();
}

/** `resp_…` (a response), `msg_…` (an output message item): the Responses API's id forms. */
export function responsesId(prefix: 'resp_' | 'msg_'): string {
  return prefix + PROCESS_TAG + nextSuffix();
}

/** `req_` + 32 hex digits, like OpenAI's `x-request-id`. */
export function requestId(): string {
  return 'req_' + PROCESS_TAG + nextSuffix();
}

/** A fixed fingerprint: the mock's "backend configuration" never changes. */
export const SYSTEM_FINGERPRINT = 'fp_m0c40pena1';

export function unixSeconds(): number {
  return Math.floor(Date.now() / 1000);
}
