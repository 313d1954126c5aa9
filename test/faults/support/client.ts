import { Pool } from 'undici';

/** One bucket a request is charged to: `user:alice`, `team:blue`, `global:global`. */
export type ScopeKey = string;

export interface Identity {
  readonly user: string;
  readonly team?: string;
  readonly rolegroup?: string;
  readonly role?: string;
}

export interface CallSpec {
  /** Sent as `x-request-id`: how the ledger finds the gateway's log line for this call. */
  readonly id: string;
  readonly identity: Identity;
  readonly stream: boolean;
  readonly maxTokens: number;
  /** Ask for the usage chunk ourselves (otherwise the gateway asks and hides it). */
  readonly includeUsage?: boolean;
  /** Per-request knobs of apps/mock-openai (body field `mock`). */
  readonly mock?: Record<string, unknown>;
  /** Hang up after this many SSE events have arrived (streams). */
  readonly abortAfterEvents?: number;
  /** Hang up after this long, whatever has arrived. */
  readonly abortAfterMs?: number;
  readonly prompt?: string;
  /** Give up (and report `client_timeout`) after this long. Default 30 s. */
  readonly timeoutMs?: number;
}

export interface CallResult {
  readonly id: string;
  readonly gateway: string;
  readonly scopes: readonly ScopeKey[];
  readonly stream: boolean;
  /** HTTP status, or null when no response arrived (refused, reset, aborted before headers). */
  status: number | null;
  /** `error.code` of an error body, or of an `error` event inside a stream. */
  code?: string;
  /** `x-tokenguard-degraded` mode (`local`, `open`). */
  degraded?: string;
  /** `retry-after-ms` of a 429. */
  retryAfterMs?: number;
  /** The usage the response reported (JSON body, or the stream's usage chunk). */
  usageTotal?: number;
  events: number;
  /** The stream ended with `[DONE]` (or the JSON body arrived whole). */
  complete: boolean;
  /** This client hung up on purpose. */
  aborted: boolean;
  /** A failure on our side of the socket that we did not cause. */
  networkError?: string;
  readonly startedAt: number;
  endedAt: number;
}

export function scopesOf(identity: Identity, global = false): ScopeKey[] {
  const scopes: ScopeKey[] = [];
  if (global) scopes.push('global:global');
  if (identity.team) scopes.push(`team:${identity.team}`);
  if (identity.rolegroup) scopes.push(`rolegroup:${identity.rolegroup}`);
  if (identity.role) scopes.push(`role:${identity.role}`);
  scopes.push(`user:${identity.user}`);
  return scopes;
}

/** A client of one gateway: a keep-alive pool, like an application's HTTP client. */
export class GatewayClient {
  readonly pool: Pool;

  constructor(
    readonly name: string,
    readonly url: string,
    private readonly globalScope = false,
  ) {
    this.pool = new Pool(url, { connections: 256, pipelining: 1 });
  }

