import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import request from 'supertest';
import {
  BUCKET_STORE,
  type BucketStore,
  GLOBAL_SCOPE_ID,
  type ScopeRef,
} from '@tokenguard/bucket-store';
import { API_KEY_ID_PATTERN } from '@tokenguard/auth';
import { countChatPromptTokens } from '@tokenguard/estimator';
import { IDENTITY_PATTERN, SettlementService } from '@tokenguard/limiter';
import { chatBody, type Harness, startHarness } from './support/gateway-harness';
import { deltaOf } from './support/metrics';
import { type RawRequest, type RawResponse, rawRequest } from './support/raw-http';

/**
 * Every documented route against hostile input: malformed and random JSON, deep nesting, huge
 * arrays and strings, invalid UTF-8, numbers out of range, `__proto__` / `constructor` /
 * `prototype` keys, duplicate and oversize headers, odd identities and path parameters. For
 * each answer: never a 5xx, always an OpenAI-shaped error unless the input was valid, and a
 * refused request changes no bucket, calls no upstream and leaves no reservation open.
 */

const ADMIN_TOKEN = 'hostile-admin-token-0123456789abcdef';
const BODY_LIMIT = 1024 * 1024;
const MAX_HEADER_SIZE = 16 * 1024;
/** Ids that valid admin calls may change; no watched bucket. */
const TARGET = 'hostile-target';

const VICTIM = {
  'x-user-id': 'victim',
  'x-team-id': 'victim-team',
  'x-llm-rolegroup': 'victim-rg',
  'x-role': 'victim-role',
} as const;
const IDENTITY_HEADERS = Object.keys(VICTIM) as Array<keyof typeof VICTIM>;
const WATCHED: readonly ScopeRef[] = [
  { type: 'global', id: GLOBAL_SCOPE_ID },
  { type: 'team', id: VICTIM['x-team-id'] },
  { type: 'rolegroup', id: VICTIM['x-llm-rolegroup'] },
  { type: 'role', id: VICTIM['x-role'] },
  { type: 'user', id: VICTIM['x-user-id'] },
];

const MODEL_ID = /^(?!\.{1,2}$)[A-Za-z0-9._:-]{1,256}$/;
const SCOPES = ['team', 'rolegroup', 'role', 'user'];

type Audience = 'client' | 'admin' | 'public';

interface NumberRule {
  readonly min: number;
  readonly max?: number;
  readonly int: boolean;
  /** `null` is accepted (the field is optional). */
  readonly nullable: boolean;
}

interface RouteCase {
  readonly audience: Audience;
  /** Valid values of the path parameters, by name. */
  readonly params?: Readonly<Record<string, string>>;
  /** Whether a path parameter's value is valid (404 or 2xx, not 400, may follow). */
  readonly validParam?: (name: string, value: string) => boolean;
  readonly query?: string;
  /** A valid body, for routes that read one. */
  readonly body?: Readonly<Record<string, unknown>>;
  /** Body fields the gateway checks as numbers. */
  readonly numbers?: Readonly<Record<string, NumberRule>>;
  /** Charged: a refused request must not reach the upstream. */
  readonly charged?: boolean;
}

const positive = (max?: number): NumberRule => ({ min: 1, max, int: true, nullable: true });
const amount: NumberRule = { min: 0, max: 1e15, int: false, nullable: false };
const ttl: NumberRule = { min: 0, max: 10 * 365 * 24 * 3600, int: true, nullable: false };
const scopeAndId = (name: string, value: string) =>
  name === 'scope' ? SCOPES.includes(value) : IDENTITY_PATTERN.test(value);
/** GET /buckets/{scope}/{id} also reads the learned provider buckets, by model name. */
const UPSTREAM_SCOPES = ['upstream', 'upstream_requests'];
const bucketParam = (name: string, value: string) =>
  scopeAndId(name, value) ||
  (name === 'scope' && UPSTREAM_SCOPES.includes(value)) ||
  (name === 'id' && /^[\x21-\x7e]{1,256}$/.test(value));
const keyId = (_name: string, value: string) => API_KEY_ID_PATTERN.test(value);

