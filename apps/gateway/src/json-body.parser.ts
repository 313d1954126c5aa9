import { OpenAIException } from '@tokenguard/common';

/**
 * Deeper than any OpenAI request needs (tool and response-format schemas included), and far
 * below what recursive code downstream (class-transformer, class-validator, the estimator)
 * survives: a 10 000-deep body used to overflow the stack there and answer 500.
 */
export const MAX_JSON_DEPTH = 64;

/**
 * Bodies outside /v1 (the admin API) are a handful of fields. Bounded well below BODY_LIMIT,
 * since Nest's ValidationPipe visits every value of a body before validating it.
 */
export const ADMIN_BODY_LIMIT = 16 * 1024;

/** `openai`: a /v1 body, forwarded upstream, with free-form parts; `admin`: anything else. */
export type BodyKind = 'openai' | 'admin';

export const bodyKindOf = (url: string): BodyKind => (url.startsWith('/v1/') ? 'openai' : 'admin');

/**
 * Admin bodies are flat DTOs with no free-form part, and Nest's ValidationPipe deletes these
 * keys at every level before validating: refused instead, like any other field a DTO does not
 * know. In /v1 bodies `constructor` and `prototype` alone are data (a tool's JSON schema may
 * have properties so named); toDtoInstance refuses `constructor` where the body becomes a DTO.
 */
const ADMIN_RESERVED_KEYS = new Set(['constructor', 'prototype']);

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** 413 for an admin body over ADMIN_BODY_LIMIT; OpenAI routes take up to BODY_LIMIT. */
export function checkBodySize(url: string, bytes: number): void {
  if (bodyKindOf(url) === 'openai' || bytes <= ADMIN_BODY_LIMIT) return;
  throw new OpenAIException(413, {
    message: `The request body is too large: this route takes at most ${ADMIN_BODY_LIMIT} bytes.`,
    code: 'request_body_too_large',
  });
}

/**
 * The body as text, refusing bytes that are not UTF-8 (JSON must be, RFC 8259): replacing
 * them would estimate one text and forward another, the raw bytes.
 */
export function decodeJsonText(body: Buffer): string {
  try {
    return utf8.decode(body);
  } catch {
    throw OpenAIException.badRequest('The request body is not valid UTF-8.', null, 'invalid_json');
  }
}

/**
 * Refuses a parsed body nested deeper than MAX_JSON_DEPTH or holding, at any level, a
 * prototype-pollution path: a `__proto__` key, or a `constructor` key holding a `prototype`
 * key (what a naive deep merge follows to `Object.prototype`). Fastify's parser refuses both
 * already; checked again so that no parser option lets them by. Admin bodies may not use
 * `constructor` or `prototype` at all (see ADMIN_RESERVED_KEYS). Recursive, but never deeper
 * than MAX_JSON_DEPTH frames: it stops there.
 */
export function checkJsonBody(value: unknown, kind: BodyKind): void {
  if (value !== null && typeof value === 'object') checkNode(value, 1, kind === 'admin');
}

function checkNode(node: object, depth: number, admin: boolean): void {
  if (depth > MAX_JSON_DEPTH) {
    throw OpenAIException.badRequest(
      `The request body is nested more than ${MAX_JSON_DEPTH} levels deep.`,
      null,
      'nesting_too_deep',
    );
  }
  if (Array.isArray(node)) {
    for (let i = 0; i < node.length; i++) {
      const item: unknown = node[i];
      if (item !== null && typeof item === 'object') checkNode(item, depth + 1, admin);
    }
    return;
  }
  // for...in rather than Object.keys(): no array per object (a body may hold millions).
  for (const key in node) {
    const child = (node as Record<string, unknown>)[key];
    if (
      key === '__proto__' ||
      (key === 'constructor' && holdsPrototypeKey(child)) ||
      (admin && ADMIN_RESERVED_KEYS.has(key))
    ) {
      throw OpenAIException.badRequest(
        `The request body may not use the key "${key}" here.`,
        null,
        'reserved_key',
      );
    }
    if (child !== null && typeof child === 'object') checkNode(child, depth + 1, admin);
  }
}

function holdsPrototypeKey(value: unknown): boolean {
  return value !== null && typeof value === 'object' && Object.hasOwn(value, 'prototype');
}