  async chat(spec: CallSpec): Promise<CallResult> {
    const result: CallResult = {
      id: spec.id,
      gateway: this.name,
      scopes: scopesOf(spec.identity, this.globalScope),
      stream: spec.stream,
      status: null,
      events: 0,
      complete: false,
      aborted: false,
      startedAt: Date.now(),
      endedAt: 0,
    };
    const controller = new AbortController();
    let hungUp = false;
    const hangUp = () => {
      hungUp = true;
      controller.abort();
    };
    const abortTimer =
      spec.abortAfterMs === undefined ? undefined : setTimeout(hangUp, spec.abortAfterMs);
    let timedOut = false;
    const timeout = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, spec.timeoutMs ?? 30_000);
    const body: Record<string, unknown> = {
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: spec.prompt ?? `Fault suite call ${spec.id}.` }],
      max_tokens: spec.maxTokens,
    };
    if (spec.stream) {
      body.stream = true;
      if (spec.includeUsage) body.stream_options = { include_usage: true };
    }
    if (spec.mock) body.mock = spec.mock;
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'x-request-id': spec.id,
      'x-user-id': spec.identity.user,
    };
    if (spec.identity.team) headers['x-team-id'] = spec.identity.team;
    if (spec.identity.rolegroup) headers['x-llm-rolegroup'] = spec.identity.rolegroup;
    if (spec.identity.role) headers['x-role'] = spec.identity.role;
    try {
      const res = await this.pool.request({
        method: 'POST',
        path: '/v1/chat/completions',
        headers,
        body: JSON.stringify(body),
        signal: controller.signal,
      });
      result.status = res.statusCode;
      const degraded = res.headers['x-tokenguard-degraded'];
      if (typeof degraded === 'string') result.degraded = /mode=(\w+)/.exec(degraded)?.[1];
      const retryAfter = res.headers['retry-after-ms'];
      if (typeof retryAfter === 'string') result.retryAfterMs = Number(retryAfter);
      const isStream = String(res.headers['content-type']).startsWith('text/event-stream');
      if (isStream) {
        await readEvents(res.body, (data) => {
          result.events += 1;
          if (data === '[DONE]') {
            result.complete = true;
            return;
          }
          const chunk = parse(data) as {
            usage?: { total_tokens?: number };
            error?: { code?: string };
          } | null;
          if (chunk?.usage?.total_tokens !== undefined)
            result.usageTotal = chunk.usage.total_tokens;
          if (chunk?.error) result.code = chunk.error.code ?? 'stream_error';
          if (spec.abortAfterEvents !== undefined && result.events >= spec.abortAfterEvents) {
            hangUp();
          }
        });
      } else {
        const json = parse(await res.body.text()) as {
          usage?: { total_tokens?: number };
          error?: { code?: string };
        } | null;
        if (json?.error) result.code = json.error.code ?? 'unknown';
        if (res.statusCode === 200) {
          result.usageTotal = json?.usage?.total_tokens;
          result.complete = true;
        }
      }
    } catch (error) {
      if (hungUp) result.aborted = true;
      else if (timedOut) result.networkError = 'client_timeout';
      else result.networkError = errorName(error);
    } finally {
      clearTimeout(timeout);
      clearTimeout(abortTimer);
      result.endedAt = Date.now();
    }
    return result;
  }

  close(): Promise<void> {
    return this.pool.destroy();
  }
}

/** Calls `onData` with the `data:` payload of every SSE event until the body ends. */
async function readEvents(
  body: AsyncIterable<Buffer>,
  onData: (data: string) => void,
): Promise<void> {
  let pending = '';
  for await (const chunk of body) {
    pending += chunk.toString('utf8');
    let end = pending.indexOf('\n\n');
    while (end !== -1) {
      const event = pending.slice(0, end);
      pending = pending.slice(end + 2);
      const data = event
        .split('\n')
        .filter((line) => line.startsWith('data:'))
        .map((line) => line.slice(5).trimStart())
        .join('\n');
      if (data !== '') onData(data);
      end = pending.indexOf('\n\n');
    }
  }
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return null;
  }
}

function errorName(error: unknown): string {
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') return code;
  return error instanceof Error ? error.name : 'Error';
}

/** Reads a bucket through the admin API: `user:alice` → `GET /buckets/user/alice`. */
export async function readBucket(
  url: string,
  scope: ScopeKey,
): Promise<{ tokens: number; capacity: number; refillPerSec: number }> {
  const [type, id] = splitScope(scope);
  const path = type === 'global' ? '/buckets/global' : `/buckets/${type}/${id}`;
  const res = await fetch(url + path, { signal: AbortSignal.timeout(5000) });
  if (res.status !== 200) throw new Error(`GET ${path}: ${res.status} ${await res.text()}`);
  return (
    (await res.json()) as { bucket: { tokens: number; capacity: number; refillPerSec: number } }
  ).bucket;
}

export function splitScope(scope: ScopeKey): [string, string] {
  const at = scope.indexOf(':');
  return [scope.slice(0, at), scope.slice(at + 1)];
}

/** POST /config/budget. */
export async function setBudget(
  url: string,
  scope: ScopeKey,
  capacity: number,
  refillPerSec: number,
): Promise<void> {
  const [type, id] = splitScope(scope);
  const res = await fetch(`${url}/config/budget`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(
      type === 'global'
        ? { scope: type, capacity, refillPerSec }
        : { scope: type, id, capacity, refillPerSec },
    ),
    signal: AbortSignal.timeout(5000),
  });
  if (res.status !== 200) throw new Error(`budget ${scope}: ${res.status} ${await res.text()}`);
}