/** Keyed like the OpenAPI document's operations: `METHOD /path/{param}`. */
function routeCases(keyIdValue: string): Record<string, RouteCase> {
  const key = { params: { id: keyIdValue }, validParam: keyId };
  const scoped = { params: { scope: 'user', id: TARGET }, validParam: scopeAndId };
  return {
    'GET /': { audience: 'public' },
    'GET /health/live': { audience: 'public' },
    'GET /health/ready': { audience: 'public' },
    'GET /metrics': { audience: 'public' },
    'POST /v1/chat/completions': {
      audience: 'client',
      charged: true,
      body: chatBody({ max_tokens: 5 }),
      numbers: { max_tokens: positive(), max_completion_tokens: positive(), n: positive(128) },
    },
    'POST /v1/completions': {
      audience: 'client',
      charged: true,
      body: { model: 'gpt-3.5-turbo-instruct', prompt: 'Say hi', max_tokens: 5 },
      numbers: {
        max_tokens: { min: 0, int: true, nullable: true },
        n: positive(128),
        best_of: positive(128),
      },
    },
    'POST /v1/embeddings': {
      audience: 'client',
      charged: true,
      body: { model: 'text-embedding-3-small', input: 'Say hi' },
      numbers: { dimensions: positive() },
    },
    'POST /v1/responses': {
      audience: 'client',
      charged: true,
      body: { model: 'gpt-4o-mini', input: 'Say hi', max_output_tokens: 16 },
      numbers: { max_output_tokens: positive() },
    },
    'GET /v1/models': { audience: 'client' },
    'GET /v1/models/{id}': {
      audience: 'client',
      params: { id: 'gpt-4o-mini' },
      validParam: (_name, value) => MODEL_ID.test(value),
    },
    'POST /config/budget': {
      audience: 'admin',
      body: { scope: 'user', id: TARGET, capacity: 500, refillPerSec: 1 },
      numbers: { capacity: amount, refillPerSec: { ...amount, nullable: false } },
    },
    'POST /config/refill-rate': {
      audience: 'admin',
      body: { userId: TARGET, refillPerSec: 1 },
      numbers: { refillPerSec: amount },
    },
    'GET /config/budgets': { audience: 'admin', query: 'scope=user&limit=10' },
    'GET /config/budgets/global': { audience: 'admin' },
    'DELETE /config/budgets/global': { audience: 'admin' },
    'GET /config/budgets/{scope}/{id}': { audience: 'admin', ...scoped },
    'DELETE /config/budgets/{scope}/{id}': { audience: 'admin', ...scoped },
    'GET /buckets/global': { audience: 'admin' },
    'GET /buckets/{scope}/{id}': { audience: 'admin', ...scoped, validParam: bucketParam },
    'POST /buckets/global/reset': { audience: 'admin' },
    'POST /buckets/{scope}/{id}/reset': { audience: 'admin', ...scoped },
    'GET /sync/openai-limits': { audience: 'admin' },
    'POST /keys': {
      audience: 'admin',
      body: { user: TARGET, name: 'hostile' },
      numbers: { ttlSeconds: ttl },
    },
    'GET /keys': { audience: 'admin', query: 'limit=5' },
    'GET /keys/{id}': { audience: 'admin', ...key },
    'POST /keys/{id}/revoke': { audience: 'admin', ...key },
    'POST /keys/{id}/expire': {
      audience: 'admin',
      ...key,
      body: { ttlSeconds: 3600 },
      numbers: { ttlSeconds: ttl },
    },
  };
}

interface Variant {
  /** Replaces path parameters (already percent-encoded as they should be sent). */
  readonly params?: Readonly<Record<string, string>>;
  readonly query?: string;
  /** Raw body bytes; a JSON content type is sent unless `headers` says otherwise. */
  readonly body?: Buffer | string;
  /** Replace the route's own headers with these... */
  readonly headers?: ReadonlyArray<readonly [string, string]>;
  /** ...or add these to them. */
  readonly extraHeaders?: ReadonlyArray<readonly [string, string]>;
  /** Leave out these of the route's own headers (lower case). */
  readonly without?: readonly string[];
}

/** An own enumerable property even for `__proto__`, so that JSON.stringify writes it. */
function withOwn(target: object, key: string, value: unknown): object {
  Object.defineProperty(target, key, {
    value,
    enumerable: true,
    writable: true,
    configurable: true,
  });
  return target;
}

const PROTO_KEYS = ['__proto__', 'constructor', 'prototype'] as const;

/** `{"__proto__": {"polluted": true}}` and its relatives, as JSON text. */
const protoPayloads = (): string[] =>
  PROTO_KEYS.flatMap((key) => [
    JSON.stringify(withOwn({}, key, { polluted: true })),
    JSON.stringify(withOwn({}, key, withOwn({}, 'prototype', { polluted: true }))),
  ]);

/**
 * Always refused: `__proto__` anywhere, `constructor` holding `prototype` anywhere, and
 * `constructor` on the body itself (a DTO: its validation would be switched off). Otherwise
 * the two are data, so a client body may pass (an unknown field is forwarded); an admin body
 * refuses fields it does not know.
 */
function protoKeyMayPass(
  spec: RouteCase,
  path: readonly string[],
  key: (typeof PROTO_KEYS)[number],
  holdsPrototype: boolean,
): boolean {
  if (key === '__proto__' || spec.audience !== 'client') return false;
  if (key === 'constructor') return !holdsPrototype && path.length > 0;
  return true;
}

function deepArray(depth: number): string {
  return '['.repeat(depth) + ']'.repeat(depth);
}

function deepObject(depth: number): string {
  return '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
}

/** Replaces the JSON text of one top-level field of `body` with `raw`. */
function withRawField(body: Readonly<Record<string, unknown>>, field: string, raw: string): string {
  const marker = '"__hostile_marker__"';
  return JSON.stringify({ ...body, [field]: '__hostile_marker__' }).replace(marker, raw);
}

/** Sets `value` at `path` (own properties all the way, `__proto__` included). */
function injected(body: unknown, path: readonly string[], value: unknown): unknown {
  if (path.length === 0) return value;
  const [head, ...rest] = path;
  const copy: Record<string, unknown> = { ...(body as object) };
  const child = Object.prototype.hasOwnProperty.call(copy, head) ? copy[head] : {};
  const next = child !== null && typeof child === 'object' ? child : {};
  withOwn(copy, head, injected(next, rest, value));
  return Array.isArray(body) ? Object.values(copy) : copy;
}

const INVALID_UTF8: readonly Buffer[] = [
  Buffer.from([0xff]),
  Buffer.from([0xc0, 0x80]),
  Buffer.from([0xed, 0xa0, 0x80]),
  Buffer.from([0xe2, 0x82]),
  Buffer.from([0xf8, 0x88, 0x80, 0x80, 0x80]),
];

/** A body whose `content` string holds raw bytes that are not UTF-8. */
function withBytes(body: Readonly<Record<string, unknown>>, bytes: Buffer): Buffer {
  const [before, after] = JSON.stringify(body).split('Say');
  if (after === undefined) {
    // No `Say` in the sample: put the bytes in a field of their own.
    const text = JSON.stringify({ ...body, hostile: '@@' });
    const at = text.indexOf('@@');
    return Buffer.concat([Buffer.from(text.slice(0, at)), bytes, Buffer.from(text.slice(at + 2))]);
  }
  return Buffer.concat([Buffer.from(before), bytes, Buffer.from(after)]);
}

const MALFORMED_JSON = [
  '',
  ' ',
  '{',
  '}',
  '{"a":',
  '[1,2',
  'nul',
  '{"a":1}}',
  "{'a':1}",
  '{"a":01}',
  '{"a":NaN}',
  '{"a":Infinity}',
  '{"a":-Infinity}',
  '{"a":1,}',
  '{"a" 1}',
  '{"a":"\u0000"}',
  '\u0000',
  '"a string"',
  '123',
  '-0',
  '1e400',
  'null',
  'true',
  '[]',
  '[{}]',
  '{"a":"\\x41"}',
  '{"a":"\\u12"}',
  '{"a":1}{"b":2}',
  '\ufeff{}',
];

const NUMBER_TEXTS = [
  '-1',
  '0',
  '-0',
  '0.5',
  '1.5',
  '1e308',
  '-1e308',
  '1e400',
  '-1e400',
  '9007199254740993',
  '123456789012345678901234567890',
  '5e-324',
  '"NaN"',
  '"Infinity"',
  '"-0"',
  '"1e3"',
  '"12"',
  '""',
  'null',
  'true',
  '[]',
  '[1]',
  '{}',
];

/** Whether a JSON number text is acceptable under `rule` (what may legitimately pass). */
function numberAccepted(text: string, rule: NumberRule): boolean {
  if (text === 'null') return rule.nullable;
  if (!/^-?\d/.test(text)) return false;
  const value = Number(text);
  if (!Number.isFinite(value)) return false;
  if (rule.int && !Number.isInteger(value)) return false;
  return value >= rule.min && (rule.max === undefined || value <= rule.max);
}

const ODD_IDENTITIES: ReadonlyArray<readonly [string, boolean]> = [
  ['', false],
  [' ', false],
  ['x'.repeat(128), true],
  ['x'.repeat(129), false],
  ['ユーザー', false],
  ['caf\u00e9', false],
  ['a\tb', false],
  ['a,b', false],
  ['a, b', false],
  ['a:b', false],
  ['{a}', false],
  ['../a', false],
  ['%2e%2e', false],
  ['a b', false],
  ['a\u0001b', false],
  ['a\u0000b', false],
  ['a\u007fb', false],
  ['__proto__', true],
  ['constructor', true],
  ['prototype', true],
];

const ODD_PARAMS: readonly string[] = [
  '.',
  '..',
  '%2e%2e',
  '%2E',
  '%00',
  'a%00b',
  '%2F',
  'a%2Fb',
  '%5C',
  'x'.repeat(129),
  'x'.repeat(300),
  '%E0%A4%A',
  '%C0%80',
  '%FF',
  '%ED%A0%80',
  encodeURIComponent('ユーザー'),
  '__proto__',
  'constructor',
  'prototype',
  'hasOwnProperty',
  'toString',
  'a,b',
  '%20',
  '%0A',
  '%0D%0Aset-cookie:%20x',
  '%7Ba%7D',
  'a:b',
  'global',
  'upstream',
];

const ODD_QUERIES: readonly string[] = [
  '__proto__=1',
  '__proto__[polluted]=1',
  'constructor[prototype][polluted]=1',
  'limit=1e308',
  'limit=-1',
  'limit=0',
  'limit=NaN',
  'limit=1.5',
  'limit=1&limit=2',
  'limit[]=1',
  'scope=__proto__',
  'scope=global',
  'scope=',
  'cursor=%00',
  `cursor=${'x'.repeat(5000)}`,
  '%E0%A4%A=1',
  `a=${'x'.repeat(10_000)}`,
];

/** The exact error shape the OpenAI SDKs parse. */
function shapeProblem(body: Buffer): string | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return `error body is not JSON: ${body.toString('utf8').slice(0, 200)}`;
  }
  const keys = parsed && typeof parsed === 'object' ? Object.keys(parsed).sort() : [];
  if (keys.join() !== 'error') return `error body is not {error}: ${JSON.stringify(parsed)}`;
  const error = (parsed as { error: Record<string, unknown> }).error;
  const ok =
    error !== null &&
    typeof error === 'object' &&
    Object.keys(error).sort().join() === 'code,message,param,type' &&
    typeof error.message === 'string' &&
    typeof error.type === 'string' &&
    (error.code === null || typeof error.code === 'string') &&
    (error.param === null || typeof error.param === 'string');
  return ok ? undefined : `error body has the wrong shape: ${JSON.stringify(parsed)}`;
}

jest.setTimeout(60_000);

describe('hostile input on every route', () => {
  let h: Harness;
  let port: number;
  let store: BucketStore;
  let cases: Record<string, RouteCase>;
  let documented: string[];
  /** Store calls that change a budget or a bucket (reserves: admitted ones only). */
  let mutations = 0;
  let reserves = 0;

  beforeAll(async () => {
    h = await startHarness({
      ADMIN_TOKEN,
      ENFORCE_GLOBAL_SCOPE: 'true',
      BODY_LIMIT: String(BODY_LIMIT),
      MAX_HEADER_SIZE: String(MAX_HEADER_SIZE),
      ENABLE_BACKGROUND_SYNC: 'false',
    });
    port = Number(new URL(h.url).port);
    store = h.app.get<BucketStore>(BUCKET_STORE);
    spyOnMutations(store);
    const created = await request(h.url)
      .post('/keys')
      .set('authorization', `Bearer ${ADMIN_TOKEN}`)
      .send({ user: TARGET })
      .expect(201);
    cases = routeCases((created.body as { id: string }).id);
    const openapi = await request(h.url).get('/docs-json').expect(200);
    const paths = (openapi.body as { paths: Record<string, Record<string, unknown>> }).paths;
    documented = Object.entries(paths).flatMap(([path, operations]) =>
      Object.keys(operations).map((method) => `${method.toUpperCase()} ${path}`),
    );
  });
  afterAll(async () => {
    await h.close();
  });

  function spyOnMutations(target: BucketStore): void {
    const counted = target as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
    const upstream = (scope: unknown) => String((scope as ScopeRef).type).startsWith('upstream');
    for (const name of ['setPolicy', 'deletePolicy', 'resetBucket', 'lowerLevel'] as const) {
      const original = counted[name].bind(target);
      counted[name] = (...args: unknown[]) => {
        // The limit sync sizes the provider's buckets from answers: not a budget change.
        if (!upstream(args[0])) mutations += 1;
        return original(...args);
      };
    }
    const reserve = target.reserve.bind(target);
    target.reserve = async (req) => {
      const result = await reserve(req);
      if (result.admitted) reserves += 1;
      return result;
    };
  }

  const watchedLevels = async () =>
    JSON.stringify(await Promise.all(WATCHED.map((scope) => store.getBucket(scope))));

  const AUDIENCE_HEADERS: Record<Audience, ReadonlyArray<readonly [string, string]>> = {
    client: Object.entries(VICTIM),
    admin: [['Authorization', `Bearer ${ADMIN_TOKEN}`]],
    public: [],
  };

  /** The request for `route` (`METHOD /path/{param}`) with a variant's changes. */
  function build(route: string, variant: Variant = {}): RawRequest {
    const spec = cases[route];
    const [method, template] = route.split(' ');
    const params = { ...spec.params, ...variant.params };
    let path = template.replace(/\{(\w+)\}/g, (_m, name: string) => params[name] ?? '');
    const query = variant.query ?? spec.query;
    if (query) path += `?${query}`;
    const body = variant.body ?? (spec.body === undefined ? undefined : JSON.stringify(spec.body));
    const own = [
      ...AUDIENCE_HEADERS[spec.audience],
      ...(body === undefined ? [] : ([['Content-Type', 'application/json']] as const)),
    ].filter(([name]) => !variant.without?.includes(name.toLowerCase()));
    const headers = variant.headers ?? [...own, ...(variant.extraHeaders ?? [])];
    return { method, path, headers, body };
  }

  /**
   * Sends `req` and returns what is wrong with the answer (nothing: undefined). `mayPass`:
   * the input is valid, so a 2xx is fine.
   */
  async function problemWith(
    label: string,
    route: string,
    req: RawRequest,
    mayPass: boolean,
  ): Promise<string | undefined> {
    const before = { mutations, reserves, upstream: h.mock.requests.length };
    const levels = await watchedLevels();
    let res: RawResponse;
    try {
      res = await rawRequest(port, req);
    } catch (error) {
      return `${label}: ${String(error)}`;
    }
    const what = `${label}: ${req.method} ${req.path.slice(0, 120)} → ${res.status}`;
    if (res.status === 0) return `${what} (no answer)`;
    if (res.status >= 500) return `${what} ${res.body.toString('utf8').slice(0, 300)}`;
    if (res.status < 300) return mayPass ? undefined : `${what} (refusal expected)`;
    if (res.status < 400) return `${what} (a redirect)`;
    if (h.mock.requests.length !== before.upstream) {
      // The gateway took the input for valid and the upstream refused it: its answer passes
      // through unchanged (its own body) and the reservation is refunded.
      if (!mayPass) return `${what}: reached the upstream`;
    } else {
      const shape = shapeProblem(res.body);
      if (shape) return `${what}: ${shape}`;
      if (reserves !== before.reserves) return `${what}: tokens were reserved`;
    }
    if (mutations !== before.mutations) return `${what}: a budget or bucket was changed`;
    if ((await watchedLevels()) !== levels) return `${what}: a watched bucket moved`;
    return undefined;
  }

  /** Runs every request, then fails listing all the problems at once. */
  async function expectAllRefusedCleanly(
    items: ReadonlyArray<
      readonly [label: string, route: string, req: RawRequest, mayPass: boolean]
    >,
  ): Promise<void> {
    const problems: string[] = [];
    for (const [label, route, req, mayPass] of items) {
      const problem = await problemWith(label, route, req, mayPass);
      if (problem) problems.push(problem);
    }
    expect(problems).toEqual([]);
  }

  const routes = () => Object.keys(cases);
  const withBody = () => routes().filter((r) => cases[r].body !== undefined);
  const posts = () => routes().filter((r) => !r.startsWith('GET '));

  it('covers exactly the operations of the OpenAPI document', () => {
    expect([...routes()].sort()).toEqual([...documented].sort());
  });

  it('malformed JSON bodies', async () => {
    await expectAllRefusedCleanly(
      posts().flatMap((route) =>
        MALFORMED_JSON.map(
          (text) =>
            [
              `malformed ${JSON.stringify(text).slice(0, 30)}`,
              route,
              build(route, { body: text }),
              // Routes that read no body ignore it; `{}` bodies may be valid elsewhere.
              cases[route].body === undefined,
            ] as const,
        ),
      ),
    );
  });

  it('deep nesting: 10 000 levels, as the body and inside a valid body', async () => {
    const deep = [deepArray(10_000), deepObject(10_000)];
    await expectAllRefusedCleanly(
      posts().flatMap((route) => {
        const spec = cases[route];
        const whole = deep.map(
          (text, i) => [`deep body ${i}`, route, build(route, { body: text }), !spec.body] as const,
        );
        if (!spec.body) return whole;
        const inside = Object.keys(spec.body).flatMap((field) =>
          deep.map(
            (text, i) =>
              [
                `deep ${field} ${i}`,
                route,
                build(route, { body: withRawField(spec.body ?? {}, field, text) }),
                false,
              ] as const,
          ),
        );
        const extra = deep.map(
          (text, i) =>
            [
              `deep extra field ${i}`,
              route,
              build(route, { body: withRawField(spec.body ?? {}, 'metadata', text) }),
              // An unknown field is forwarded (chat, responses) or refused (admin DTOs).
              spec.audience === 'client',
            ] as const,
        );
        return [...whole, ...inside, ...extra];
      }),
    );
  });

  it('__proto__, constructor and prototype keys at every level', async () => {
    const items = withBody().flatMap((route) => {
      const body = cases[route].body ?? {};
      const paths: string[][] = [[]];
      for (const [field, value] of Object.entries(body)) {
        paths.push([field]);
        if (Array.isArray(value)) paths.push([field, '0']);
      }
      return paths.flatMap((path) =>
        PROTO_KEYS.flatMap((key) =>
          [{ polluted: true }, withOwn({}, 'prototype', { polluted: true })].map(
            (payload, i) =>
              [
                `${key} at ${path.join('.') || 'top'} (${i})`,
                route,
                build(route, {
                  body: JSON.stringify(injected(body, [...path, key], payload)),
                }),
                protoKeyMayPass(cases[route], path, key, i === 1),
              ] as const,
          ),
        ),
      );
    });
    const whole = posts().flatMap((route) =>
      protoPayloads().map(
        (text) =>
          [`proto body ${text}`, route, build(route, { body: text }), !cases[route].body] as const,
      ),
    );
    await expectAllRefusedCleanly([...items, ...whole]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('polluted');
  });

  it('invalid UTF-8 bytes in a body', async () => {
    await expectAllRefusedCleanly(
      withBody().flatMap((route) =>
        INVALID_UTF8.map(
          (bytes) =>
            [
              `bytes ${bytes.toString('hex')}`,
              route,
              build(route, { body: withBytes(cases[route].body ?? {}, bytes) }),
              false,
            ] as const,
        ),
      ),
    );
  });

  it('huge strings and arrays, up to the body limit and past it', async () => {
    const items = withBody().flatMap((route) => {
      const spec = cases[route];
      const body = spec.body ?? {};
      const overLimit = JSON.stringify({ ...body, padding: 'x'.repeat(BODY_LIMIT) });
      const bigString = (field: string) =>
        JSON.stringify({ ...body, [field]: 'x'.repeat(BODY_LIMIT - 1000) });
      const bigArray = (field: string, item: string) =>
        withRawField(
          body,
          field,
          `[${Array(Math.floor((BODY_LIMIT - 1000) / (item.length + 1)))
            .fill(item)
            .join(',')}]`,
        );
      const fields = Object.keys(body);
      return [
        ['over the body limit', route, build(route, { body: overLimit }), false] as const,
        ...fields.map(
          (f) => [`huge string ${f}`, route, build(route, { body: bigString(f) }), false] as const,
        ),
        ...fields.map(
          (f) =>
            [
              `huge number array ${f}`,
              route,
              build(route, { body: bigArray(f, '7') }),
              false,
            ] as const,
        ),
        ...fields.map(
          (f) =>
            [
              `huge string array ${f}`,
              route,
              build(route, { body: bigArray(f, '"ab"') }),
              false,
            ] as const,
        ),
        ...fields.map(
          (f) =>
            [
              `huge object array ${f}`,
              route,
              build(route, { body: bigArray(f, '{}') }),
              false,
            ] as const,
        ),
      ];
    });
    await expectAllRefusedCleanly(items);
  });

  it('numbers out of range in every numeric field', async () => {
    const items = withBody().flatMap((route) => {
      const spec = cases[route];
      return Object.entries(spec.numbers ?? {}).flatMap(([field, rule]) =>
        NUMBER_TEXTS.map(
          (text) =>
            [
              `${field}=${text}`,
              route,
              build(route, { body: withRawField(spec.body ?? {}, field, text) }),
              numberAccepted(text, rule),
            ] as const,
        ),
      );
    });
    await expectAllRefusedCleanly(items);
  });

  it('bodies that are not JSON (a charset parameter changes nothing: JSON is UTF-8)', async () => {
    const types = [
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/xml',
      'application/jsonx',
      '',
    ];
    await expectAllRefusedCleanly(
      withBody().flatMap((route) =>
        types.map(
          (type) =>
            [
              `content-type ${type || '(none)'}`,
              route,
              build(route, {
                without: ['content-type'],
                extraHeaders: type ? [['Content-Type', type]] : [],
                body: JSON.stringify(cases[route].body),
              }),
              false,
            ] as const,
        ),
      ),
    );
    await expectAllRefusedCleanly(
      withBody().map(
        (route) =>
          [
            'content-type with a charset',
            route,
            build(route, {
              without: ['content-type'],
              extraHeaders: [['Content-Type', 'application/json; charset=utf-16']],
            }),
            true,
          ] as const,
      ),
    );
  });

  it('duplicate, oversize and odd headers', async () => {
    const items = routes().flatMap((route) => {
      const spec = cases[route];
      const client = spec.audience === 'client';
      const admin = spec.audience === 'admin';
      const list: Array<readonly [string, string, RawRequest, boolean]> = [
        [
          'duplicate x-user-id',
          route,
          build(route, { extraHeaders: [['X-User-Id', 'someone-else']] }),
          !client || route.startsWith('GET /v1/models'),
        ],
        [
          'duplicate authorization (right first)',
          route,
          build(route, { extraHeaders: [['Authorization', 'Bearer wrong-token-000000000000']] }),
          true,
        ],
        [
          'duplicate authorization (wrong first)',
          route,
          build(route, {
            without: ['authorization'],
            extraHeaders: [
              ['Authorization', 'Bearer wrong-token-000000000000'],
              ['Authorization', `Bearer ${ADMIN_TOKEN}`],
            ],
          }),
          !admin,
        ],
        [
          'duplicate content-type',
          route,
          build(route, { extraHeaders: [['Content-Type', 'text/plain']] }),
          true,
        ],
        [
          'duplicate x-request-id',
          route,
          build(route, {
            extraHeaders: [
              ['X-Request-Id', 'a'],
              ['X-Request-Id', 'b'],
            ],
          }),
          true,
        ],
        [
          'one oversize header',
          route,
          build(route, { extraHeaders: [['X-Padding', 'x'.repeat(MAX_HEADER_SIZE)]] }),
          false,
        ],
        [
          'many headers',
          route,
          build(route, {
            extraHeaders: Array.from({ length: 3000 }, (_, i) => [`X-H${i}`, 'v'] as const),
          }),
          false,
        ],
        ['no admin token', route, build(route, { without: ['authorization'] }), !admin],
      ];
      for (const name of IDENTITY_HEADERS) {
        for (const [value, valid] of ODD_IDENTITIES) {
          // An empty optional identity header reads as absent.
          const passes = valid || (value.trim() === '' && name !== 'x-user-id');
          list.push([
            `${name}=${JSON.stringify(value)}`,
            route,
            build(route, { without: [name], extraHeaders: [[name, value]] }),
            !client || route.startsWith('GET /v1/models') || passes,
          ]);
        }
        list.push([
          `${name} of ${MAX_HEADER_SIZE - 2000} characters`,
          route,
          build(route, {
            without: [name],
            extraHeaders: [[name, 'x'.repeat(MAX_HEADER_SIZE - 2000)]],
          }),
          !client || route.startsWith('GET /v1/models'),
        ]);
      }
      return list;
    });
    await expectAllRefusedCleanly(items);
  });

  it('odd path parameters', async () => {
    const items = routes().flatMap((route) => {
      const spec = cases[route];
      return Object.keys(spec.params ?? {}).flatMap((name) =>
        ODD_PARAMS.map((raw) => {
          let decoded: string | undefined;
          try {
            decoded = decodeURIComponent(raw);
          } catch {
            decoded = undefined;
          }
          const valid =
            decoded !== undefined &&
            raw.length <= 256 &&
            !decoded.includes('/') &&
            (spec.validParam?.(name, decoded) ?? false);
          return [
            `${name}=${raw.slice(0, 40)}`,
            route,
            build(route, { params: { [name]: raw } }),
            valid,
          ] as const;
        }),
      );
    });
    await expectAllRefusedCleanly(items);
  });

  it('odd query strings', async () => {
    const items = routes().flatMap((route) =>
      ODD_QUERIES.map(
        (query) =>
          [
            `?${query.slice(0, 40)}`,
            route,
            build(route, { query }),
            // Only the listing routes read their query; Nest drops a `__proto__` key.
            cases[route].query === undefined ||
              query === '__proto__=1' ||
              (query === 'scope=global' && route === 'GET /config/budgets'),
          ] as const,
      ),
    );
    await expectAllRefusedCleanly(items);
  });

  describe('random input (fast-check)', () => {
    const runs = { numRuns: 150, endOnFailure: true } as const;

    async function expectClean(label: string, route: string, req: RawRequest, mayPass: boolean) {
      const problem = await problemWith(label, route, req, mayPass);
      expect(problem).toBeUndefined();
    }

    it('random JSON values as the body', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom(...withBody()),
          fc.jsonValue({ maxDepth: 4 }),
          async (route, value) => {
            await expectClean(
              'random json',
              route,
              build(route, { body: JSON.stringify(value) }),
              false,
            );
          },
        ),
        runs,
      );
    });

    it('random text as a JSON body', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom(...posts()),
          fc.string({ unit: 'binary', maxLength: 200 }),
          async (route, text) => {
            await expectClean(
              'random text',
              route,
              build(route, { body: text }),
              !cases[route].body,
            );
          },
        ),
        runs,
      );
    });

    it('hostile values injected anywhere in a valid body', async () => {
      const key = fc.constantFrom(
        ...PROTO_KEYS,
        'model',
        'messages',
        'content',
        'role',
        'input',
        'prompt',
        'max_tokens',
        'stream',
        'stream_options',
        'include_usage',
        'scope',
        'id',
        'capacity',
        'user',
        'ttlSeconds',
        '0',
        '1',
      );
      const hostile = fc.oneof(
        fc.constantFrom(-1, 0, -0, 1e308, -1e308, 2 ** 53 + 2, 0.5, null, true, '', 'NaN'),
        fc.jsonValue({ maxDepth: 3 }),
        fc.string({ unit: 'binary' }),
        fc.constant(JSON.parse(deepArray(200)) as unknown),
        fc.constant({ __x: 'x'.repeat(100_000) }),
        fc.constant(Array(20_000).fill(1) as unknown),
      );
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom(...withBody()),
          fc.array(key, { minLength: 1, maxLength: 4 }),
          hostile,
          async (route, path, value) => {
            const body = JSON.stringify(injected(cases[route].body, path, value));
            // Such a body may still be valid (an unknown field the upstream ignores).
            await expectClean(`inject ${path.join('.')}`, route, build(route, { body }), true);
          },
        ),
        runs,
      );
    });

    it('random identity header values', async () => {
      const clientRoutes = withBody().filter((r) => cases[r].audience === 'client');
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom(...clientRoutes),
          fc.constantFrom(...IDENTITY_HEADERS),
          fc.string({ unit: 'binary', maxLength: 200 }),
          async (route, name, value) => {
            // The raw client writes the head as latin1: a code unit above 0xFF goes out as its
            // low byte, so judge the value the server actually receives.
            const sent = Buffer.from(value, 'latin1').toString('latin1');
            const trimmed = sent.replace(/^[ \t]+|[ \t]+$/g, '');
            const valid =
              IDENTITY_PATTERN.test(trimmed) || (trimmed === '' && name !== 'x-user-id');
            const req = build(route, { without: [name], extraHeaders: [[name, value]] });
            await expectClean(`${name} fuzz`, route, req, valid);
          },
        ),
        runs,
      );
    });

    it('random path parameters', async () => {
      const withParams = routes().filter((r) => cases[r].params !== undefined);
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom(...withParams),
          fc.string({ unit: 'grapheme', minLength: 1, maxLength: 140 }),
          async (route, value) => {
            const spec = cases[route];
            const name = Object.keys(spec.params ?? {}).at(-1) ?? 'id';
            const encoded = encodeURIComponent(value);
            const valid = encoded.length <= 256 && (spec.validParam?.(name, value) ?? false);
            const req = build(route, { params: { [name]: encoded } });
            await expectClean(`param fuzz`, route, req, valid);
          },
        ),
        runs,
      );
    });
  });

  it('stays up, with no reservation left open', async () => {
    await request(h.url).get('/health/live').expect(200);
    await request(h.url).get('/metrics').expect(200);
    expect(h.app.get(SettlementService).openReservations).toBe(0);
    expect(Object.prototype).not.toHaveProperty('polluted');
  });
});

/** An upstream that keeps the exact bytes of every request body and answers with fixed usage. */
async function startCapturingUpstream(): Promise<{
  server: Server;
  url: string;
  bodies: Array<{ path: string; body: Buffer }>;
}> {
  const bodies: Array<{ path: string; body: Buffer }> = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const path = req.url ?? '';
      const body = Buffer.concat(chunks);
      bodies.push({ path, body });
      if ((JSON.parse(body.toString('utf8')) as { stream?: boolean }).stream === true) {
        const usage = { prompt_tokens: 10, completion_tokens: 2, total_tokens: 12 };
        const events = [
          { id: 'c1', object: 'chat.completion.chunk', choices: [{ index: 0, delta: {} }] },
          { id: 'c1', object: 'chat.completion.chunk', choices: [], usage },
        ];
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.end(`${events.map((e) => `data: ${JSON.stringify(e)}\n\n`).join('')}data: [DONE]\n\n`);
        return;
      }
      const answer = path.endsWith('/responses')
        ? {
            id: 'resp_1',
            object: 'response',
            status: 'completed',
            output: [],
            usage: { input_tokens: 10, output_tokens: 2, total_tokens: 12 },
          }
        : {
            id: 'chatcmpl-1',
            object: 'chat.completion',
            created: 0,
            model: 'gpt-4o-mini',
            choices: [
              { index: 0, message: { role: 'assistant', content: '{}' }, finish_reason: 'stop' },
            ],
            usage: { prompt_tokens: 10, completion_tokens: 2, total_tokens: 12 },
          };
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}/v1`, bodies };
}

describe('constructor and prototype as data in free-form JSON (tool and response schemas)', () => {
  let h: Harness;
  let upstream: Awaited<ReturnType<typeof startCapturingUpstream>>;

  /** A schema with properties named like the prototype machinery, nested too. */
  const schema = {
    type: 'object',
    properties: {
      constructor: { type: 'string', description: 'The class to build' },
      prototype: {
        type: 'object',
        properties: { constructor: { type: 'string' }, prototype: { type: 'string' } },
      },
    },
    required: ['constructor', 'prototype'],
    additionalProperties: false,
  };

  beforeAll(async () => {
    upstream = await startCapturingUpstream();
    h = await startHarness({ OPENAI_BASE_URL: upstream.url });
  });
  afterAll(async () => {
    await h.close();
    await new Promise((resolve) => upstream.server.close(resolve));
  });

  const userLevel = async (user: string) =>
    (
      (await request(h.url).get(`/buckets/user/${user}`).expect(200)).body as {
        bucket: { tokens: number };
      }
    ).bucket.tokens;

  it('chat: a function tool and a json_schema response format are accepted and forwarded byte for byte', async () => {
    const messages = [{ role: 'user', content: 'Build one.' }];
    const tools = [
      { type: 'function', function: { name: 'build', description: 'Builds', parameters: schema } },
    ];
    const body = {
      model: 'gpt-4o-mini',
      messages,
      tools,
      response_format: {
        type: 'json_schema',
        json_schema: { name: 'answer', strict: true, schema },
      },
      max_tokens: 20,
    };
    // Tabs and a trailing newline: any re-serialisation on the way would show.
    const text = `${JSON.stringify(body, null, '\t')}\n`;
    const delta = await deltaOf(h.url, async () => {
      await request(h.url)
        .post('/v1/chat/completions')
        .set({ 'x-user-id': 'schema-user', 'content-type': 'application/json' })
        .send(text)
        .expect(200);
    });
    expect(upstream.bodies.at(-1)?.path).toBe('/v1/chat/completions');
    expect(upstream.bodies.at(-1)?.body.equals(Buffer.from(text))).toBe(true);
    // Estimated with the schema's keys counted as text, then settled to the usage.
    const estimate =
      countChatPromptTokens({ model: body.model, messages, tools }).tokens + body.max_tokens;
    const labels = { route: 'chat.completions', model: body.model };
    expect(delta('tokenguard_tokens_reserved_total', labels)).toBe(estimate);
    expect(await userLevel('schema-user')).toBe(1000 - 12);
  });

  it('chat, streamed: the body re-serialised to ask for usage keeps the schema as it was', async () => {
    const body = {
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'Build one.' }],
      tools: [{ type: 'function', function: { name: 'build', parameters: schema } }],
      stream: true,
      max_tokens: 20,
    };
    await request(h.url)
      .post('/v1/chat/completions')
      .set({ 'x-user-id': 'schema-stream', 'content-type': 'application/json' })
      .send(JSON.stringify(body))
      .expect(200);
    const sent = JSON.parse(upstream.bodies.at(-1)?.body.toString('utf8') ?? 'null') as unknown;
    // Own `constructor` / `prototype` properties on both sides: compared as JSON text.
    expect(JSON.stringify(sent)).toBe(
      JSON.stringify({ ...body, stream_options: { include_usage: true } }),
    );
    expect(await userLevel('schema-stream')).toBe(1000 - 12);
  });

  it('responses: a flat function tool with such a schema is accepted and forwarded byte for byte', async () => {
    const text = JSON.stringify({
      model: 'gpt-4o-mini',
      input: 'Build one.',
      tools: [{ type: 'function', name: 'build', parameters: schema }],
      max_output_tokens: 16,
    });
    await request(h.url)
      .post('/v1/responses')
      .set({ 'x-user-id': 'schema-responses', 'content-type': 'application/json' })
      .send(text)
      .expect(200);
    expect(upstream.bodies.at(-1)?.path).toBe('/v1/responses');
    expect(upstream.bodies.at(-1)?.body.toString('utf8')).toBe(text);
    expect(await userLevel('schema-responses')).toBe(1000 - 12);
  });

  it.each([
    [
      '__proto__ inside a tool schema',
      (t: string) => t.replace('"prototype":', '"__proto__":'),
      // Refused by Fastify's parser before the gateway's own check.
      { code: 'invalid_json', param: null },
    ],
    [
      'constructor.prototype inside a tool schema',
      (t: string) => t.replace('"description":"The class to build"', '"prototype":{}'),
      { code: 'invalid_json', param: null },
    ],
    [
      'constructor on the body',
      (t: string) => t.replace('{"model"', '{"constructor":{},"model"'),
      { code: 'reserved_key', param: 'constructor' },
    ],
    [
      'a scalar constructor on the body',
      (t: string) => t.replace('{"model"', '{"constructor":"Object","model"'),
      { code: 'reserved_key', param: 'constructor' },
    ],
    [
      'constructor in stream_options',
      (t: string) => t.replace('{"model"', '{"stream_options":{"constructor":1},"model"'),
      { code: 'reserved_key', param: 'stream_options.constructor' },
    ],
  ])('still refuses %s: 400, nothing forwarded or charged', async (_name, edit, expected) => {
    const valid = JSON.stringify({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'Build one.' }],
      tools: [{ type: 'function', function: { name: 'build', parameters: schema } }],
      max_tokens: 20,
    });
    const text = edit(valid);
    expect(text).not.toBe(valid);
    const forwarded = upstream.bodies.length;
    const res = await request(h.url)
      .post('/v1/chat/completions')
      .set({ 'x-user-id': 'schema-refused', 'content-type': 'application/json' })
      .send(text)
      .expect(400);
    expect(shapeProblem(Buffer.from(JSON.stringify(res.body)))).toBeUndefined();
    expect((res.body as { error: unknown }).error).toMatchObject(expected);
    expect(upstream.bodies.length).toBe(forwarded);
    expect(await userLevel('schema-refused')).toBe(1000);
  });
});
